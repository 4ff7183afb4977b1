"""Rendering a document to PDF (WeasyPrint, templates/invoicing/document.html) and storing it once with
its SHA-256. The PDF is rendered from the issued rows only, so it can be rendered again identically in
content; the stored bytes are what was sent and what every download serves.

`document_context` formats everything the template prints (amounts, dates, parties, references), so the
template only lays it out. Documents are self-contained: no web fonts, images or stylesheets are fetched."""

from __future__ import annotations

import hashlib
from datetime import datetime

from babel import Locale
from django.conf import settings
from django.db import IntegrityError, transaction

from core.admin_tools import money as display_money
from core.pdf import day_text, render_pdf
from invoicing.amounts import vat_in_gross
from invoicing.models import DocumentKind, Invoice, InvoicePdf
from invoicing.vat import VatScheme

SCHEME_LABELS = dict(VatScheme.choices)


def money(amount_minor: int, currency: str, *, negate: bool = False) -> str:
    """The project's money display (`core.admin_tools.money`), negated for what a credit note takes back."""
    return display_money(-amount_minor if negate else amount_minor, currency)


def rate_label(rate_bps: int) -> str:
    return f"{rate_bps / 100:g} %"


def country_label(code: str) -> str:
    """'Germany (DE)'; the bare code when babel does not know it."""
    if not code:
        return ""
    name = Locale.parse("en").territories.get(code.upper())
    return f"{name} ({code.upper()})" if name else code.upper()


def _party(*, name: str, address: str, country: str, vat_id: str, email: str = "") -> dict:
    return {
        "name": name or email,
        "address": [row.strip() for row in address.splitlines() if row.strip()],
        "country": country_label(country),
        "vat_id": vat_id,
        "email": email if name else "",
    }


def _line_rows(invoice: Invoice, *, negate: bool, is_commission: bool) -> list[dict]:
    currency = invoice.currency
    rows = []
    for line in invoice.lines.all():
        row = {
            "position": line.position,
            "description": line.description,
            "quantity": line.quantity,
            "rate": rate_label(line.vat_rate_bps),
            "scheme": (
                ""
                if line.scheme == VatScheme.DOMESTIC
                else f"{SCHEME_LABELS.get(line.scheme, line.scheme)} · taxable in {line.tax_country}"
            ),
            "unit": money(line.unit_gross_minor, currency, negate=negate),
            "gross": money(line.gross_minor, currency, negate=negate),
        }
        if is_commission:
            row["net"] = money(line.net_minor or 0, currency, negate=negate)
            row["vat"] = money(line.vat_minor or 0, currency, negate=negate)
        else:  # prices are VAT-inclusive; the unit price without VAT is shown for information
            unit_net = line.unit_gross_minor - vat_in_gross(line.unit_gross_minor, line.vat_rate_bps)
            row["unit_net"] = money(unit_net, currency, negate=negate)
        rows.append(row)
    return rows


def _references(invoice: Invoice, *, is_commission: bool) -> list[tuple[str, str]]:
    """(label, value) rows printed under the dates: the order, and what a credit note corrects."""
    rows = []
    if is_commission:
        rows.append(("Period", f"{day_text(invoice.period_start)} – {day_text(invoice.period_end)}"))
    order = invoice.order
    if order is not None:
        label = f"{order.reference} ({order.short_token})" if order.reference else str(order.token)
        rows.append(("Order", label))
    if invoice.original is not None:
        rows.append(("Corrects invoice", f"{invoice.original.number} of {day_text(invoice.original.issued_at)}"))
    refund = invoice.refund
    if refund is not None:
        when = day_text(refund.succeeded_at) if refund.succeeded_at else day_text(invoice.supply_date)
        rows.append(("Refund", f"no. {refund.pk} of {when} — {refund.get_reason_display()}"))
    rows.append(("Currency", invoice.currency))
    return rows


def _payment_text(invoice: Invoice, *, is_commission: bool) -> str:
    method = invoice.payment_method
    paid_on = day_text(invoice.paid_at)
    if is_commission:
        if invoice.gross_minor < 0:
            return "Credited to your balance with the platform; nothing needs to be paid."
        return f"{method or 'Deducted from your payouts'}. Nothing needs to be paid."
    paid = "Paid" + (f" by {method}" if method else "") + (f" on {paid_on}" if paid_on else "")
    if invoice.kind == DocumentKind.CREDIT_NOTE:
        refund = invoice.refund
        how = f" ({refund.get_method_display().lower()})" if refund is not None else ""
        return (
            f"Refunded to the buyer on {day_text(invoice.supply_date)}{how}. "
            f"Original payment: {paid[0].lower() + paid[1:]}."
        )
    return f"{paid}. Nothing is due."


