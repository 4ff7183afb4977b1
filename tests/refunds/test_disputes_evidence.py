"""The evidence pack PDF (WeasyPrint), read back with pypdf, and who may download it from the admin."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
from django.test import Client
from django.utils import timezone
from pypdf import PdfReader

from payments.models import LineKind
from refunds.evidence import build_evidence_pack
from tests.factories import staff_client as staff
from tests.refunds.disputes_helpers import one_line, open_dispute, paid_sandbox_order

pytestmark = pytest.mark.django_db


def pdf_text(pdf: bytes) -> str:
    reader = PdfReader(io.BytesIO(pdf))
    return "\n".join(page.extract_text() for page in reader.pages)


@pytest.fixture
def dispute(payee, webhook_relay, django_capture_on_commit_callbacks):
    event_at = datetime(2027, 3, 14, 19, 30, tzinfo=UTC)
    order, payment = paid_sandbox_order(
        django_capture_on_commit_callbacks,
        [
            one_line(payee, 12900),
            one_line(
                payee,
                4500,
                description="Jazz Nights — front row",
                kind=LineKind.EVENT_TICKET,
                event_ref="JAZZ-2027-03",
                event_starts_at=event_at,
                event_country="CZ",
            ),
        ],
        reference="MKT-4242",
        metadata={"checked_in_at": "2027-03-14T19:05:00Z", "cart": "private-cart-id"},
    )
    return open_dispute(django_capture_on_commit_callbacks, payment)


def test_the_pack_holds_the_dispute_order_lines_amounts_due_date_and_page_numbers(dispute):
    pdf = build_evidence_pack(dispute=dispute)
    assert pdf.startswith(b"%PDF")
    text = pdf_text(pdf)
    due = timezone.localtime(dispute.evidence_due_by, timezone.get_fixed_timezone(0)).strftime("%d %b %Y")
    for expected in [
        dispute.provider_ref,
        "MKT-4242",
        str(dispute.order.token),
        "Amplifier 4x100 W",
        "Jazz Nights",
        "€129.00",
        "€45.00",
        "€174.00",
        due,
        "Evidence due by",
        "JAZZ-2027-03",
        "Checked in at",
        "2027-03-14T19:05:00Z",
        "buyer@example.com",
        "fraudulent",
        "Page 1",
        "Tollgate Marketplace",
    ]:
        assert expected in text, expected
    assert "private-cart-id" not in text  # only delivery / check-in metadata goes in
    # The invoice issued when the order was paid is named, with its number and amount.
    invoice = dispute.order.invoices.get()
    assert invoice.number in text
    assert "Invoices and credit notes issued to the buyer" in text


def url(dispute) -> str:
    return f"/admin/refunds/dispute/{dispute.pk}/evidence-pack/"


def test_staff_with_view_dispute_download_it_as_an_attachment(dispute):
    client = staff("refunds.view_dispute")
    page = client.get(f"/admin/refunds/dispute/{dispute.pk}/change/").content.decode()
    assert "Download evidence pack (PDF)" in page
    assert url(dispute) in page
    response = client.get(url(dispute))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'attachment; filename="evidence-{dispute.provider_ref}.pdf"'
    assert dispute.provider_ref in pdf_text(response.content)


def test_staff_without_the_permission_get_403(dispute):
    assert staff("payments.view_order").get(url(dispute)).status_code == 403


def test_anonymous_users_are_sent_to_the_login(dispute):
    response = Client().get(url(dispute))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_refunds_made_before_the_dispute_are_in_the_pack(payee, webhook_relay, django_capture_on_commit_callbacks):
    from refunds.models import Refund, RefundStatus
    from refunds.services import execute_refund, request_refund

    order, payment = paid_sandbox_order(django_capture_on_commit_callbacks, [one_line(payee, 17400)])
    with django_capture_on_commit_callbacks(execute=True):
        refund = request_refund(order=order, amount_minor=4500, reason="requested_by_customer", now=timezone.now())
    if Refund.objects.get(pk=refund.pk).status != RefundStatus.SUCCEEDED:
        execute_refund(refund_id=refund.pk, now=timezone.now())
    assert Refund.objects.get(pk=refund.pk).status == RefundStatus.SUCCEEDED
    dispute = open_dispute(django_capture_on_commit_callbacks, payment)
    assert dispute.amount_minor == 12900  # what was left after the refund
    text = " ".join(pdf_text(build_evidence_pack(dispute=dispute)).split())  # table cells wrap
    assert f"#{refund.pk}" in text
    assert "Requested by the buyer" in text
    assert "€45.00" in text
    assert "€129.00" in text
    assert "No refunds were made" not in text
