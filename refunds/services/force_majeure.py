"""Force majeure: the organizer cancels the event and every paid line of it is refunded in full."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from core.audit import record_audit
from core.errors import DomainError
from ledger.money import Money, allocate
from payments.models import Order, Payment
from refunds.models import (
    RefundMethod,
    RefundReason,
)
from refunds.services.policy_refunds import REFUNDABLE_ORDER_STATUSES, _remaining_splits, request_policy_refund

logger = logging.getLogger(__name__)


@dataclass
class CancelEventSummary:
    event_ref: str
    orders: int = 0
    refunds: list[int] = field(default_factory=list)
    skipped: int = 0  # orders with nothing left to refund for this event
    amounts: dict[str, int] = field(default_factory=dict)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (order token, message)

    def lines(self) -> list[str]:
        out = [
            f"Event {self.event_ref}: {self.orders} order(s), {len(self.refunds)} refund(s), "
            f"{self.skipped} already refunded, {len(self.failures)} failure(s)."
        ]
        out += [f"  {Money(amount, currency)}" for currency, amount in sorted(self.amounts.items())]
        out += [f"  failed {token}: {message}" for token, message in self.failures]
        return out


def _card_then_credit(order: Order, lines: dict[int, dict]) -> list[tuple[dict[int, dict], str]]:
    """The refunds that give back `lines` in full: one to the original payment, or, for an order paid partly
    with store credit whose card part cannot take it all, the card's part first (spread over the lines in
    proportion) and the rest as new store credit — everything goes back, split the way it was paid."""
    from refunds.services.split import card_refundable_minor, store_credit_part_minor

    payment = Payment.objects.filter(order=order, settles_order=True).first()
    total = sum(line["amount_minor"] for line in lines.values())
    if payment is None or not store_credit_part_minor(payment):
        return [(lines, RefundMethod.ORIGINAL)]
    card_left = min(card_refundable_minor(payment), total)
    if card_left >= total:
        return [(lines, RefundMethod.ORIGINAL)]
    ids = sorted(lines)
    card_parts = dict(zip(ids, allocate(card_left, [lines[pk]["amount_minor"] for pk in ids]), strict=True))
    card = {pk: {"amount_minor": amount} for pk, amount in card_parts.items() if amount > 0}
    credit = {
        pk: {"amount_minor": lines[pk]["amount_minor"] - card_parts[pk]}
        for pk in ids
        if lines[pk]["amount_minor"] > card_parts[pk]
    }
    return [
        (part, method) for part, method in ((card, RefundMethod.ORIGINAL), (credit, RefundMethod.STORE_CREDIT)) if part
    ]


def cancel_event(*, event_ref: str, actor=None, reason: str, now: datetime, progress=None) -> CancelEventSummary:
    """Force majeure: refund every paid line of the event in full, commission returned, no fee, one refund per
    order, to the original payment, without approval. Idempotent: lines already refunded have nothing left,
    so running it again refunds nothing more. Each order is its own transaction; a failure (an open dispute,
    say) is reported and the rest go on."""
    summary = CancelEventSummary(event_ref=event_ref)
    order_ids = list(
        Order.objects.filter(lines__event_ref=event_ref, status__in=REFUNDABLE_ORDER_STATUSES)
        .distinct()
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    label = getattr(actor, "username", "") or "system"
    for index, order_id in enumerate(order_ids, start=1):
        order = Order.objects.get(pk=order_id)
        summary.orders += 1
        splits = _remaining_splits(order)
        lines = {
            line.pk: {"amount_minor": sum(splits[line.pk])}
            for line in order.lines.filter(event_ref=event_ref)
            if sum(splits[line.pk]) > 0
        }
        if not lines:
            summary.skipped += 1
        else:
            try:
                for part, method in _card_then_credit(order, lines):
                    refund = request_policy_refund(
                        order=order,
                        lines=part,
                        reason=RefundReason.OTHER,
                        method=method,
                        actor=actor,
                        actor_label=f"{label}:cancel_event",
                        now=now,
                        force_majeure=True,
                        skip_approval=True,
                        note=f"Event {event_ref} canceled: {reason}",
                    )
                    summary.refunds.append(refund.pk)
                    summary.amounts[refund.currency] = summary.amounts.get(refund.currency, 0) + refund.amount_minor
            except DomainError as exc:
                summary.failures.append((str(order.token), exc.message))
        if progress is not None:
            progress(index, len(order_ids), order)
    record_audit(
        action="event.cancel",
        actor=actor,
        actor_label=label,
        object_type="event",
        object_id=event_ref,
        message=reason,
        metadata={
            "orders": summary.orders,
            "refunds": summary.refunds,
            "amounts": summary.amounts,
            "failures": len(summary.failures),
        },
        now=now,
    )
    return summary
