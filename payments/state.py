"""State machines for payments and orders: one table each, applied with a conditional UPDATE.

`transition_*` runs `UPDATE ... WHERE pk = ? AND status IN (<states allowed to move to the target>)`. A
transition that is not allowed updates nothing and returns False, so a late or duplicate event can never
move a payment or an order backwards (I9), whatever order events arrive in.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from payments.models import Order, OrderStatus, Payment, PaymentStatus

P = PaymentStatus
# target -> the states it may be reached from
PAYMENT_TRANSITIONS: dict[str, frozenset[str]] = {
    P.PENDING: frozenset({P.CREATED}),
    P.REQUIRES_ACTION: frozenset({P.CREATED, P.PENDING}),
    P.AUTHORIZED: frozenset({P.CREATED, P.PENDING, P.REQUIRES_ACTION}),
    # Money captured is the truth, even after we gave up on the attempt: a provider can still capture
    # after a decline (the buyer retried in the same session) or after our local expiry. Such a late
    # payment is then settled or refunded by the order-level rules; it is never ignored.
    P.SUCCEEDED: frozenset({P.CREATED, P.PENDING, P.REQUIRES_ACTION, P.AUTHORIZED, P.FAILED, P.CANCELED, P.EXPIRED}),
    P.FAILED: frozenset({P.CREATED, P.PENDING, P.REQUIRES_ACTION, P.AUTHORIZED}),
    P.CANCELED: frozenset({P.CREATED, P.PENDING, P.REQUIRES_ACTION, P.AUTHORIZED}),
    P.EXPIRED: frozenset({P.CREATED, P.PENDING, P.REQUIRES_ACTION}),
}
PAYMENT_FINAL = frozenset({P.SUCCEEDED})
PAYMENT_IN_FLIGHT = frozenset({P.CREATED, P.PENDING, P.REQUIRES_ACTION, P.AUTHORIZED})

OS = OrderStatus
ORDER_TRANSITIONS: dict[str, frozenset[str]] = {
    # A payment that succeeds just after the order expired is accepted: the buyer paid and nothing else did.
    OS.PAID: frozenset({OS.OPEN, OS.EXPIRED}),
    OS.PARTIALLY_REFUNDED: frozenset({OS.PAID, OS.PARTIALLY_REFUNDED}),
    OS.REFUNDED: frozenset({OS.PAID, OS.PARTIALLY_REFUNDED}),
    OS.CANCELED: frozenset({OS.OPEN}),
    OS.EXPIRED: frozenset({OS.OPEN}),
}


def can_transition_payment(current: str, target: str) -> bool:
    return current in PAYMENT_TRANSITIONS.get(target, frozenset())


def can_transition_order(current: str, target: str) -> bool:
    return current in ORDER_TRANSITIONS.get(target, frozenset())


def _record_history(instance) -> None:
    # Conditional UPDATEs bypass save(), so write the history row django-simple-history would have.
    type(instance).history.bulk_history_create([instance], update=True)


def transition_payment(*, payment: Payment, to: str, now: datetime, **fields: Any) -> bool:
    allowed_from = PAYMENT_TRANSITIONS[to]
    updated = Payment.objects.filter(pk=payment.pk, status__in=allowed_from).update(
        status=to, status_changed_at=now, updated_at=now, **fields
    )
    if updated:
        payment.refresh_from_db()
        _record_history(payment)
    return bool(updated)


def transition_order(*, order: Order, to: str, now: datetime, **fields: Any) -> bool:
    allowed_from = ORDER_TRANSITIONS[to]
    updated = Order.objects.filter(pk=order.pk, status__in=allowed_from).update(status=to, updated_at=now, **fields)
    if updated:
        order.refresh_from_db()
        _record_history(order)
    return bool(updated)
