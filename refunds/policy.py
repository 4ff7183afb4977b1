"""The refund policy engine: which policy applies to an order line, and what it allows.

`evaluate_refund` is a pure function (no database): give it the policy's terms (a `RefundPolicy` whose tiers
are loaded, or `PolicyTerms`), the line (anything with the line's amounts and `event_starts_at`), the part of
the line to refund and the time, and it returns a `RefundQuote`.

Timing:
- Event tickets (the line has `event_starts_at`): time *before the event*. Full refund while at least
  `full_refund_until` remains (exactly at the boundary still counts as full); then each tier applies while at
  least its `until` remains (tiers are read from the longest to the shortest `until`); after the last tier
  (or once the event has started), no refund.
- Goods and services (no event date): time *since the order was paid*. Full refund within
  `full_refund_until` after payment (the boundary included); then each tier within its `until` after
  payment; after the last one, no refund. Not paid: no refund.

Money:
- fee = `fee_bps` of the refunded amount, rounded half-up, plus the tier's fixed fee when the tier's currency
  is the refund's (a fixed fee in another currency does not apply); never more than the amount. Integer
  arithmetic in minor units, so zero-decimal (JPY) and three-decimal (KWD) currencies are exact.
- commission not returned: the commission and its VAT in the refunded part (`commission_kept_minor`) stay
  with the platform; the buyer gets `amount − fee − commission kept` (never below zero; the fee is reduced
  first so the parts add up).
- force majeure (the organizer canceled the event): everything back, commission returned, no fee, any time.
- no policy at all: full refund, commission returned, refund to the original payment or store credit.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ledger.money import Money, allocate, percent_of

ORIGINAL = "original"
STORE_CREDIT = "store_credit"
TRANSFER = "transfer"


@dataclass(frozen=True)
class TierTerms:
    until: timedelta
    fee_bps: int = 0
    fee_fixed_minor: int = 0
    currency: str = ""


@dataclass(frozen=True)
class PolicyTerms:
    name: str
    full_refund_until: timedelta
    tiers: tuple[TierTerms, ...] = ()
    commission_returned: bool = True
    fee_to: str = "payee"
    methods: tuple[str, ...] = (ORIGINAL, STORE_CREDIT)
    store_credit_validity_days: int = 365
    policy_id: int | None = None

    @classmethod
    def of(cls, policy: Any) -> PolicyTerms | None:
        """Terms from a `RefundPolicy` (reads its tiers once), or the terms themselves, or None."""
        if policy is None or isinstance(policy, PolicyTerms):
            return policy
        return cls(
            name=policy.name,
            full_refund_until=policy.full_refund_until,
            tiers=tuple(
                TierTerms(t.until, t.fee_bps, t.fee_fixed_minor, t.currency)
                for t in sorted(policy.tiers.all(), key=lambda t: (t.position, t.pk or 0))
            ),
            commission_returned=policy.commission_returned,
            fee_to=policy.fee_to,
            methods=policy.methods,
            store_credit_validity_days=policy.store_credit_validity_days,
            policy_id=policy.pk,
        )


@dataclass(frozen=True)
class RefundQuote:
    allowed: bool
    amount_minor: int  # the part of the line asked for (gross)
    currency: str
    fee_minor: int = 0
    commission_kept_minor: int = 0
    refundable_minor: int = 0  # what the buyer gets back
    commission_returned: bool = True
    fee_to: str = "payee"
    methods: tuple[str, ...] = ()
    tier: str = ""  # "full", "tier 1", ..., "none", "force majeure", "no policy"
    reason: str = ""
    policy_id: int | None = None
    policy_name: str = ""
    store_credit_validity_days: int = 365
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["methods"] = list(self.methods)
        return data


def _fmt(delta: timedelta) -> str:
    days = delta.days
    hours = delta.seconds // 3600
    if days and not hours:
        return f"{days} day{'s' if days != 1 else ''}"
    if days:
        return f"{days} day{'s' if days != 1 else ''} {hours} h"
    minutes = delta.seconds // 60
    return f"{hours} h" if hours and not minutes % 60 else f"{minutes} min"


def _line_split(line: Any, amount_minor: int) -> tuple[int, int, int]:
    """The refunded part's (commission, VAT on commission, payee share), in proportion to the line's split."""
    weights = [line.commission_minor, line.commission_vat_minor, line.payee_share_minor]
    if not any(weights):
        return 0, 0, amount_minor
    c, v, p = allocate(amount_minor, weights)
    return c, v, p


def evaluate_refund(
    *,
    policy: Any,
    line: Any,
    amount_minor: int,
    currency: str,
    now: datetime,
    force_majeure: bool = False,
    paid_at: datetime | None = None,
    split: tuple[int, int, int] | None = None,
) -> RefundQuote:
    """What `policy` allows for refunding `amount_minor` of `line` at `now`. Pure.

    `split` is the (commission, VAT, payee share) of the refunded part as the caller will book it (the refund
    service allocates it against what is left of the line); by default it is in proportion to the line."""
    terms = PolicyTerms.of(policy)
    if amount_minor <= 0:
        return RefundQuote(False, amount_minor, currency, reason="Nothing to refund.")
    c, v, _p = split if split is not None else _line_split(line, amount_minor)
    if force_majeure:
        return RefundQuote(
            True,
            amount_minor,
            currency,
            refundable_minor=amount_minor,
            methods=(ORIGINAL, STORE_CREDIT),
            tier="force majeure",
            reason="The event was canceled: everything is refunded, with no fee.",
            policy_id=terms.policy_id if terms else None,
            policy_name=terms.name if terms else "",
        )
    if terms is None:
        return RefundQuote(
            True,
            amount_minor,
            currency,
            refundable_minor=amount_minor,
            methods=(ORIGINAL, STORE_CREDIT),
            tier="no policy",
            reason="No refund policy applies: a full refund.",
        )
    base = {
        "commission_returned": terms.commission_returned,
        "fee_to": terms.fee_to,
        "methods": terms.methods,
        "policy_id": terms.policy_id,
        "policy_name": terms.name,
        "store_credit_validity_days": terms.store_credit_validity_days,
    }
    event_at = getattr(line, "event_starts_at", None)
    if event_at is not None:
        left = event_at - now
        if left >= terms.full_refund_until:
            tier_index, what = 0, f"at least {_fmt(terms.full_refund_until)} before the event: a full refund"
        else:
            tier_index, what = None, ""
            for index, tier in enumerate(sorted(terms.tiers, key=lambda t: t.until, reverse=True), start=1):
                if left >= tier.until:
                    tier_index, what = index, f"at least {_fmt(tier.until)} before the event"
                    break
            if tier_index is None:
                why = "the event has started" if left <= timedelta(0) else "it is too close to the event"
                return RefundQuote(False, amount_minor, currency, tier="none", reason=f"No refund: {why}.", **base)
        ordered = sorted(terms.tiers, key=lambda t: t.until, reverse=True)
    else:
        if paid_at is None:
            order = getattr(line, "order", None)
            paid_at = getattr(order, "paid_at", None)
        if paid_at is None:
            return RefundQuote(False, amount_minor, currency, tier="none", reason="No refund: not paid.", **base)
        since = now - paid_at
        if since <= terms.full_refund_until:
            tier_index, what = 0, f"within {_fmt(terms.full_refund_until)} of payment: a full refund"
        else:
            tier_index, what = None, ""
            for index, tier in enumerate(sorted(terms.tiers, key=lambda t: t.until), start=1):
                if since <= tier.until:
                    tier_index, what = index, f"within {_fmt(tier.until)} of payment"
                    break
            if tier_index is None:
                return RefundQuote(
                    False,
                    amount_minor,
                    currency,
                    tier="none",
                    reason="No refund: the time to ask for one has passed.",
                    **base,
                )
        ordered = sorted(terms.tiers, key=lambda t: t.until)
    fee = 0
    if tier_index:
        tier = ordered[tier_index - 1]
        fee = percent_of(amount_minor, tier.fee_bps)
        if tier.fee_fixed_minor and tier.currency == currency:
            fee += tier.fee_fixed_minor
    kept_commission = 0 if terms.commission_returned else c + v
    fee = max(0, min(fee, amount_minor - kept_commission))
    back = amount_minor - fee - kept_commission
    parts = [what[0].upper() + what[1:] if what else ""]
    if fee:
        parts.append(f"a fee of {Money(fee, currency)} is kept")
    if kept_commission:
        parts.append(f"the service fee of {Money(kept_commission, currency)} is not refunded")
    parts.append(f"you get {Money(back, currency)} back")
    return RefundQuote(
        True,
        amount_minor,
        currency,
        fee_minor=fee,
        commission_kept_minor=kept_commission,
        refundable_minor=back,
        tier="full" if tier_index == 0 else f"tier {tier_index}",
        reason="; ".join(parts) + ".",
        **base,
    )


def policy_for_line(line: Any, policies: list[Any] | None = None) -> Any:
    """The most specific active policy for a line: its own, then its event's, then its payee's, then the
    default. `policies` (all active ones) can be passed to avoid a query per line."""
    from refunds.models import PolicyScope, RefundPolicy

    if getattr(line, "refund_policy_id", None):
        return line.refund_policy
    if policies is None:
        policies = list(RefundPolicy.objects.filter(active=True).prefetch_related("tiers").order_by("pk"))
    by_scope: dict[str, Any] = {}
    for policy in policies:
        if not policy.active:
            continue
        if policy.scope == PolicyScope.EVENT and line.event_ref and policy.event_ref == line.event_ref:
            by_scope.setdefault("event", policy)
        elif policy.scope == PolicyScope.PAYEE and policy.payee_id == line.payee_id:
            by_scope.setdefault("payee", policy)
        elif policy.scope == PolicyScope.DEFAULT:
            by_scope.setdefault("default", policy)
    return by_scope.get("event") or by_scope.get("payee") or by_scope.get("default")
