"""PostgreSQL: 50 invoices of one payee issued at the same instant get 50 consecutive numbers — no gap, no
duplicate — even with duplicate issuers racing for the same orders and one issue failing after taking its
number (its transaction rolls back and the number is taken by the next one)."""

from __future__ import annotations

from unittest import mock

import pytest
from django.utils import timezone

from invoicing.models import DocumentKind, Invoice, InvoiceSeries
from invoicing.services import issuing
from invoicing.services.issuing import issue_order_invoices
from tests.factories import PayeeFactory
from tests.invoicing.helpers import line, pay
from tests.payments.concurrency import run_concurrently

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ORDERS = 50
DUPLICATES = 10


class Boom(Exception):
    pass


def test_fifty_concurrent_issues_give_fifty_consecutive_numbers():
    payee = PayeeFactory(country="CZ")
    with mock.patch("invoicing.tasks.issue_order_documents.delay"):  # issued below, all at once
        orders = [pay(lines=[line(payee, 1000 + index)]) for index in range(ORDERS)]
    assert not Invoice.objects.exists()
    failing = {orders[7].pk}
    original_create = issuing._create_document

    def create_or_fail(**kwargs):
        document = original_create(**kwargs)
        if kwargs["order"].pk in failing:
            failing.clear()  # fails once, after the number was taken and the rows written
            raise Boom("disk full")
        return document

    # 50 issuers for 50 orders, and 10 more racing for orders the first ones are issuing.
    targets = [order.pk for order in orders] + [order.pk for order in orders[:DUPLICATES]]

    def issue(index: int):
        try:
            return [doc.number for doc in issue_order_invoices(order_id=targets[index], now=timezone.now())]
        except Boom:
            return "failed"

    with mock.patch.object(issuing, "_create_document", side_effect=create_or_fail):
        results = run_concurrently(len(targets), issue)
    assert results.count("failed") == 1
    # The failed one is issued on retry (the task retries): it takes the next free number.
    issue_order_invoices(order_id=orders[7].pk, now=timezone.now())

    invoices = list(Invoice.objects.filter(payee=payee, kind=DocumentKind.INVOICE).order_by("sequence"))
    assert len(invoices) == ORDERS
    assert [doc.sequence for doc in invoices] == list(range(1, ORDERS + 1))
    assert len({doc.number for doc in invoices}) == ORDERS
    assert len({doc.order_id for doc in invoices}) == ORDERS
    series = InvoiceSeries.objects.get(payee=payee, kind=DocumentKind.INVOICE)
    assert series.last_number == ORDERS
    # Racing duplicates got the one document of their order, not a second number.
    for index in range(DUPLICATES):
        if results[index] != "failed" and results[ORDERS + index] != "failed":
            assert results[index] == results[ORDERS + index]
