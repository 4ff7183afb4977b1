"""The marketplace sees the order's invoices and credit notes in the orders API, with signed PDF links."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone

from refunds.services import request_refund
from tests.factories import PayeeFactory
from tests.invoicing.helpers import line, pay, run_on_commit

pytestmark = pytest.mark.django_db


def test_the_order_lists_its_documents_with_working_download_links(api, api_client_obj):
    seller = PayeeFactory()
    order = pay(lines=[line(seller, 12100, description="Amplifier")], api_client=api_client_obj)
    run_on_commit(request_refund, order=order, amount_minor=2100, reason="requested_by_customer", now=timezone.now())
    body = api.get(f"/api/v1/orders/{order.token}").json()
    documents = body["documents"]
    assert [(d["kind"], d["total"], d["vat"], d["payee"]) for d in documents] == [
        ("invoice", 12100, 2100, seller.pk),
        ("credit_note", 2100, 364, seller.pk),
    ]
    assert documents[0]["number"].endswith("-INV-" + str(timezone.now().year) + "-000001")
    pdf = Client().get(documents[1]["download_url"].removeprefix("http://testserver"))
    assert pdf.status_code == 200
    assert pdf["Content-Type"] == "application/pdf"
    assert documents[1]["number"] in pdf["Content-Disposition"]
