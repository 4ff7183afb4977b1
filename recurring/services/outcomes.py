"""How a recurring charge and its recurrence change state: succeeded, failed (retried on the schedule),
abandoned, in doubt; a recurrence stopped. Called with the rows locked by the caller (lock order: the order row,
then the payment row, then the recurrence, then the charge). Staff are told by e-mail after the commit."""

from __future__ import annotations

import logging
from datetime import datetime

from django.conf import settings
from django.db import transaction

from core.audit import record_audit
from core.staff_mail import email_staff
from ledger.money import CurrencyError, format_money
from payments.models import Order, OrderStatus, Payment, PaymentStatus
from payments.services.orders import cancel_order
from recurring.models import ChargeStatus, Recurrence, RecurrenceStatus, RecurringCharge

logger = logging.getLogger(__name__)

PAYMENT_ENDED = frozenset({PaymentStatus.FAILED, PaymentStatus.CANCELED, PaymentStatus.EXPIRED})


def mark_stopped(recurrence: Recurrence, *, reason: str, now: datetime, at_provider: bool = False) -> None:
    """`at_provider`: the provider told us (it is stopped there already: nothing to send)."""
    recurrence.status = RecurrenceStatus.STOPPED
    recurrence.stopped_at = now
    recurrence.stopped_reason = reason[:300]
    if at_provider:
        recurrence.stop_sent_at = now
    recurrence.save(update_fields=["status", "stopped_at", "stopped_reason", "stop_sent_at", "updated_at"])


def mark_succeeded(charge: RecurringCharge, *, payment: Payment, now: datetime) -> None:
    if charge.status == ChargeStatus.SUCCEEDED:
        return
    charge.status = ChargeStatus.SUCCEEDED
    charge.payment = payment
    charge.charged_at = payment.succeeded_at or now
    charge.next_attempt_at = None
    charge.needs_review = False
    charge.last_error = ""
    charge.save(
        update_fields=["status", "payment", "charged_at", "next_attempt_at", "needs_review", "last_error", "updated_at"]
    )
    record_audit(
        action="recurrence.charge.succeeded",
        actor_label="system:recurring",
        obj=charge,
        amount_minor=charge.amount_minor,
        currency=charge.currency,
        now=now,
    )


def fail_attempt(charge: RecurringCharge, *, error: str, now: datetime) -> None:
    """The current attempt ended without charging (charge locked by the caller): retry on the schedule, or
    abandon after the last attempt or when the recurrence cannot be charged any more."""
    schedule = list(settings.RECURRING_RETRY_SCHEDULE)
    recurrence = charge.recurrence
    if recurrence.status == RecurrenceStatus.STOPPED:
        abandon(charge, reason=f"{error} The recurring payment was stopped.", now=now, notify=False)
        return
    if charge.attempts > len(schedule):
        abandon(charge, reason=f"{error} (after {charge.attempts} attempts)", now=now)
        return
    charge.status = ChargeStatus.FAILED
    charge.needs_review = False
    charge.last_error = error[:300]
    charge.next_attempt_at = now + schedule[max(charge.attempts, 1) - 1]
    charge.save(update_fields=["status", "needs_review", "last_error", "next_attempt_at", "updated_at"])
    record_audit(
        action="recurrence.charge.failed",
        actor_label="system:recurring",
        obj=charge,
        amount_minor=charge.amount_minor,
        currency=charge.currency,
        outcome="failure",
        message=f"attempt {charge.attempts}: {error}"[:500],
        metadata={"next_attempt_at": charge.next_attempt_at.isoformat()},
        now=now,
    )


