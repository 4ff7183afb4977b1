"""Orders paid partly with store credit (split payment): what goes back to the card, and what as credit."""

from __future__ import annotations

from django.db.models import Sum

from core.errors import DomainError, ErrorCode
from ledger.money import Money
from payments.models import Order, Payment
from refunds.models import Dispute, DisputeStatus, Refund, RefundReason


def store_credit_part_minor(payment: Payment) -> int:
    """The store credit spent together with this provider payment on its order (split payment), else 0."""
    from refunds.models import ReservationStatus, StoreCreditReservation

    spent = StoreCreditReservation.objects.filter(payment=payment, status=ReservationStatus.SPENT)
    return spent.aggregate(s=Sum("amount_minor"))["s"] or 0


def card_refundable_minor(payment: Payment) -> int:
    """What can still go back to the provider payment itself: its capture less the refunds paid back through
    it (method original) and lost disputes. Refunds paid as store credit do not use it up."""
    from refunds.models import RefundMethod
    from refunds.services.core import ACTIVE_STATUSES

    back = (
        Refund.objects.filter(payment=payment, status__in=ACTIVE_STATUSES, method=RefundMethod.ORIGINAL)
        .exclude(reason=RefundReason.AUTHORIZATION_RELEASED)
        .aggregate(s=Sum("amount_minor"))["s"]
    )
    lost = Dispute.objects.filter(payment=payment, status=DisputeStatus.LOST).aggregate(s=Sum("amount_minor"))["s"]
    return max(0, payment.captured_minor - (back or 0) - (lost or 0))


def _card_first(*, order: Order, payment: Payment, amount_minor: int, method: str) -> str:
    """Refunds of a split-paid order go back to the card first, up to what the card paid; past that, as new
    store credit. A refund to the original payment once the card's part is used up becomes store credit; one
    that would straddle both is refused with what the card can still take (refund that, then the rest)."""
    from refunds.models import RefundMethod

    if method != RefundMethod.ORIGINAL or not store_credit_part_minor(payment):
        return method
    card_left = card_refundable_minor(payment)
    if amount_minor <= card_left:
        return method
    if card_left <= 0:
        return RefundMethod.STORE_CREDIT
    raise DomainError(
        f"This order was paid partly with store credit: only {Money(card_left, order.currency)} can go back to "
        "the card. Refund that first; the rest goes back as store credit.",
        code=ErrorCode.REFUND_EXCEEDS_CAPTURED,
        status=409,
    )
