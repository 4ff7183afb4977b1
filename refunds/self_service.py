"""The buyer's own refund request, from the order's return page (payments/checkout). Only where a refund
policy applies to the order's lines: inside the policy the refund is approved and sent at once; outside it,
the request waits for staff (`requested`). Always to the original payment; never above what is left."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from core.errors import DomainError
from ledger.money import Money
from payments.models import Order, OrderStatus
from refunds.models import DisputeStatus, Refund, RefundPolicy, RefundReason, RefundStatus
from refunds.policy import RefundQuote, evaluate_refund, policy_for_line
from refunds.services import request_policy_refund
from refunds.services.policy_refunds import _remaining_splits


@dataclass
class OfferLine:
    line_id: int
    description: str
    left: Money
    quote: RefundQuote

    @property
    def back(self) -> Money:
        return Money(self.quote.refundable_minor, self.left.currency)


def self_service_offer(order: Order, *, now: datetime) -> list[OfferLine]:
    """The lines a buyer may ask to refund, with what the policy would give back now (empty: no form)."""
    if order.status not in (OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED):
        return []
    if order.disputes.filter(status__in=[DisputeStatus.OPEN, DisputeStatus.UNDER_REVIEW]).exists():
        return []
    if order.refunds.filter(status=RefundStatus.REQUESTED).exists():
        return []  # one request at a time: staff are looking at it
    policies = list(RefundPolicy.objects.filter(active=True).prefetch_related("tiers").order_by("pk"))
    splits = _remaining_splits(order)
    offer = []
    for line in order.lines.select_related("refund_policy").order_by("position"):
        left = sum(splits[line.pk])
        policy = policy_for_line(line, policies)
        if left <= 0 or policy is None:
            continue
        quote = evaluate_refund(
            policy=policy,
            line=line,
            amount_minor=left,
            currency=order.currency,
            now=now,
            paid_at=order.paid_at,
            split=splits[line.pk],
        )
        offer.append(OfferLine(line.pk, line.description, Money(left, order.currency), quote))
    return offer


def request_self_service_refund(
    *, order: Order, line_ids: list[int], message: str, now: datetime
) -> tuple[Refund, str]:
    """Refund the chosen lines (what is left of each). Returns the refund and a plain-language outcome."""
    offer = {item.line_id: item for item in self_service_offer(order, now=now)}
    chosen = [offer[line_id] for line_id in line_ids if line_id in offer]
    if not chosen:
        raise DomainError("Choose at least one item to refund.")
    refund = request_policy_refund(
        order=order,
        lines={item.line_id: {"amount_minor": item.left.amount_minor} for item in chosen},
        reason=RefundReason.REQUESTED_BY_CUSTOMER,
        actor_label="buyer",
        note=message[:1000],
        now=now,
        self_service=True,
    )
    locale = order.locale or "en"
    amount = Money(refund.amount_minor, refund.currency).format(locale)
    if refund.status == RefundStatus.REQUESTED:
        outcome = (
            "Your request is outside the refund policy, so the seller's team will look at it. "
            f"We will e-mail {order.buyer_email} when they decide."
        )
    else:
        outcome = f"Your refund of {amount} is on its way to your original payment method."
        if refund.fee_minor:
            fee = Money(refund.fee_minor, refund.currency).format(locale)
            outcome += f" A fee of {fee} was kept under the refund policy."
        if refund.commission_kept_minor:
            kept = Money(refund.commission_kept_minor, refund.currency).format(locale)
            outcome += f" The service fee of {kept} is not refundable."
    return refund, outcome
