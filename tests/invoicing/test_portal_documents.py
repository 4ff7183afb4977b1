"""The payee portal's documents page and PDF downloads: a payee sees and downloads only its own (issue 7)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.urls import reverse

from invoicing.models import DocumentKind, Invoice, InvoicePdf
from invoicing.services.commission import issue_monthly_commission_invoices
from tests.factories import PayeeFactory, StaffFactory, UserFactory
from tests.invoicing.document_helpers import goods, invoice_of, pay_order, refund_order

pytestmark = pytest.mark.django_db

DOCUMENTS = reverse("portal:documents")


def pdf_url(document: Invoice) -> str:
    return reverse("portal:document_pdf", args=[document.pk])


@pytest.fixture
def world(django_capture_on_commit_callbacks, time_machine):
    """Payee A: an invoice issued last year, an invoice and its credit note, a commission invoice. Payee B:
    an invoice. Each payee has its portal login; a staff user has none."""
    capture = django_capture_on_commit_callbacks
    a = PayeeFactory(legal_name="Alfa s.r.o.", vat_id="CZ27082440", portal_user=UserFactory(username="alfa"))
    b = PayeeFactory(legal_name="Beta s.r.o.", vat_id="CZ26168685", portal_user=UserFactory(username="beta"))
    time_machine.move_to(datetime(2025, 6, 10, 9, tzinfo=UTC))
    old = invoice_of(pay_order([goods(a, "Old amplifier", amount=5000)], reference="A-2025"))
    time_machine.move_to(datetime(2026, 3, 10, 9, tzinfo=UTC))
    order = pay_order([goods(a, "Amplifier", amount=12100)], reference="A-1", buyer_name="Jana Nováková")
    refund_order(capture, order, 6050)
    [commission] = issue_monthly_commission_invoices(year=2026, month=3, now=datetime(2026, 4, 1, 6, tzinfo=UTC))
    other = invoice_of(pay_order([goods(b, "Speaker", amount=9900)], reference="B-1"))
    return {
        "a": a,
        "b": b,
        "staff": StaffFactory(username="staff", is_superuser=True),
        "a_old": old,
        "a_invoice": invoice_of(order),
        "a_credit_note": invoice_of(order, DocumentKind.CREDIT_NOTE),
        "a_commission": commission,
        "b_invoice": other,
    }


def login(client, world, who: str):
    if who == "anonymous":
        return client
    user = world["staff"] if who == "staff" else world[who].portal_user
    client.force_login(user)
    return client


def test_the_dashboard_links_to_the_documents_page(client, world):
    page = login(client, world, "a").get(reverse("portal:dashboard")).content.decode()
    assert f'href="{DOCUMENTS}"' in page


def test_a_payee_lists_its_invoices_credit_notes_and_commission_invoices_only(client, world):
    response = login(client, world, "a").get(DOCUMENTS)
    page = response.content.decode()

    assert response.status_code == 200
    for key in ("a_old", "a_invoice", "a_credit_note", "a_commission"):
        assert world[key].number in page
        assert f'href="{pdf_url(world[key])}"' in page
    assert world["b_invoice"].number not in page
    assert pdf_url(world["b_invoice"]) not in page
    assert "Jana Nováková" in page
    assert "-€60.50" in page  # the credit note, as what it takes back


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"kind": "invoice"}, {"a_old", "a_invoice"}),
        ({"kind": "credit_note"}, {"a_credit_note"}),
        ({"kind": "commission_invoice"}, {"a_commission"}),
        ({"year": "2025"}, {"a_old"}),
        ({"year": "2026"}, {"a_invoice", "a_credit_note", "a_commission"}),
        ({"kind": "invoice", "year": "2026"}, {"a_invoice"}),
        ({"year": "2024"}, set()),
        ({"kind": "bogus", "year": "20x6"}, {"a_old", "a_invoice", "a_credit_note", "a_commission"}),
    ],
)
def test_documents_filter_by_kind_and_year(client, world, query, expected):
    page = login(client, world, "a").get(DOCUMENTS, query).content.decode()
    shown = {key for key in ("a_old", "a_invoice", "a_credit_note", "a_commission") if world[key].number in page}
    assert shown == expected


@pytest.mark.parametrize(
    ("who", "status"),
    [("a", 200), ("b", 200), ("staff", 404), ("anonymous", 302)],
)
def test_who_may_see_the_documents_page(client, world, who, status):
    response = login(client, world, who).get(DOCUMENTS)
    assert response.status_code == status
    if who == "anonymous":
        assert response["Location"] == f"{reverse('portal:login')}?next={DOCUMENTS}"
    if who == "b":
        assert world["b_invoice"].number in response.content.decode()
        assert world["a_invoice"].number not in response.content.decode()


@pytest.mark.parametrize(
    ("who", "document", "status"),
    [
        ("a", "a_invoice", 200),
        ("a", "a_credit_note", 200),
        ("a", "a_commission", 200),
        ("a", "b_invoice", 404),
        ("b", "b_invoice", 200),
        ("b", "a_invoice", 404),
        ("b", "a_commission", 404),
        ("staff", "a_invoice", 404),
        ("anonymous", "a_invoice", 302),
    ],
)
def test_who_may_download_a_document(client, world, who, document, status):
    target = world[document]
    response = login(client, world, who).get(pdf_url(target))

    assert response.status_code == status
    if status == 200:
        assert response["Content-Type"] == "application/pdf"
        assert response["Content-Disposition"] == f'attachment; filename="{target.number}.pdf"'
        assert response.content == bytes(target.pdf.content)
    else:
        assert not response.content.startswith(b"%PDF")
    if status == 302:
        assert response["Location"].startswith(f"{reverse('portal:login')}?next=")


def test_an_unknown_document_id_is_a_404(client, world):
    missing = Invoice.objects.order_by("-pk").first().pk + 1000
    assert login(client, world, "a").get(reverse("portal:document_pdf", args=[missing])).status_code == 404


def test_the_download_renders_and_stores_a_pdf_not_stored_yet(client, world):
    """Commission invoices are rendered by the e-mail task; a download before it ran renders and stores it."""
    target = world["a_commission"]
    assert not InvoicePdf.objects.filter(invoice=target).exists()

    response = login(client, world, "a").get(pdf_url(target))

    assert response.status_code == 200
    assert response.content == bytes(InvoicePdf.objects.get(invoice=target).content)
    assert response.content.startswith(b"%PDF")
