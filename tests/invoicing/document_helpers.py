"""Paid orders with chosen buyers (country, VAT id, name) and their issued documents, read back as text."""

from __future__ import annotations

import io

from django.utils import timezone
from pypdf import PdfReader

from invoicing.models import DocumentKind, Invoice
from invoicing.services.pdf import store_document_pdf
from payments.models import Order
from payments.services.orders import LineInput
from refunds.models import Refund, RefundStatus
from refunds.services import execute_refund, request_refund
from tests.invoicing.helpers import pay


def pay_order(lines: list[LineInput], **buyer) -> Order:
    """An order paid through the sandbox with the chosen buyer, its documents issued (see `helpers.pay`)."""
    return pay(lines=lines, **buyer)


def goods(payee, description: str = "Amplifier", *, amount: int = 12100, quantity: int = 1) -> LineInput:
    return LineInput(payee_id=payee.pk, description=description, quantity=quantity, unit_amount_minor=amount)


def refund_order(capture, order: Order, amount_minor: int) -> Refund:
    with capture(execute=True):
        refund = request_refund(
            order=order, amount_minor=amount_minor, reason="requested_by_customer", now=timezone.now()
        )
    refund.refresh_from_db()
    if refund.status != RefundStatus.SUCCEEDED:
        with capture(execute=True):
            refund = execute_refund(refund_id=refund.pk, now=timezone.now())
    assert refund.status == RefundStatus.SUCCEEDED
    return refund


def invoice_of(order: Order, kind: str = DocumentKind.INVOICE) -> Invoice:
    return Invoice.objects.get(order=order, kind=kind)


def pdf_pages(invoice: Invoice) -> list[str]:
    pdf = store_document_pdf(invoice_id=invoice.pk, now=timezone.now())
    reader = PdfReader(io.BytesIO(bytes(pdf.content)))
    return [page.extract_text() for page in reader.pages]


def pdf_text(invoice: Invoice) -> str:
    return "\n".join(pdf_pages(invoice))
