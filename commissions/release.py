"""Releasing payees' money (DESIGN.md §4 "Release", §10): each order line's payee share moves from
`payee:<id>:pending` to `payee:<id>:available` once its release time has come, and staff holds.

- `set_release_times(order, now)`: at capture. Goods and services: `payee.release_delay_days` after payment;
  event tickets: `payee.event_release_delay_days` after the event starts (no event date: as goods).
- `release_due_funds(now)`: the beat (every 15 minutes). One ledger transaction per line
  (`release:line:<id>`), then `released_at`, both under the payee row lock (as payouts take it), so a line
  is released once however often the beat runs. A held payee is skipped until the hold is lifted.
- The amount of a line: its payee share less what succeeded refunds took back of that line (a fee the
  refund policy leaves to the payee stays with the payee, so it is released too), capped at the payee's
  pending balance in the currency. The cap matters because a refund takes the payee's share from `pending`
  first, whichever line it refunds: a refund of an already released line eats into the pending money of
  the payee's other lines. So pending never goes negative and pending + available + reserved stays
  shares − refunds.
- `hold_payee`, `lift_hold`, `release_now`: staff decisions, each with a reason (refused without one) and
  an audit entry. A hold stops releases here and payouts (payout runs read `payee.payouts_held`);
  `release_now` moves all of the payee's pending lines now, whatever their release time (also while held:
  the hold still stops the payout).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Case, F, IntegerField, Sum, Value, When

from commissions.models import Payee
from core.audit import record_audit
from core.errors import DomainError, ErrorCode
from ledger import accounts
from ledger.errors import InsufficientFunds
from ledger.money import Money
from ledger.selectors import account_balance
from ledger.services import credit, debit, post_transaction
from payments.models import LineKind, Order, OrderLine, OrderStatus

logger = logging.getLogger(__name__)

# Orders whose lines are released. A fully refunded order still has what its policy refunds left to the
# payee (a kept fee) in pending: released like any other line (nothing when the payee kept nothing).
RELEASABLE_ORDER_STATUSES = [OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED, OrderStatus.REFUNDED]
REASON_MAX_LENGTH = 300  # Payee.hold_reason


class ReasonRequired(DomainError):
    code = ErrorCode.VALIDATION_ERROR
    default_message = "Give a reason: holds and manual releases are audited."


# --- release times --------------------------------------------------------------------------------------


def release_time(line: OrderLine, *, paid_at: datetime) -> datetime:
    """When the payee's share of `line` becomes available (the payee's delays as they are now)."""
    payee = line.payee
    if line.kind == LineKind.EVENT_TICKET and line.event_starts_at is not None:
        return line.event_starts_at + timedelta(days=payee.event_release_delay_days)
    return paid_at + timedelta(days=payee.release_delay_days)


def set_release_times(order: Order, now: datetime) -> int:
    """Fix when each line of a just-paid order is released (lines that have a time keep it). Called at the
    capture, inside its transaction. Returns how many lines got a time."""
    count = 0
    for line in order.lines.select_related("payee").filter(release_at__isnull=True):
        count += OrderLine.objects.filter(pk=line.pk, release_at__isnull=True).update(
            release_at=release_time(line, paid_at=now)
        )
    return count


def _backfill_release_times(now: datetime) -> None:
    """Lines of orders paid before release times existed get them from the order's payment time."""
    orders = Order.objects.filter(
        status__in=RELEASABLE_ORDER_STATUSES, lines__release_at__isnull=True, lines__released_at__isnull=True
    ).distinct()
    for order in orders[:500]:
        set_release_times(order, order.paid_at or now)


# --- releasing ------------------------------------------------------------------------------------------


def _taken_back(line_ids: list[int]) -> dict[int, int]:
    """Per line, what succeeded refunds took back of its payee share (a fee left to the payee excepted)."""
    from refunds.models import FeeTo, RefundLine, RefundStatus

    rows = (
        RefundLine.objects.filter(order_line_id__in=line_ids, refund__status=RefundStatus.SUCCEEDED)
        .values("order_line_id")
        .annotate(
            taken=Sum(
                F("payee_share_minor")
                - Case(
                    When(refund__fee_to=FeeTo.PAYEE, then=F("fee_minor")),
                    default=Value(0),
                    output_field=IntegerField(),
                )
            )
        )
    )
    return {row["order_line_id"]: row["taken"] or 0 for row in rows}


def _post_release(*, line: OrderLine, amount: Money, now: datetime, source: str) -> None:
    payee_id = line.payee_id
    post_transaction(
        idempotency_key=f"release:line:{line.pk}",
        kind="release",
        entries=[debit(accounts.payee_pending(payee_id), amount), credit(accounts.payee_available(payee_id), amount)],
        occurred_at=now,
        memo=f"Release of line {line.position} of order {line.order.token} to payee {payee_id} ({source})",
        metadata={"order": str(line.order.token), "order_line": line.pk, "payee": payee_id, "source": source},
    )


