"""Pure commission arithmetic (no database)."""

from __future__ import annotations

from dataclasses import dataclass

from ledger.money import percent_of


@dataclass(frozen=True, slots=True)
class LineSplit:
    commission_minor: int
    commission_vat_minor: int
    payee_share_minor: int


def split_line_amount(*, amount_minor: int, commission_bps: int, commission_vat_bps: int) -> LineSplit:
    """Split a line's gross into commission (net), VAT on the commission, and the payee's share.

    commission = gross × bps (half-up); VAT = commission × VAT rate (half-up); the payee gets the rest.
    The three always add up to the gross exactly and none is negative (I7): at extreme rates the
    commission is capped so that commission + VAT fits in the gross.
    """
    if amount_minor < 0 or not 0 <= commission_bps <= 10000 or commission_vat_bps < 0:
        raise ValueError("amount, commission and VAT rate must be non-negative; commission at most 100 %")
    commission = percent_of(amount_minor, commission_bps)
    vat = percent_of(commission, commission_vat_bps)
    if commission + vat > amount_minor:
        commission = amount_minor * 10000 // (10000 + commission_vat_bps)
        vat = min(percent_of(commission, commission_vat_bps), amount_minor - commission)
    return LineSplit(commission, vat, amount_minor - commission - vat)
