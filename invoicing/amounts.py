"""Document arithmetic (pure, integer minor units): VAT per rate group at document level, and credit notes
that mirror the original's rounding.

Prices are gross (VAT included). A document's lines are grouped by (rate, scheme, country of taxation); each
group's VAT is taken out of the group's gross once, rounded half-up: VAT = gross × r / (1 + r). Net = gross −
VAT, so net + VAT = gross exactly on every group and every document.

A credit note never rounds on its own. For each group of the original invoice it knows the gross credited by
earlier credit notes (G₀) and credits g more: its VAT is vat(G₀ + g) − vat(G₀), the difference of the
cumulative roundings. So the credit notes of an invoice add up to exactly what rounding the cumulative
credited gross gives, and a full refund takes back exactly the invoice's VAT and net — invoice − credit notes
is, per group and in total, what the buyer kept, to the cent.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class GroupKey:
    rate_bps: int
    scheme: str
    tax_country: str


@dataclass(frozen=True)
class VatGroup:
    key: GroupKey
    gross_minor: int
    vat_minor: int

    @property
    def net_minor(self) -> int:
        return self.gross_minor - self.vat_minor


class CreditExceedsInvoice(ValueError):
    """A credit note would take back more of a VAT group than the invoice charged."""


def vat_in_gross(gross_minor: int, rate_bps: int) -> int:
    """The VAT contained in a gross amount at `rate_bps`, rounded half-up (away from zero for halves)."""
    if rate_bps < 0:
        raise ValueError("a VAT rate cannot be negative")
    if gross_minor < 0:
        return -vat_in_gross(-gross_minor, rate_bps)
    quotient, remainder = divmod(gross_minor * rate_bps, 10000 + rate_bps)
    if remainder * 2 >= 10000 + rate_bps:
        quotient += 1
    return quotient


def group_gross(lines: Iterable[tuple[GroupKey, int]]) -> dict[GroupKey, int]:
    totals: dict[GroupKey, int] = defaultdict(int)
    for key, gross in lines:
        totals[key] += gross
    return dict(totals)


def vat_groups(lines: Iterable[tuple[GroupKey, int]]) -> list[VatGroup]:
    """An invoice's VAT breakdown from its lines' (group, gross): highest rate first."""
    totals = group_gross(lines)
    return [
        VatGroup(key, gross, vat_in_gross(gross, key.rate_bps)) for key, gross in sorted(totals.items(), key=_order)
    ]


def credit_note_groups(
    *,
    original: Iterable[VatGroup],
    credited_before: Mapping[GroupKey, int],
    crediting: Mapping[GroupKey, int],
) -> list[VatGroup]:
    """The VAT breakdown of a credit note taking `crediting` (gross per group) off `original`, after earlier
    credit notes took `credited_before`. Raises CreditExceedsInvoice past a group's gross."""
    by_key = {group.key: group for group in original}
    result = []
    for key, gross in sorted(crediting.items(), key=_order):
        if gross == 0:
            continue
        group = by_key.get(key)
        before = credited_before.get(key, 0)
        if group is None or gross < 0 or before + gross > group.gross_minor:
            raise CreditExceedsInvoice(f"crediting {gross} of {key} exceeds what the invoice charged")
        after = before + gross
        vat_after = group.vat_minor if after == group.gross_minor else vat_in_gross(after, key.rate_bps)
        vat_before = vat_in_gross(before, key.rate_bps)
        result.append(VatGroup(key, gross, vat_after - vat_before))
    return result


def totals(groups: Iterable[VatGroup]) -> tuple[int, int, int]:
    """(net, VAT, gross) of a document."""
    groups = list(groups)
    gross = sum(group.gross_minor for group in groups)
    vat = sum(group.vat_minor for group in groups)
    return gross - vat, vat, gross


def _order(item) -> tuple:
    key = item[0] if isinstance(item, tuple) else item.key
    return (-key.rate_bps, key.scheme, key.tax_country)
