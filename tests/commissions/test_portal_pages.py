"""The payee portal (issue 8): orders showing only the payee's own lines and refunds, payouts with status,
statements, and the portal's navigation."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from django.urls import reverse

from invoicing.models import Invoice
from refunds.models import RefundLine
from tests.commissions import portal_helpers
from tests.commissions.portal_helpers import (
    DASHBOARD,
    DOCUMENTS,
    ORDERS,
    PAYOUTS,
    eur,
    login,
    make_payout,
    make_statement,
    order_url,
    page_of,
)
from tests.factories import PayeeFactory, UserFactory
from tests.invoicing.document_helpers import invoice_of, refund_order

pytestmark = pytest.mark.django_db
world = portal_helpers.world  # the fixture, shared with the other portal test module


# --- Orders, payouts, statements -------------------------------------------------------------------------


def test_the_orders_list_shows_the_payees_orders_and_its_part_only(client, world):
    page = page_of(login(client, world, "a"), ORDERS)

    for key in ("own", "shared", "crowns", "too_old"):
        assert order_url(world[key]) in page
    assert order_url(world["b_only"]) not in page
    a_cable = world["shared"].lines.get(payee=world["a"])
    assert eur(a_cable.amount_minor) in page
    assert eur(world["shared"].total_minor) not in page  # the whole order includes B's line
    refunded = sum(line.payee_share_minor for line in RefundLine.objects.filter(refund=world["refund"]))
    assert eur(refunded) in page


def test_the_order_detail_shows_only_the_payees_lines_of_a_shared_order(client, world):
    url = order_url(world["shared"])
    a_page = page_of(login(client, world, "a"), url)
    a_line = world["shared"].lines.get(payee=world["a"])

    assert "Cable set" in a_page
    assert "Speaker pair" not in a_page
    assert eur(a_line.payee_share_minor) in a_page
    assert eur(world["shared"].total_minor) not in a_page

    client.logout()
    b_page = page_of(login(client, world, "b"), url)
    assert "Speaker pair" in b_page
    assert "Cable set" not in b_page


def test_the_order_detail_shows_the_refunds_of_the_payees_lines(client, world):
    page = page_of(login(client, world, "a"), order_url(world["own"]))
    [refund_line] = RefundLine.objects.filter(refund=world["refund"])

    assert "Amplifier" in page
    assert "Jana Nováková" in page
    assert world["refund"].get_status_display() in page
    assert eur(refund_line.amount_minor) in page
    assert eur(refund_line.payee_share_minor) in page
    assert reverse("portal:document_pdf", args=[invoice_of(world["own"]).pk]) in page


def test_a_refund_of_a_shared_order_shows_only_the_payees_part(client, world, django_capture_on_commit_callbacks):
    refund = refund_order(django_capture_on_commit_callbacks, world["shared"], 6050)
    a_part = RefundLine.objects.get(refund=refund, order_line__payee=world["a"])
    b_part = RefundLine.objects.get(refund=refund, order_line__payee=world["b"])

    page = page_of(login(client, world, "a"), order_url(world["shared"]))

    assert eur(a_part.amount_minor) in page
    assert eur(b_part.amount_minor) not in page
    assert eur(refund.amount_minor) not in page


def test_the_payouts_page_lists_the_payees_payouts_with_status(client, world):
    make_payout(world["b"], 4242, when=datetime(2026, 4, 6, 8, tzinfo=UTC), iban="")
    page = page_of(login(client, world, "a"), PAYOUTS)

    assert f'data-payout="{world["payouts"][0].pk}"' in page
    rows = dict(re.findall(r'<tr data-payout="(\d+)">(.*?)</tr>', page, re.S))
    paid, processing, failed = (rows[str(payout.pk)] for payout in world["payouts"])
    assert "<td>Paid</td>" in paid
    assert eur(5000) in paid
    assert "Sent to the provider" in processing
    assert eur(1500) in processing
    assert "Failed" in failed
    assert "IBAN closed" in failed
    assert eur(4242) not in page


def test_statements_are_listed_and_downloadable_when_they_exist(client, world):
    page = page_of(login(client, world, "a"), PAYOUTS)
    statement = world["a_statement"]

    assert "Statements" in page
    assert eur(8790) in page
    response = client.get(reverse("portal:statement_pdf", args=[statement.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content == b"%PDF-1.4 statement"


def test_the_statements_section_is_there_when_empty(client):
    payee = PayeeFactory(portal_user=UserFactory())
    client.force_login(payee.portal_user)
    page = page_of(client, PAYOUTS)

    assert "Statements" in page
    assert "No statements yet." in page
    assert "No payouts yet." in page


def test_a_statement_issued_without_a_stored_pdf_is_rendered_on_download(client, world):
    """Statements issued while documents were not rendered (demo data, the test settings) are rendered from
    the row and the ledger when downloaded (commissions.statements.pdf)."""
    statement = make_statement(world["a"], pdf=b"", month=4)
    page = page_of(login(client, world, "a"), PAYOUTS)
    assert reverse("portal:statement_pdf", args=[statement.pk]) in page
    response = client.get(reverse("portal:statement_pdf", args=[statement.pk]))
    assert response.status_code == 200
    assert response.content.startswith(b"%PDF")


def test_every_page_links_the_portal_sections(client, world):
    client = login(client, world, "a")
    for url in [DASHBOARD, ORDERS, PAYOUTS, DOCUMENTS, order_url(world["own"])]:
        page = page_of(client, url)
        for target in (DASHBOARD, ORDERS, PAYOUTS, DOCUMENTS):
            assert f'href="{target}"' in page
        assert "<script" not in page  # no JavaScript, and nothing the CSP would block
        assert " style=" not in page


def test_the_document_of_another_payee_is_not_linked(client, world):
    page = page_of(login(client, world, "a"), order_url(world["shared"]))
    b_invoice = Invoice.objects.get(order=world["shared"], payee=world["b"], kind="invoice")
    assert reverse("portal:document_pdf", args=[b_invoice.pk]) not in page
