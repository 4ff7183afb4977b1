"""VAT rates fixed on each order line at creation.

This is the first cut: the rate of the country of supply for the line's VAT category. The country of
supply is the event's country for event admission, otherwise the payee's country. Reverse charge, OSS
and `VatRate` rows with validity dates replace the table below with the invoicing work.
"""

from __future__ import annotations

from django.db import models


class VatCategory(models.TextChoices):
    STANDARD = "standard", "Standard rate"
    REDUCED = "reduced", "Reduced rate"
    SUPER_REDUCED = "super_reduced", "Super-reduced rate"
    ZERO = "zero", "Zero rate"
    EXEMPT = "exempt", "Exempt"


# Basis points per country: (standard, reduced, super-reduced). Rates in force on 2026-01-01.
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


def supply_country(*, payee_country: str, line_kind: str, event_country: str | None) -> str:
    if line_kind == "event_ticket" and event_country:
        return event_country
    return payee_country


def line_vat_rate_bps(*, category: str, payee_country: str, line_kind: str, event_country: str | None) -> int:
    if category in (VatCategory.ZERO, VatCategory.EXEMPT):
        return 0
    country = supply_country(payee_country=payee_country, line_kind=line_kind, event_country=event_country)
    rates = EU_RATES_BPS.get(country)
    if rates is None:  # outside the EU: out of scope of EU VAT
        return 0
    index = {VatCategory.STANDARD: 0, VatCategory.REDUCED: 1, VatCategory.SUPER_REDUCED: 2}[category]
    return rates[index]
