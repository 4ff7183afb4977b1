"""The hourly task's work (`recurring.tasks.retry_failed_recurring_charges`)."""

from __future__ import annotations

import logging
from datetime import datetime

from django.conf import settings
from django.db import transaction

from payments.models import OrderStatus
from payments.state import PAYMENT_IN_FLIGHT
from recurring.errors import RecurrenceStopped
from recurring.models import ChargeStatus, Recurrence, RecurrenceStatus, RecurringCharge
from recurring.services.charges import send_charge, sync_charge_outcome
from recurring.services.outcomes import PAYMENT_ENDED, flag_in_doubt
from recurring.services.recurrences import send_stop, set_up_missed_recurrences

logger = logging.getLogger(__name__)


def retry_failed_charges(*, now: datetime, limit: int = 200) -> dict[str, int]:
    """Hourly. (1) Charges waiting on a child the provider created: read the child's status (a notification
    may have been lost) and follow it. (2) Attempts claimed but never answered (a crash mid-call) become in
    doubt. (3) Charges due (failed with next_attempt_at passed, or scheduled and never sent): the next attempt.
    (4) Stopped recurrences the provider has not been told about; paid recurring orders whose recurrence was
    never set up (the notification lost). Safe to run twice; one charge's failure does not stop the others."""
    from payments.services.checkout import sync_payment_from_provider

    counts = {"looked_up": 0, "in_doubt": 0, "sent": 0, "stops_sent": 0, "set_up": 0}
    waiting = RecurringCharge.objects.filter(
        status=ChargeStatus.PROCESSING, needs_review=False, payment__status__in=PAYMENT_IN_FLIGHT
    ).select_related("payment")
    for charge in waiting.order_by("pk")[:limit]:
        payment = charge.payment
        try:
            if payment.provider_ref:
                payment = sync_payment_from_provider(payment=payment, now=now, source="recurring")
                sync_charge_outcome(payment=payment, now=now)
                counts["looked_up"] += 1
            elif payment.created_at <= now - settings.RECURRING_IN_DOUBT_AFTER:
                with transaction.atomic():
                    locked = RecurringCharge.objects.select_for_update().get(pk=charge.pk)
                    if locked.payment_id == payment.pk and not locked.needs_review:
                        flag_in_doubt(locked, error="no answer recorded for the attempt", now=now)
                        counts["in_doubt"] += 1
        except Exception:
            logger.exception("recurring charge %s: looking up its attempt failed", charge.pk)
    # Charges whose attempt ended without our hook seeing it (the janitor applied the provider's state).
    ended = RecurringCharge.objects.filter(status=ChargeStatus.PROCESSING, payment__status__in=PAYMENT_ENDED)
    settled = RecurringCharge.objects.filter(
        status__in=[ChargeStatus.PROCESSING, ChargeStatus.FAILED], order__status=OrderStatus.PAID
    )
    for charge in (ended | settled).distinct().select_related("order", "payment").order_by("pk")[:limit]:
        payment = charge.order.payments.filter(settles_order=True).first() or charge.payment
        try:
            if payment is not None:
                sync_charge_outcome(payment=payment, now=now)
        except Exception:
            logger.exception("recurring charge %s: sync failed", charge.pk)

    due = RecurringCharge.objects.filter(
        status=ChargeStatus.FAILED, needs_review=False, next_attempt_at__lte=now
    ) | RecurringCharge.objects.filter(
        status=ChargeStatus.SCHEDULED, created_at__lte=now - settings.RECURRING_IN_DOUBT_AFTER
    )
    for charge in due.order_by("pk")[:limit]:
        try:
            sent = send_charge(charge=charge, now=now)
        except RecurrenceStopped:
            continue
        except Exception:
            logger.exception("recurring charge %s: retry failed", charge.pk)
            continue
        counts["sent"] += int(sent.attempts > charge.attempts)

    unsent = Recurrence.objects.filter(status=RecurrenceStatus.STOPPED, stop_sent_at__isnull=True)
    for recurrence_id in unsent.order_by("pk").values_list("pk", flat=True)[:limit]:
        counts["stops_sent"] += int(send_stop(recurrence_id=recurrence_id, now=now))
    counts["set_up"] = set_up_missed_recurrences(now=now, limit=limit)
    return counts
