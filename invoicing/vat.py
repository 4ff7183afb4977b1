"""VAT: the pure rule that decides how a line is taxed, and the rate fixed on each order line at creation.

`vat_treatment` is a pure function (no database): given the supplier (the payee, in whose name the platform
invoices), the buyer, the line and a `rates(country, category)` look-up, it returns the scheme, the country
of taxation, the rate and the legend printed on the invoice. The rules, in order (DESIGN.md §9):

1. Exempt category -> `exempt`, 0 %, in the supplier's country.
2. Admission to an event (`event_ticket` with an event country) -> taxed where the event takes place
   (Art. 53 and 54 of Council Directive 2006/112/EC), B2B included: admission is never reverse-charged.
   An event outside the EU -> `out_of_scope`.
3. A supplier outside the EU -> `out_of_scope` (not an EU supply).
4. No buyer country known -> `domestic` (the buyer is presumed to be in the supplier's country).
5. A buyer outside the EU -> `out_of_scope`, 0 %.
6. Same country -> `domestic`, the supplier's country rate.
7. Another member state, valid VAT id (B2B) -> `reverse_charge`, 0 %, with the Art. 196 legend.
8. Another member state, no valid VAT id (B2C distance sale) -> `oss` at the buyer's country rate when the
   supplier uses the One-Stop Shop; otherwise `domestic` at the supplier's rate: a supplier below the EU-wide
   EUR 10,000 threshold (Art. 59c) that has not opted into OSS charges its own country's VAT.

Categories: the category picks the rate in the country of taxation; a country without a rate for that
category falls back: super-reduced -> reduced -> standard. The zero category gives 0 % under the scheme
found above. `EU_RATES_BPS` is only the seed of the `VatRate` rows (migration 0002); rates are read from the
database (`invoicing.selectors.rate_for`) on the order's creation date, and fixed on the line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from django.db import models


class VatCategory(models.TextChoices):
    STANDARD = "standard", "Standard rate"
    REDUCED = "reduced", "Reduced rate"
    SUPER_REDUCED = "super_reduced", "Super-reduced rate"
    ZERO = "zero", "Zero rate"
    EXEMPT = "exempt", "Exempt"


class VatScheme(models.TextChoices):
    DOMESTIC = "domestic", "Domestic"
    REVERSE_CHARGE = "reverse_charge", "Reverse charge"
    OSS = "oss", "One-Stop Shop"
    EVENT_ADMISSION = "event_admission", "Event admission (place of the event)"
    OUT_OF_SCOPE = "out_of_scope", "Outside the scope of EU VAT"
    EXEMPT = "exempt", "Exempt"


LEGEND_REVERSE_CHARGE = (
    "Reverse charge: VAT to be accounted for by the recipient (Art. 196 Council Directive 2006/112/EC)"
)
LEGEND_OSS = "VAT charged under the One-Stop Shop (OSS) scheme"
LEGEND_OUT_OF_SCOPE = "Outside the scope of EU VAT"
LEGEND_EXEMPT = "Exempt from VAT"

EVENT_TICKET = "event_ticket"

# Basis points per country: (standard, reduced, super-reduced); where a country has no separate reduced or
# super-reduced rate the number repeats the one above it. Rates in force on 2026-01-01. Seed data only: the
# migration loads it into `VatRate` rows.
EU_RATES_BPS: dict[str, tuple[int, int, int]] = {
    "AT": (2000, 1000, 1000),
    "BE": (2100, 600, 600),
    "BG": (2000, 900, 900),
    "HR": (2500, 500, 500),
    "CY": (1900, 500, 500),
    "CZ": (2100, 1200, 1200),
    "DK": (2500, 2500, 2500),
    "EE": (2400, 900, 900),
    "FI": (2550, 1000, 1000),
    "FR": (2000, 550, 210),
    "DE": (1900, 700, 700),
    "GR": (2400, 600, 600),
    "HU": (2700, 500, 500),
    "IE": (2300, 900, 900),
    "IT": (2200, 500, 400),
    "LV": (2100, 500, 500),
    "LT": (2100, 500, 500),
    "LU": (1700, 800, 300),
    "MT": (1800, 500, 500),
    "NL": (2100, 900, 900),
    "PL": (2300, 500, 500),
    "PT": (2300, 600, 600),
    "RO": (2100, 1100, 1100),
    "SK": (2300, 500, 500),
    "SI": (2200, 500, 500),
    "ES": (2100, 400, 400),
    "SE": (2500, 600, 600),
}

EU_MEMBER_STATES: frozenset[str] = frozenset(EU_RATES_BPS)

RateLookup = Callable[[str, str], "int | None"]

_FALLBACK = {
    VatCategory.SUPER_REDUCED: VatCategory.REDUCED,
    VatCategory.REDUCED: VatCategory.STANDARD,
}


class MissingVatRate(LookupError):
    """No `VatRate` row (not even the standard rate) for a member state on the date."""


@dataclass(frozen=True)
class VatTreatment:
    scheme: str
    country_of_taxation: str
    rate_bps: int
    legend: str = ""


def is_eu(country: str | None) -> bool:
    return (country or "").upper() in EU_MEMBER_STATES


def category_rate(*, country: str, category: str, rates: RateLookup) -> int:
    """The rate of the category in the country, falling back super-reduced -> reduced -> standard."""
    if category in (VatCategory.ZERO, VatCategory.EXEMPT):
        return 0
    current: str | None = category
    while current is not None:
        rate = rates(country, current)
        if rate is not None:
            return rate
        current = _FALLBACK.get(current)
    raise MissingVatRate(f"No VAT rate for {country} ({category}).")


def vat_treatment(
    *,
    supplier_country: str,
    supplier_uses_oss: bool,
    buyer_country: str,
    buyer_vat_id_valid: bool,
    line_kind: str,
    event_country: str | None,
    category: str,
    rates: RateLookup,
) -> VatTreatment:
    supplier = (supplier_country or "").upper()
    buyer = (buyer_country or "").upper()
    event = (event_country or "").upper()

    def taxed(scheme: str, country: str, legend: str = "") -> VatTreatment:
        return VatTreatment(scheme, country, category_rate(country=country, category=category, rates=rates), legend)

    if category == VatCategory.EXEMPT:
        return VatTreatment(VatScheme.EXEMPT, supplier, 0, LEGEND_EXEMPT)
    if line_kind == EVENT_TICKET and event:
        if not is_eu(event):
            return VatTreatment(VatScheme.OUT_OF_SCOPE, event, 0, LEGEND_OUT_OF_SCOPE)
        return taxed(VatScheme.EVENT_ADMISSION, event)
    if not is_eu(supplier):
        return VatTreatment(VatScheme.OUT_OF_SCOPE, supplier, 0, LEGEND_OUT_OF_SCOPE)
    if not buyer or buyer == supplier:
        return taxed(VatScheme.DOMESTIC, supplier)
    if not is_eu(buyer):
        return VatTreatment(VatScheme.OUT_OF_SCOPE, buyer, 0, LEGEND_OUT_OF_SCOPE)
    if buyer_vat_id_valid:
        return VatTreatment(VatScheme.REVERSE_CHARGE, buyer, 0, LEGEND_REVERSE_CHARGE)
    if supplier_uses_oss:
        return taxed(VatScheme.OSS, buyer, LEGEND_OSS)
    return taxed(VatScheme.DOMESTIC, supplier)


LEGENDS: dict[str, str] = {
    VatScheme.REVERSE_CHARGE: LEGEND_REVERSE_CHARGE,
    VatScheme.OSS: LEGEND_OSS,
    VatScheme.OUT_OF_SCOPE: LEGEND_OUT_OF_SCOPE,
    VatScheme.EXEMPT: LEGEND_EXEMPT,
}


def commission_vat_treatment(
    *, platform_country: str, platform_rate_bps: int, payee_country: str, payee_vat_id_valid: bool
) -> VatTreatment:
    """How the platform taxes its commission (a service to the payee; general B2B rule, Art. 44):
    a payee in the platform's country, or an EU payee without a valid VAT id -> the platform's rate;
    an EU payee in another member state with a valid VAT id -> reverse charge; a payee outside the EU ->
    outside the scope of EU VAT."""
    platform = (platform_country or "").upper()
    payee = (payee_country or "").upper()
    if not payee or payee == platform:
        return VatTreatment(VatScheme.DOMESTIC, platform, platform_rate_bps)
    if not is_eu(payee):
        return VatTreatment(VatScheme.OUT_OF_SCOPE, payee, 0, LEGEND_OUT_OF_SCOPE)
    if payee_vat_id_valid:
        return VatTreatment(VatScheme.REVERSE_CHARGE, payee, 0, LEGEND_REVERSE_CHARGE)
    return VatTreatment(VatScheme.DOMESTIC, platform, platform_rate_bps)


def line_vat_treatment(
    *,
    category: str,
    payee_country: str,
    line_kind: str,
    event_country: str | None,
    buyer_country: str = "",
    buyer_vat_id_valid: bool = False,
    payee_uses_oss: bool = False,
    on: date,
) -> VatTreatment:
    """The treatment of an order line with the `VatRate` rows in force on `on` (the order's creation date)."""
    from invoicing.selectors import rate_for

    return vat_treatment(
        supplier_country=payee_country,
        supplier_uses_oss=payee_uses_oss,
        buyer_country=buyer_country,
        buyer_vat_id_valid=buyer_vat_id_valid,
        line_kind=line_kind,
        event_country=event_country,
        category=category,
        rates=lambda country, cat: rate_for(country=country, category=cat, on=on),
    )


def line_vat_rate_bps(
    *,
    category: str,
    payee_country: str,
    line_kind: str,
    event_country: str | None,
    buyer_country: str = "",
    buyer_vat_id_valid: bool = False,
    payee_uses_oss: bool = False,
    on: date,
) -> int:
    """The rate fixed on an order line at creation (see `vat_treatment`)."""
    return line_vat_treatment(
        category=category,
        payee_country=payee_country,
        line_kind=line_kind,
        event_country=event_country,
        buyer_country=buyer_country,
        buyer_vat_id_valid=buyer_vat_id_valid,
        payee_uses_oss=payee_uses_oss,
        on=on,
    ).rate_bps
