"""The signed download link of a document (from the buyer's e-mail and return page)."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from django_ratelimit.decorators import ratelimit

from invoicing.models import Invoice
from invoicing.services.delivery import invoice_for_token
from invoicing.services.pdf import pdf_filename, store_document_pdf


def pdf_response(invoice: Invoice, *, inline: bool = False) -> HttpResponse:
    """The stored PDF (rendered and stored first if the documents worker has not got to it yet)."""
    pdf = store_document_pdf(invoice_id=invoice.pk, now=timezone.now())
    response = HttpResponse(bytes(pdf.content), content_type="application/pdf")
    disposition = "inline" if inline else "attachment"
    response["Content-Disposition"] = f'{disposition}; filename="{pdf_filename(invoice)}"'
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@require_GET
@ratelimit(key="ip", rate="60/m", block=True)
def download(request: HttpRequest, token: str) -> HttpResponse:
    invoice = invoice_for_token(token)
    if invoice is None:
        raise Http404("This download link is not valid or has expired.")
    return pdf_response(invoice)