def _release_lines(*, payee_id: int, now: datetime, due_only: bool, source: str) -> dict[str, int]:
    """Release the payee's unreleased lines (only those due, or all). Returns the amounts per currency.
    Runs in its own transaction under the payee row lock; a held payee is skipped when `due_only`."""
    released: dict[str, int] = defaultdict(int)
    with transaction.atomic():
        payee = Payee.objects.select_for_update().get(pk=payee_id)
        if due_only and payee.payouts_held:
            return released
        lines = (
            OrderLine.objects.filter(
                payee_id=payee_id, released_at__isnull=True, order__status__in=RELEASABLE_ORDER_STATUSES
            )
            .select_related("order")
            .order_by(F("release_at").asc(nulls_last=True), "pk")
        )
        if due_only:
            lines = lines.filter(release_at__lte=now)
        lines = list(lines)
        taken = _taken_back([line.pk for line in lines])
        pending: dict[str, int] = {}
        for line in lines:
            currency = line.order.currency
            if currency not in pending:
                # Under the payee lock, as payouts read `available`; a refund racing us makes the posting
                # fail (InsufficientFunds) rather than overdraw pending, and the next run picks the line up.
                pending[currency] = account_balance(accounts.payee_pending(payee_id), currency).amount_minor
            amount = max(0, min(line.payee_share_minor - taken.get(line.pk, 0), pending[currency]))
            if amount:
                _post_release(line=line, amount=Money(amount, currency), now=now, source=source)
                pending[currency] -= amount
                released[currency] += amount
            OrderLine.objects.filter(pk=line.pk, released_at__isnull=True).update(released_at=now)
    return released


def release_due_funds(*, now: datetime) -> int:
    """Beat: release every line whose release time has come (payee not held). Returns the lines released."""
    _backfill_release_times(now)
    due = OrderLine.objects.filter(
        release_at__lte=now,
        released_at__isnull=True,
        order__status__in=RELEASABLE_ORDER_STATUSES,
        payee__payouts_held=False,
    )
    payee_ids = sorted(set(due.values_list("payee_id", flat=True)))
    before = due.count()
    for payee_id in payee_ids:
        try:
            _release_lines(payee_id=payee_id, now=now, due_only=True, source="due")
        except InsufficientFunds:
            logger.warning("release for payee %s raced a refund; retried on the next run", payee_id)
    return before - due.count()


# --- staff: holds and manual release ---------------------------------------------------------------------


def _clean_reason(reason: str | None) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ReasonRequired(fields={"reason": [{"code": "required", "message": "A reason is required."}]})
    if len(reason) > REASON_MAX_LENGTH:
        raise DomainError(
            f"The reason is longer than {REASON_MAX_LENGTH} characters.",
            fields={"reason": [{"code": "max_length", "message": "Too long."}]},
        )
    return reason


def hold_payee(*, payee: Payee, reason: str, actor, now: datetime, request=None) -> Payee:
    """Hold a payee: nothing is released or paid out until the hold is lifted. Holding a held payee again
    replaces the reason (audited too)."""
    reason = _clean_reason(reason)
    with transaction.atomic():
        payee = Payee.objects.select_for_update().get(pk=payee.pk)
        was_held = payee.payouts_held
        payee.payouts_held = True
        payee.hold_reason = reason
        payee.save(update_fields=["payouts_held", "hold_reason", "updated_at"])
        record_audit(
            action="payee.hold_updated" if was_held else "payee.held",
            actor=actor,
            obj=payee,
            request=request,
            message=reason,
            now=now,
        )
    return payee


def lift_hold(*, payee: Payee, reason: str, actor, now: datetime, request=None) -> bool:
    """Lift a payee's hold: due lines are released by the next beat, payouts resume. False if not held."""
    reason = _clean_reason(reason)
    with transaction.atomic():
        payee = Payee.objects.select_for_update().get(pk=payee.pk)
        if not payee.payouts_held:
            return False
        previous = payee.hold_reason
        payee.payouts_held = False
        payee.hold_reason = ""
        payee.save(update_fields=["payouts_held", "hold_reason", "updated_at"])
        record_audit(
            action="payee.hold_lifted",
            actor=actor,
            obj=payee,
            request=request,
            message=reason,
            metadata={"hold_reason": previous},
            now=now,
        )
    return True


def release_now(*, payee: Payee, reason: str, actor, now: datetime, request=None) -> dict[str, int]:
    """Release all of the payee's pending lines now, whatever their release time. Returns the amounts per
    currency (empty if nothing was pending). One audit entry per currency released (or one saying nothing
    was)."""
    reason = _clean_reason(reason)
    with transaction.atomic():
        released = _release_lines(payee_id=payee.pk, now=now, due_only=False, source="staff")
        if not released:
            record_audit(action="payee.released_now", actor=actor, obj=payee, request=request, message=reason, now=now)
        for currency, amount in sorted(released.items()):
            record_audit(
                action="payee.released_now",
                actor=actor,
                obj=payee,
                request=request,
                amount_minor=amount,
                currency=currency,
                message=reason,
                now=now,
            )
    return dict(released)


__all__ = [
    "RELEASABLE_ORDER_STATUSES",
    "ReasonRequired",
    "hold_payee",
    "lift_hold",
    "release_due_funds",
    "release_now",
    "release_time",
    "set_release_times",
]
