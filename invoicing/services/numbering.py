"""Gapless numbering: one series per payee, document kind and year (the platform's own for commission
invoices). The number is taken under the series' row lock inside the transaction that writes the document:
concurrent issuers queue on the lock, and a rolled-back issue gives its number back — no gaps, no duplicates."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from commissions.models import Payee
from invoicing.models import DocumentKind, InvoiceSeries

KIND_CODES = {
    DocumentKind.INVOICE: "INV",
    DocumentKind.CREDIT_NOTE: "CN",
    DocumentKind.COMMISSION_INVOICE: "COM",
}


def series_prefix(*, payee: Payee | None, kind: str, year: int) -> str:
    """'P0007-INV-2026-' for payee 7's invoices, 'TG-COM-2026-' for the platform's commission invoices."""
    owner = f"P{payee.pk:04d}" if payee is not None else "TG"
    return f"{owner}-{KIND_CODES[DocumentKind(kind)]}-{year}-"


def format_number(prefix: str, sequence: int) -> str:
    return f"{prefix}{sequence:06d}"


def take_number(*, payee: Payee | None, kind: str, year: int) -> tuple[InvoiceSeries, int, str]:
    """Lock the series (created on first use) and take its next number. Must run inside the issuing
    transaction, so the lock is held until the document is committed."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("take_number must run inside the transaction that issues the document")
    series = _locked_series(payee=payee, kind=kind, year=year)
    series.last_number += 1
    InvoiceSeries.objects.filter(pk=series.pk).update(last_number=series.last_number)
    return series, series.last_number, format_number(series.prefix, series.last_number)


def _locked_series(*, payee: Payee | None, kind: str, year: int) -> InvoiceSeries:
    lookup = (
        {"payee": payee, "kind": kind, "year": year} if payee else {"payee__isnull": True, "kind": kind, "year": year}
    )
    series = InvoiceSeries.objects.select_for_update().filter(**lookup).first()
    if series is not None:
        return series
    try:
        # Two first issues of the year may race to create the series: the loser's savepoint rolls back and
        # it queues on the winner's row lock below.
        with transaction.atomic():
            InvoiceSeries.objects.create(
                payee=payee, kind=kind, year=year, prefix=series_prefix(payee=payee, kind=kind, year=year)
            )
    except IntegrityError:
        pass
    return InvoiceSeries.objects.select_for_update().get(**lookup)