def abandon(
    charge: RecurringCharge,
    *,
    reason: str,
    now: datetime,
    actor=None,
    actor_label: str = "",
    request=None,
    notify: bool = True,
) -> None:
    """Give the charge up (charge locked by the caller): its order is canceled, staff and the marketplace see it.
    Staff are e-mailed (`notify`) unless they did it themselves or the recurrence was stopped."""
    actor_label = actor_label or ("" if actor is not None else "system:recurring")
    charge.status = ChargeStatus.ABANDONED
    charge.abandoned_at = now
    charge.next_attempt_at = None
    charge.needs_review = False
    charge.last_error = reason[:300]
    charge.save(update_fields=["status", "abandoned_at", "next_attempt_at", "needs_review", "last_error", "updated_at"])
    order = Order.objects.get(pk=charge.order_id)
    if order.status == OrderStatus.OPEN:
        cancel_order(order=order, now=now, actor=actor, actor_label=actor_label, request=request)
    record_audit(
        action="recurrence.charge.abandoned",
        actor=actor,
        actor_label=actor_label,
        obj=charge,
        request=request,
        amount_minor=charge.amount_minor,
        currency=charge.currency,
        outcome="failure",
        message=reason[:500],
        now=now,
    )
    if notify and actor is None:
        notify_staff_on_commit(
            charge,
            subject=f"Recurring charge #{charge.pk} abandoned",
            body=(
                f"Recurring charge #{charge.pk} ({money_text(charge)}) of recurrence #{charge.recurrence_id} "
                f"(buyer {charge.recurrence.buyer_email}) was abandoned after {charge.attempts} attempt(s): "
                f"{reason}\n\nIts order {charge.order_id} is canceled; the marketplace sees the charge as "
                "abandoned in the API.\n"
            ),
        )


def abandon_waiting_charges(*, recurrence_id: int, now: datetime) -> None:
    """Charges waiting for a first send or a retry cannot be charged on a stopped recurrence: abandon them, each
    under its own locks in the usual order (called after the stop has committed)."""
    waiting = RecurringCharge.objects.filter(
        recurrence_id=recurrence_id, status__in=[ChargeStatus.SCHEDULED, ChargeStatus.FAILED]
    )
    for charge_id, order_id in waiting.values_list("pk", "order_id"):
        with transaction.atomic():
            Order.objects.select_for_update().get(pk=order_id)
            charge = RecurringCharge.objects.select_for_update().get(pk=charge_id)
            if charge.status in (ChargeStatus.SCHEDULED, ChargeStatus.FAILED):
                abandon(charge, reason="The recurring payment was stopped.", now=now, notify=False)


def flag_in_doubt(charge: RecurringCharge, *, error: str, now: datetime) -> None:
    charge.needs_review = True
    charge.last_error = (
        f"Outcome unknown ({error[:120]}): the provider may have charged order number {charge.payment_id}. "
        "Not retried until staff have checked."
    )[:300]
    charge.save(update_fields=["needs_review", "last_error", "updated_at"])
    record_audit(
        action="recurrence.charge.in_doubt",
        actor_label="system:recurring",
        obj=charge,
        amount_minor=charge.amount_minor,
        currency=charge.currency,
        outcome="failure",
        message=error[:500],
        now=now,
    )
    notify_staff_on_commit(
        charge,
        subject=f"Recurring charge #{charge.pk}: check whether GoPay charged it",
        body=(
            f"We sent recurring charge #{charge.pk} ({money_text(charge)}) to {charge.recurrence.provider} as order "
            f"number {charge.payment_id}, and its answer was lost: it may or may not have been charged.\n\n"
            f"Look for order number {charge.payment_id} in the provider's portal. If there is none, use the "
            "admin action 'Not charged at the provider: retry'; otherwise abandon the charge and settle the "
            "provider's payment by hand.\n"
        ),
    )


def payment_error(payment: Payment) -> str:
    return (payment.failure_message or payment.failure_code or f"The payment ended {payment.status}.")[:300]


def notify_staff_on_commit(charge: RecurringCharge, *, subject: str, body: str) -> None:
    link = f"{settings.PUBLIC_BASE_URL}/admin/recurring/recurringcharge/{charge.pk}/change/"

    def send() -> None:
        logger.error("%s", subject)
        email_staff(subject=subject, body=f"{body}\nCharge: {link}\n")  # best effort: the charge's state stands

    transaction.on_commit(send, robust=True)


def money_text(charge: RecurringCharge) -> str:
    try:
        return format_money(charge.amount_minor, charge.currency)
    except CurrencyError:
        return f"{charge.amount_minor} {charge.currency} (minor units)"