def document_context(invoice: Invoice) -> dict:
    """Everything the template prints, formatted: amounts as the document shows them (a credit note's
    amounts are shown negative, as what it takes off the original)."""
    negate = invoice.kind == DocumentKind.CREDIT_NOTE
    is_commission = invoice.kind == DocumentKind.COMMISSION_INVOICE
    currency = invoice.currency
    groups = [
        {
            "rate": rate_label(group.rate_bps),
            "scheme": SCHEME_LABELS.get(group.scheme, group.scheme),
            "country": country_label(group.tax_country),
            "net": money(group.net_minor, currency, negate=negate),
            "vat": money(group.vat_minor, currency, negate=negate),
            "gross": money(group.gross_minor, currency, negate=negate),
        }
        for group in invoice.vat_groups.all()
    ]
    issuer = _party(
        name=invoice.issuer_name,
        address=invoice.issuer_address,
        country=invoice.issuer_country,
        vat_id=invoice.issuer_vat_id,
    )
    recipient = _party(
        name=invoice.recipient_name,
        address=invoice.recipient_address,
        country=invoice.recipient_country,
        vat_id=invoice.recipient_vat_id,
        email=invoice.recipient_email,
    )
    on_behalf = ""
    if not is_commission:
        on_behalf = (
            f"Issued by {settings.TOLLGATE_PLATFORM_LEGAL_NAME} (VAT id {settings.TOLLGATE_PLATFORM_VAT_ID}) "
            f"in the name and on behalf of {invoice.issuer_name}, the supplier "
            "(invoice issued by a third party, Art. 220(1) of Council Directive 2006/112/EC)."
        )
    return {
        "invoice": invoice,
        "title": invoice.title,
        "number": invoice.number,
        "is_credit_note": negate,
        "is_commission": is_commission,
        "issuer": issuer,
        "parties": [
            ("Supplier" if is_commission else "Supplier (seller)", issuer),
            ("Customer" if is_commission else "Buyer", recipient),
        ],
        "issued_on": day_text(invoice.issued_at),
        "supply_on": day_text(invoice.supply_date),
        "references": _references(invoice, is_commission=is_commission),
        "lines": _line_rows(invoice, negate=negate, is_commission=is_commission),
        "groups": groups,
        "net": money(invoice.net_minor, currency, negate=negate),
        "vat": money(invoice.vat_minor, currency, negate=negate),
        "gross": money(invoice.gross_minor, currency, negate=negate),
        "vat_note": (
            "VAT as booked on each order."
            if is_commission
            else "Prices include VAT; the VAT is calculated per rate on the document's totals."
        ),
        "total_label": "Total credited" if negate else "Total",
        "payment": _payment_text(invoice, is_commission=is_commission),
        "legends": [legend for legend in invoice.legends.splitlines() if legend],
        "on_behalf": on_behalf,
        "platform_name": settings.TOLLGATE_PLATFORM_NAME,
    }


def render_document_pdf(invoice: Invoice) -> bytes:
    return render_pdf("invoicing/document.html", document_context(invoice))


def store_document_pdf(*, invoice_id: int, now: datetime) -> InvoicePdf:
    """Render and store the document's PDF once (a second call returns the stored one)."""
    stored = InvoicePdf.objects.filter(invoice_id=invoice_id).first()
    if stored is not None:
        return stored
    invoice = Invoice.objects.select_related("order", "original", "refund").get(pk=invoice_id)
    content = render_document_pdf(invoice)
    try:
        with transaction.atomic():
            return InvoicePdf.objects.create(
                invoice=invoice,
                content=content,
                sha256=hashlib.sha256(content).hexdigest(),
                size=len(content),
                rendered_at=now,
            )
    except IntegrityError:  # rendered by another worker meanwhile: theirs is the document
        return InvoicePdf.objects.get(invoice_id=invoice_id)


def pdf_filename(invoice: Invoice) -> str:
    return f"{invoice.number}.pdf"
