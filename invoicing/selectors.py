"""Reading VAT rates from the database, and the VAT report of issued documents."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db.models import Q, QuerySet

from invoicing.models import DocumentKind, InvoiceVatGroup, VatRate
from invoicing.vat import VatScheme
from ledger.money import CurrencyError, exponent


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


# --- VAT report -----------------------------------------------------------------------------------------

SECTION_DOMESTIC = "domestic"
SECTION_OSS = "oss"
SECTION_ZERO = "reverse_charge_out_of_scope"
SECTION_COMMISSION = "commission"
SECTIONS: dict[str, str] = {
    SECTION_DOMESTIC: "Buyer documents: domestic and event admission (per country of taxation)",
    SECTION_OSS: "Buyer documents: One-Stop Shop (per member state of consumption, the OSS return)",
    SECTION_ZERO: "Buyer documents: reverse charge and outside the scope (VAT 0, recapitulative statement)",
    SECTION_COMMISSION: "Commission invoices (the platform's own VAT)",
}
_BUYER_SECTION_BY_SCHEME = {
    VatScheme.DOMESTIC: SECTION_DOMESTIC,
    VatScheme.EVENT_ADMISSION: SECTION_DOMESTIC,
    VatScheme.EXEMPT: SECTION_DOMESTIC,
    VatScheme.OSS: SECTION_OSS,
    VatScheme.REVERSE_CHARGE: SECTION_ZERO,
    VatScheme.OUT_OF_SCOPE: SECTION_ZERO,
}


@dataclass(frozen=True)
class VatReportRow:
    """One line of the VAT report: signed sums (credit notes subtracted) of the VAT groups of the documents
    supplied in the period, per section, country of taxation, scheme, rate and currency."""

    section: str
    country: str
    scheme: str
    rate_bps: int
    currency: str
    net_minor: int
    vat_minor: int
    gross_minor: int
    documents: int

    @property
    def section_label(self) -> str:
        return SECTIONS[self.section]

    @property
    def scheme_label(self) -> str:
        return dict(VatScheme.choices).get(self.scheme, self.scheme)

    @property
    def rate_percent(self) -> str:
        return f"{Decimal(self.rate_bps).scaleb(-2):f}"


@dataclass(frozen=True)
class VatReportTotal:
    section: str
    currency: str
    net_minor: int
    vat_minor: int
    gross_minor: int


def report_section(*, kind: str, scheme: str) -> str:
    if kind == DocumentKind.COMMISSION_INVOICE:
        return SECTION_COMMISSION
    return _BUYER_SECTION_BY_SCHEME.get(scheme, SECTION_DOMESTIC)


def vat_report(*, date_from: date, date_to: date, currency: str | None = None) -> list[VatReportRow]:
    """Net, VAT and gross per (section, country, scheme, rate, currency) of the documents whose supply date
    is in [date_from, date_to] (both inclusive), credit notes subtracted. Sorted by section, then country,
    scheme, rate (highest first) and currency."""
    groups = InvoiceVatGroup.objects.filter(
        invoice__supply_date__gte=date_from, invoice__supply_date__lte=date_to
    ).values_list(
        "invoice_id",
        "invoice__kind",
        "invoice__currency",
        "scheme",
        "tax_country",
        "rate_bps",
        "net_minor",
        "vat_minor",
        "gross_minor",
    )
    if currency:
        groups = groups.filter(invoice__currency=currency)
    sums: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0])
    documents: dict[tuple, set[int]] = defaultdict(set)
    for invoice_id, kind, doc_currency, scheme, country, rate, net, vat, gross in groups.order_by():
        sign = -1 if kind == DocumentKind.CREDIT_NOTE else 1
        key = (report_section(kind=kind, scheme=scheme), country, scheme, rate, doc_currency)
        total = sums[key]
        total[0] += sign * net
        total[1] += sign * vat
        total[2] += sign * gross
        documents[key].add(invoice_id)
    order = list(SECTIONS)
    keys = sorted(sums, key=lambda key: (order.index(key[0]), key[1], key[2], -key[3], key[4]))
    return [VatReportRow(*key, *sums[key], documents=len(documents[key])) for key in keys]


def vat_report_totals(rows: list[VatReportRow]) -> list[VatReportTotal]:
    """Totals per section and currency, in the rows' section order."""
    sums: dict[tuple[str, str], list[int]] = {}
    for row in rows:
        total = sums.setdefault((row.section, row.currency), [0, 0, 0])
        total[0] += row.net_minor
        total[1] += row.vat_minor
        total[2] += row.gross_minor
    order = list(SECTIONS)
    keys = sorted(sums, key=lambda key: (order.index(key[0]), key[1]))
    return [VatReportTotal(*key, *sums[key]) for key in keys]


def decimal_amount(amount_minor: int, currency: str) -> str:
    """Minor units as a decimal string with the currency's exponent: 12100 EUR -> "121.00", 500 JPY -> "500"."""
    try:
        places = exponent(currency)
    except CurrencyError:
        return str(amount_minor)
    return f"{Decimal(amount_minor).scaleb(-places):f}"
