"""A recurrence's life: set up (or stopped) from the provider's state of the first payment, stopped by the
marketplace or staff (and the provider told), set up late when its notification was lost."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import transaction

from core.audit import record_audit
from payments.models import Order, OrderStatus, Payment, PaymentStatus
from payments.providers.base import RECURRING, ProviderError, ProviderPaymentState, ProviderRequestRejected
from payments.providers.registry import get_provider
from recurring.models import Recurrence, RecurrenceStatus
from recurring.services.charges import sync_charge_outcome
from recurring.services.outcomes import abandon_waiting_charges, mark_stopped

logger = logging.getLogger(__name__)

PROVIDER_STATES = {
    "requested": RecurrenceStatus.REQUESTED,
    "started": RecurrenceStatus.ACTIVE,
    "stopped": RecurrenceStatus.STOPPED,
}


def sync_recurrence(*, payment: Payment, state: ProviderPaymentState, now: datetime) -> None:
    """After `apply_payment_state` (the GoPay notification handler, inside its transaction): set up or stop the
    recurrence the payment started, and bring a recurring charge in line with its payment. Idempotent and
    order-independent like the fulfilment path: a stopped recurrence never becomes active again."""
    if state.recurrence_state:
        _sync_parent(payment=payment, state=state, now=now)
    sync_charge_outcome(payment=payment, now=now)


def _sync_parent(*, payment: Payment, state: ProviderPaymentState, now: datetime) -> None:
    target = PROVIDER_STATES.get(state.recurrence_state)
    order = payment.order
    if target is None or not order.recurring:
        return
    with transaction.atomic():
        recurrence = Recurrence.objects.select_for_update().filter(first_payment=payment).first()
        if recurrence is None:
            if payment.status != PaymentStatus.SUCCEEDED:
                return  # the buyer has not paid: nothing is set up yet
            if not payment.settles_order:
                # A second payment for the order (refunded automatically): its recurrence is not the order's.
                logger.warning("payment %s started a recurrence but does not settle its order: ignored", payment.pk)
                return
            recurrence = Recurrence.objects.create(
                first_order=order,
                first_payment=payment,
                provider=payment.provider,
                provider_ref=payment.provider_ref,
                buyer_email=order.buyer_email,
                currency=payment.currency,
                status=target,
                valid_until=_requested_valid_until(payment.provider),
                created_at=now,
                stopped_at=now if target == RecurrenceStatus.STOPPED else None,
                stopped_reason="Stopped at the provider" if target == RecurrenceStatus.STOPPED else "",
                stop_sent_at=now if target == RecurrenceStatus.STOPPED else None,
            )
            record_audit(
                action="recurrence.create",
                actor_label=f"{payment.provider}:notification",
                obj=recurrence,
                amount_minor=payment.amount_minor,
                currency=payment.currency,
                message=recurrence.status,
                now=now,
            )
            return
        if target == RecurrenceStatus.ACTIVE and recurrence.status == RecurrenceStatus.REQUESTED:
            recurrence.status = RecurrenceStatus.ACTIVE
            recurrence.save(update_fields=["status", "updated_at"])
            record_audit(
                action="recurrence.activate", actor_label=f"{payment.provider}:notification", obj=recurrence, now=now
            )
        elif target == RecurrenceStatus.STOPPED and recurrence.status != RecurrenceStatus.STOPPED:
            mark_stopped(
                recurrence, reason="Stopped at the provider (by the buyer or the provider)", now=now, at_provider=True
            )
            record_audit(
                action="recurrence.stop", actor_label=f"{payment.provider}:notification", obj=recurrence, now=now
            )
    if target == RecurrenceStatus.STOPPED:  # inside the notification's transaction: after it commits
        transaction.on_commit(lambda: abandon_waiting_charges(recurrence_id=recurrence.pk, now=now), robust=True)


def _requested_valid_until(provider_name: str) -> date | None:
    """The last day the first payment asked the provider for (GoPay: GOPAY_RECURRENCE_DATE_TO, which the adapter
    sends with the first payment). None if the provider has no such setting."""
    raw = getattr(settings, f"{provider_name.upper()}_RECURRENCE_DATE_TO", "")
    try:
        return date.fromisoformat(str(raw)) if raw else None
    except ValueError:
        return None


def stop_recurrence(
    *, recurrence: Recurrence, actor_label: str, reason: str, now: datetime, actor=None, request=None
) -> Recurrence:
    """Stop a recurrence (call it outside any transaction): no charge is started on it any more from the moment
    the stop commits, charges waiting for a retry are abandoned, then the provider is told (void-recurrence); if
    it cannot be reached, the hourly task tells it later. Idempotent: stopping a stopped recurrence does nothing."""
    with transaction.atomic():
        locked = Recurrence.objects.select_for_update().get(pk=recurrence.pk)
        # Stopped already: nothing changes; the provider is told again only if it could not be told before.
        already = locked.status == RecurrenceStatus.STOPPED
        if not already:
            mark_stopped(locked, reason=reason or f"Stopped by {actor_label or 'staff'}", now=now)
            record_audit(
                action="recurrence.stop",
                actor=actor,
                actor_label=actor_label,
                obj=locked,
                request=request,
                message=reason,
                idempotency_key=getattr(request, "idempotency_key", "") if request is not None else "",
                now=now,
            )
    if not already:
        abandon_waiting_charges(recurrence_id=locked.pk, now=now)
    send_stop(recurrence_id=locked.pk, now=now)
    locked.refresh_from_db()
    return locked


def send_stop(*, recurrence_id: int, now: datetime) -> bool:
    """Tell the provider a stopped recurrence is stopped (void-recurrence). True once it knows."""
    recurrence = Recurrence.objects.select_related("first_payment").get(pk=recurrence_id)
    if recurrence.status != RecurrenceStatus.STOPPED or recurrence.stop_sent_at is not None:
        return recurrence.stop_sent_at is not None
    try:
        get_provider(recurrence.provider).stop_recurrence(parent_payment=recurrence.first_payment)
    except ProviderRequestRejected as exc:
        # Already stopped there (the buyer did), or nothing to stop: either way the provider will not charge it.
        logger.info("provider refused to stop recurrence %s: %s", recurrence.pk, exc.code)
    except ProviderError as exc:
        logger.warning(
            "could not stop recurrence %s at %s (retried hourly): %s", recurrence.pk, recurrence.provider, exc
        )
        return False
    with transaction.atomic():
        locked = Recurrence.objects.select_for_update().get(pk=recurrence.pk)
        if locked.stop_sent_at is None:
            locked.stop_sent_at = now
            locked.save(update_fields=["stop_sent_at", "updated_at"])
    return True


def set_up_missed_recurrences(*, now: datetime, limit: int = 200) -> int:
    """Paid recurring orders with no recurrence (the parent's notification was lost and the janitor or the
    return page applied the payment): read the settling payment from the provider and set it up."""
    orders = Order.objects.filter(
        recurring=True, status=OrderStatus.PAID, recurrences__isnull=True, paid_at__gte=now - timedelta(days=30)
    )
    done = 0
    for order in orders.order_by("pk")[:limit]:
        payment = order.payments.filter(settles_order=True).first()
        if payment is None or RECURRING not in get_provider(payment.provider).capabilities:
            continue
        try:
            state = get_provider(payment.provider).fetch_payment(payment=payment)
        except ProviderError as exc:
            logger.info("could not read payment %s for its recurrence: %s", payment.pk, exc.code)
            continue
        if state.recurrence_state:
            _sync_parent(payment=payment, state=state, now=now)
            done += int(Recurrence.objects.filter(first_payment=payment).exists())
    return done
