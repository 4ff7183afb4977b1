"""Pure commission arithmetic (no database): a rule's terms -> the commission on a line -> the line's split."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ledger.money import allocate, percent_of

FIXED_PER_LINE = "line"
FIXED_PER_ORDER = "order"


@dataclass(frozen=True, slots=True)
class LineSplit:
    commission_minor: int
    commission_vat_minor: int
    payee_share_minor: int


@dataclass(frozen=True, slots=True)
class RuleTerms:
    """What a commission rule charges: a percent of the line's gross (basis points), plus a fixed amount per
    line or per order (shared by the lines the rule applies to), then clamped per line to [min, max]. The
    amounts are minor units of the order's currency (the rule matched it)."""

    percent_bps: int = 0
    fixed_minor: int = 0
    fixed_per: str = FIXED_PER_LINE
    min_minor: int | None = None
    max_minor: int | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.percent_bps <= 10000:
            raise ValueError("the percent must be between 0 and 10000 basis points")
        if self.fixed_per not in (FIXED_PER_LINE, FIXED_PER_ORDER):
            raise ValueError(f"fixed_per is {FIXED_PER_LINE!r} or {FIXED_PER_ORDER!r}, not {self.fixed_per!r}")
        if self.fixed_minor < 0 or any(v is not None and v < 0 for v in (self.min_minor, self.max_minor)):
            raise ValueError("fixed amount, min and max must be non-negative")
        if self.min_minor is not None and self.max_minor is not None and self.min_minor > self.max_minor:
            raise ValueError("min must not exceed max")

    @classmethod
    def of(cls, rule: Any) -> RuleTerms:
        """The terms of a `CommissionRule` (or anything with the same attributes)."""
        return cls(
            percent_bps=rule.percent_bps,
            fixed_minor=rule.fixed_minor,
            fixed_per=str(rule.fixed_per),
            min_minor=rule.min_minor,
            max_minor=rule.max_minor,
        )

    @property
    def fixed_per_order(self) -> bool:
        return self.fixed_per == FIXED_PER_ORDER and self.fixed_minor > 0


def compute_commission(*, amount_minor: int, rule: RuleTerms, order_fixed_share_minor: int = 0) -> int:
    """The commission (net of VAT) a rule takes on a line of `amount_minor` gross.

    percent of the gross (half-up) + the fixed amount (per line: the rule's; per order: this line's share of
    it, `order_fixed_share_minor`, see `order_fixed_shares`), then clamped to [min, max]. The result may
    exceed what the line can carry: `split_commission` caps it so that commission + VAT fit in the gross.
    """
    if amount_minor < 0 or order_fixed_share_minor < 0:
        raise ValueError("the amount and the order's fixed share must be non-negative")
    fixed = order_fixed_share_minor if rule.fixed_per == FIXED_PER_ORDER else rule.fixed_minor
    commission = percent_of(amount_minor, rule.percent_bps) + fixed
    if rule.min_minor is not None:
        commission = max(commission, rule.min_minor)
    if rule.max_minor is not None:
        commission = min(commission, rule.max_minor)
    return commission


def order_fixed_shares(*, fixed_minor: int, amounts_minor: Sequence[int]) -> list[int]:
    """A per-order fixed amount shared by the lines it applies to, in proportion to their gross (largest
    remainder): the shares add up to `fixed_minor` exactly."""
    if not amounts_minor:
        return []
    if not any(amounts_minor):  # only zero lines: share evenly rather than refuse
        return allocate(fixed_minor, [1] * len(amounts_minor))
    return allocate(fixed_minor, list(amounts_minor))


def compute_line_commissions(*, amounts_minor: Sequence[int], rule: RuleTerms) -> list[int]:
    """The commissions of the lines one rule applies to in one order (one payee's lines): a per-order fixed
    amount is shared between them by amount; each line is then clamped on its own."""
    shares = (
        order_fixed_shares(fixed_minor=rule.fixed_minor, amounts_minor=amounts_minor)
        if rule.fixed_per_order
        else [0] * len(amounts_minor)
    )
    return [
        compute_commission(amount_minor=amount, rule=rule, order_fixed_share_minor=share)
        for amount, share in zip(amounts_minor, shares, strict=True)
    ]


def split_commission(*, amount_minor: int, commission_minor: int, commission_vat_bps: int) -> LineSplit:
    """Split a line's gross into the commission (net), VAT on it (half-up), and the payee's share (the rest).

    The three always add up to the gross exactly and none is negative (I7): a commission too large for the
    line (extreme rates, a fixed amount or a minimum above a small line) is capped so that commission + VAT
    fit in the gross.
    """
    if amount_minor < 0 or commission_minor < 0 or commission_vat_bps < 0:
        raise ValueError("amount, commission and VAT rate must be non-negative")
    commission = commission_minor
    vat = percent_of(commission, commission_vat_bps)
    if commission + vat > amount_minor:
        # The largest commission whose half-up VAT still fits: the exact quotient, then up while it fits
        # (rounding can leave room for one or two more minor units, e.g. 1 at 21 % carries 0 VAT).
        commission = amount_minor * 10000 // (10000 + commission_vat_bps)
        while commission < commission_minor and commission + 1 + percent_of(commission + 1, commission_vat_bps) <= (
            amount_minor
        ):
            commission += 1
        vat = min(percent_of(commission, commission_vat_bps), amount_minor - commission)
    return LineSplit(commission, vat, amount_minor - commission - vat)


def split_line_amount(*, amount_minor: int, commission_bps: int, commission_vat_bps: int) -> LineSplit:
    """Split a line's gross at a percent commission: commission = gross × bps (half-up), see
    `split_commission`."""
    if amount_minor < 0 or not 0 <= commission_bps <= 10000 or commission_vat_bps < 0:
        raise ValueError("amount, commission and VAT rate must be non-negative; commission at most 100 %")
    return split_commission(
        amount_minor=amount_minor,
        commission_minor=percent_of(amount_minor, commission_bps),
        commission_vat_bps=commission_vat_bps,
    )
