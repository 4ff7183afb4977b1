"""Getting documents to people: the e-mail with the PDF attached (first send and staff re-sends), and the
signed download link (the buyer has no login: the link is the permission)."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMessage
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse

from invoicing.models import DocumentKind, Invoice, InvoiceDelivery
from invoicing.services.pdf import pdf_filename, store_document_pdf

LINK_SALT = "invoicing.document-download"
SYSTEM = "system"


def download_token(invoice: Invoice) -> str:
    return signing.TimestampSigner(salt=LINK_SALT).sign(str(invoice.pk))


def invoice_for_token(token: str) -> Invoice | None:
    """The document a download link names, or None when the link is forged, altered or expired."""
    try:
        value = signing.TimestampSigner(salt=LINK_SALT).unsign(token, max_age=settings.TOLLGATE_DOCUMENT_LINK_MAX_AGE)
    except signing.BadSignature:
        return None
    if not value.isdigit():
        return None
    return Invoice.objects.filter(pk=int(value)).first()


def download_url(invoice: Invoice) -> str:
    return settings.PUBLIC_BASE_URL + reverse("invoicing:download", args=[download_token(invoice)])


def email_document(*, invoice_id: int, now: datetime, actor_label: str = SYSTEM, to: str = "") -> bool:
    """E-mail the document (PDF attached, with a download link). The automatic send happens once per
    document (checked under the document's row lock); a staff re-send always sends and is logged."""
    pdf = store_document_pdf(invoice_id=invoice_id, now=now)
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update(of=("self",)).select_related("order", "payee").get(pk=invoice_id)
        if actor_label == SYSTEM and invoice.deliveries.exists():
            return False
        recipient = to or invoice.recipient_email
        if not recipient:
            return False
        context = {
            "invoice": invoice,
            "link": download_url(invoice),
            "platform_name": settings.TOLLGATE_PLATFORM_NAME,
            "is_commission": invoice.kind == DocumentKind.COMMISSION_INVOICE,
        }
        message = EmailMessage(
            subject=f"{invoice.title} {invoice.number}"
            + (f" — {invoice.issuer_name}" if invoice.kind != DocumentKind.COMMISSION_INVOICE else ""),
            body=render_to_string("emails/document.txt", context),
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[recipient],
        )
        message.attach(pdf_filename(invoice), bytes(pdf.content), "application/pdf")
        message.send()
        InvoiceDelivery.objects.create(invoice=invoice, to=recipient, sent_at=now, actor_label=actor_label)
    return True
