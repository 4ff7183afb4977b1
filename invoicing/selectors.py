"""Reading VAT rates from the database."""

from __future__ import annotations

from datetime import date

from django.db.models import Q, QuerySet

from invoicing.models import VatRate


def rates_in_force(*, country: str, category: str, on: date) -> QuerySet[VatRate]:
    return VatRate.objects.filter(
        Q(valid_to__isnull=True) | Q(valid_to__gt=on), country=country.upper(), category=category, valid_from__lte=on
    )


def rate_for(*, country: str, category: str, on: date) -> int | None:
    """The rate in basis points in force on `on`, or None when the country has no row for that category."""
    row = rates_in_force(country=country, category=category, on=on).order_by("-valid_from").first()
    return row.rate_bps if row else None


def overlapping_rates(
    *, country: str, category: str, valid_from: date, valid_to: date | None, exclude_pk: int | None = None
) -> QuerySet[VatRate]:
    """Rows of the same country and category whose period overlaps [valid_from, valid_to)."""
    rows = VatRate.objects.filter(country=country.upper(), category=category).filter(
        Q(valid_to__isnull=True) | Q(valid_to__gt=valid_from)
    )
    if valid_to is not None:
        rows = rows.filter(valid_from__lt=valid_to)
    if exclude_pk is not None:
        rows = rows.exclude(pk=exclude_pk)
    return rows
