"""Charging a recurrence: the charge's own order, one payment per attempt, the provider called outside any
transaction, and what each kind of provider failure means (see the package's docstring: never twice)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from django.conf import settings
from django.db import transaction

from core.audit import record_audit
from core.errors import ConflictError, DomainError, ErrorCode
from payments.models import Order, OrderStatus, Payment, PaymentStatus
from payments.providers.base import (
    RECURRING,
    PaymentDeclined,
    ProviderConfigurationError,
    ProviderError,
    ProviderOutcomeUnknown,
    ProviderRequestRejected,
    ProviderUnavailable,
)
from payments.providers.registry import get_provider
from payments.services.orders import LineInput, create_order
from payments.state import PAYMENT_IN_FLIGHT, transition_payment
from recurring.errors import RecurrenceNotActive, RecurrenceStopped
from recurring.models import ChargeStatus, Recurrence, RecurrenceStatus, RecurringCharge
from recurring.services.outcomes import (
    PAYMENT_ENDED,
    abandon,
    abandon_waiting_charges,
    fail_attempt,
    flag_in_doubt,
    mark_stopped,
    mark_succeeded,
    payment_error,
)

logger = logging.getLogger(__name__)

STOPPED_AT_PROVIDER = "PAYMENT_RECURRENCE_STOPPED"  # the provider's error code for a stopped recurrence


def charge_lines(*, recurrence: Recurrence, lines: Sequence[LineInput] | None, amount_minor: int | None):
    """The lines of a new charge. Given lines are used as they are (`amount_minor`, if also given, must equal
    their total). With no lines: the first order's lines unchanged, or, with `amount_minor`, the first order's
    only line at that amount (quantity 1: metered use); a first order of several lines needs explicit lines."""
    if lines:
        total = sum(line.unit_amount_minor * line.quantity for line in lines)
        if amount_minor is not None and amount_minor != total:
            raise DomainError(
                f"amount ({amount_minor}) differs from the lines' total ({total}).",
                code=ErrorCode.VALIDATION_ERROR,
                fields={"amount": [{"code": "amount_mismatch", "message": "Must equal the lines' total."}]},
            )
        return list(lines)
    first_lines = list(recurrence.first_order.lines.order_by("position"))
    if amount_minor is None:
        return [_line_input(line) for line in first_lines]
    if len(first_lines) != 1:
        raise DomainError(
            "The first order has several lines: give the charge's lines instead of an amount.",
            code=ErrorCode.VALIDATION_ERROR,
            fields={"lines": [{"code": "required", "message": "Give the lines to charge."}]},
        )
    if amount_minor <= 0:
        raise DomainError(
            "The amount must be greater than zero.",
            code=ErrorCode.AMOUNT_NOT_POSITIVE,
            fields={"amount": [{"code": str(ErrorCode.AMOUNT_NOT_POSITIVE), "message": "Must be positive."}]},
        )
    return [_line_input(first_lines[0], quantity=1, unit_amount_minor=amount_minor)]


def _line_input(line, **overrides) -> LineInput:
    values = {
        "payee_id": line.payee_id,
        "description": line.description,
        "quantity": line.quantity,
        "unit_amount_minor": line.unit_amount_minor,
        "kind": line.kind,
        "vat_category": line.vat_category,
        "event_ref": line.event_ref,
        "event_starts_at": line.event_starts_at,
        "event_country": line.event_country,
    }
    values.update(overrides)
    return LineInput(**values)


def ensure_chargeable(recurrence: Recurrence, now: datetime) -> None:
    if recurrence.status == RecurrenceStatus.STOPPED:
        raise RecurrenceStopped()
    if recurrence.status != RecurrenceStatus.ACTIVE:
        raise RecurrenceNotActive("The buyer's first payment has not started the recurring payment yet.")
    if recurrence.valid_until is not None and now.date() > recurrence.valid_until:
        raise RecurrenceNotActive(f"The recurring payment ended on {recurrence.valid_until.isoformat()}.")
    if RECURRING not in get_provider(recurrence.provider).capabilities:
        raise RecurrenceNotActive(f"{recurrence.provider} cannot charge recurring payments.")


def create_recurring_charge(
    *,
    recurrence: Recurrence,
    lines: Sequence[LineInput] | None = None,
    amount_minor: int | None = None,
    description: str = "",
    reference: str | None = None,
    now: datetime,
    actor_label: str,
    actor=None,
    request=None,
    idempotency_key: str = "",
) -> RecurringCharge:
    """The charge's order and the charge (`scheduled`), nothing sent. Refuses (409) a recurrence that is not
    active without calling the provider. `send_charge` sends it (after this has committed). With an
    `idempotency_key` (the API request's), a re-run of the same request returns the charge it made."""
    ensure_chargeable(recurrence, now)
    if idempotency_key and (made := _charge_by_key(recurrence, idempotency_key)) is not None:
        return made
    line_inputs = charge_lines(recurrence=recurrence, lines=lines, amount_minor=amount_minor)
    with transaction.atomic():
        locked = Recurrence.objects.select_for_update().select_related("first_order").get(pk=recurrence.pk)
        ensure_chargeable(locked, now)
        if idempotency_key and (made := _charge_by_key(locked, idempotency_key)) is not None:
            return made
        first = locked.first_order
        order = create_order(
            currency=locked.currency,
            lines=line_inputs,
            buyer_email=first.buyer_email,
            now=now,
            api_client=first.api_client,
            reference=reference,
            description=description or first.description,
            buyer_country=first.buyer_country,
            buyer_vat_id=first.buyer_vat_id,
            locale=first.locale,
            return_url=first.return_url,
            metadata={"recurrence": str(locked.pk)},
            # Open for the whole retry schedule: the order is canceled if the charge is abandoned.
            expires_at=now + settings.RECURRING_CHARGE_ORDER_TTL,
            actor_label=actor_label,
        )
        charge = RecurringCharge.objects.create(
            recurrence=locked,
            order=order,
            amount_minor=order.total_minor,
            currency=order.currency,
            status=ChargeStatus.SCHEDULED,
            idempotency_key=idempotency_key,
            created_at=now,
        )
        record_audit(
            action="recurrence.charge.create",
            actor=actor,
            actor_label=actor_label,
            obj=charge,
            request=request,
            amount_minor=charge.amount_minor,
            currency=charge.currency,
            idempotency_key=idempotency_key,
            now=now,
        )
    return charge


def _charge_by_key(recurrence: Recurrence, idempotency_key: str) -> RecurringCharge | None:
    return RecurringCharge.objects.filter(recurrence=recurrence, idempotency_key=idempotency_key).first()


def charge_recurrence(
    *,
    recurrence: Recurrence,
    lines: Sequence[LineInput] | None = None,
    amount_minor: int | None = None,
    description: str = "",
    reference: str | None = None,
    now: datetime,
    actor_label: str,
    actor=None,
    request=None,
    idempotency_key: str = "",
) -> RecurringCharge:
    """Create a charge and send it at once (call it outside any transaction). Raises `RecurrenceStopped` (409)
    when the recurrence is stopped, here or at the provider; other failures leave the charge `failed` (retried
    on the schedule) or `processing` + `needs_review` (in doubt), and return it."""
    charge = create_recurring_charge(
        recurrence=recurrence,
        lines=lines,
        amount_minor=amount_minor,
        description=description,
        reference=reference,
        now=now,
        actor_label=actor_label,
        actor=actor,
        request=request,
        idempotency_key=idempotency_key,
    )
    return send_charge(charge=charge, now=now)


def send_charge(*, charge: RecurringCharge, now: datetime) -> RecurringCharge:
    """Start the charge's next attempt if it is due (`scheduled`, or `failed` with `next_attempt_at` passed) and
    the previous attempt is known not to take money; the provider is called outside any transaction."""
    payment = claim_attempt(charge=charge, now=now)
    if payment is not None:
        _send_attempt(charge_id=charge.pk, payment=payment, now=now)
    return RecurringCharge.objects.get(pk=charge.pk)


def claim_attempt(*, charge: RecurringCharge, now: datetime) -> Payment | None:
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=charge.order_id)
        recurrence = Recurrence.objects.select_for_update().get(pk=charge.recurrence_id)
        locked = RecurringCharge.objects.select_for_update().get(pk=charge.pk)
        due = locked.status == ChargeStatus.SCHEDULED or (
            locked.status == ChargeStatus.FAILED
            and not locked.needs_review
            and (locked.next_attempt_at is None or locked.next_attempt_at <= now)
        )
        if not due:
            return None
        if order.status == OrderStatus.PAID:  # paid another way meanwhile (the buyer used the order's checkout)
            settling = order.payments.filter(settles_order=True).first()
            if settling is not None:
                mark_succeeded(locked, payment=settling, now=now)
            return None
        if recurrence.status == RecurrenceStatus.STOPPED:
            abandon(locked, reason="The recurring payment was stopped.", now=now, notify=False)
            return None
        try:
            ensure_chargeable(recurrence, now)
        except DomainError as exc:
            abandon(locked, reason=exc.message, now=now)
            return None
        if order.status != OrderStatus.OPEN:
            abandon(locked, reason=f"The charge's order is {order.status}.", now=now)
            return None
        previous = locked.payment
        if previous is not None and previous.status in PAYMENT_IN_FLIGHT:
            # Second line of defence: a charge only becomes `failed` once its attempt is known to have ended.
            locked.status = ChargeStatus.PROCESSING
            locked.needs_review = not previous.provider_ref
            locked.save(update_fields=["status", "needs_review", "updated_at"])
            logger.error(
                "recurring charge %s: previous attempt %s still in flight; not retried", locked.pk, previous.pk
            )
            return None
        payment = Payment.objects.create(
            order=order,
            provider=recurrence.provider,
            amount_minor=locked.amount_minor,
            currency=locked.currency,
            created_at=now,
            status_changed_at=now,
        )
        locked.payment = payment
        locked.status = ChargeStatus.PROCESSING
        locked.attempts += 1
        locked.next_attempt_at = None
        locked.save(update_fields=["payment", "status", "attempts", "next_attempt_at", "updated_at"])
    return payment


def _send_attempt(*, charge_id: int, payment: Payment, now: datetime) -> None:
    charge = RecurringCharge.objects.select_related("recurrence__first_payment").get(pk=charge_id)
    recurrence = charge.recurrence
    try:
        child_ref = get_provider(recurrence.provider).charge_recurrence(
            parent_payment=recurrence.first_payment, payment=payment
        )
    except ProviderRequestRejected as exc:
        if exc.code == STOPPED_AT_PROVIDER:
            _stopped_at_provider(charge_id=charge_id, payment=payment, now=now)
            raise RecurrenceStopped() from exc
        _attempt_not_created(charge_id=charge_id, payment=payment, exc=exc, now=now)
    except (PaymentDeclined, ProviderUnavailable, ProviderConfigurationError) as exc:
        _attempt_not_created(charge_id=charge_id, payment=payment, exc=exc, now=now)
    except ProviderOutcomeUnknown as exc:
        _attempt_in_doubt(charge_id=charge_id, payment=payment, error=str(exc), now=now)
    except BaseException as exc:  # anything else after the request may have left: treat as in doubt, and show it
        _attempt_in_doubt(charge_id=charge_id, payment=payment, error=f"{type(exc).__name__}: {exc}", now=now)
        raise
    else:
        with transaction.atomic():
            if not transition_payment(payment=payment, to=PaymentStatus.PENDING, now=now, provider_ref=child_ref):
                # Closed locally meanwhile (order canceled): still record the child, so its notification finds it.
                Payment.objects.filter(pk=payment.pk, provider_ref="").update(provider_ref=child_ref)
            if charge.last_error:
                charge.last_error = ""
                charge.save(update_fields=["last_error", "updated_at"])
            record_audit(
                action="recurrence.charge.sent",
                actor_label="system:recurring",
                obj=charge,
                amount_minor=payment.amount_minor,
                currency=payment.currency,
                message=f"payment {payment.pk} -> {recurrence.provider} {child_ref}",
                now=now,
            )


def _stopped_at_provider(*, charge_id: int, payment: Payment, now: datetime) -> None:
    """The provider refused: the buyer (or the provider) stopped the recurrence. Nothing was charged."""
    with transaction.atomic():
        charge = RecurringCharge.objects.get(pk=charge_id)
        Order.objects.select_for_update().get(pk=charge.order_id)
        transition_payment(
            payment=payment,
            to=PaymentStatus.FAILED,
            now=now,
            failure_code=STOPPED_AT_PROVIDER,
            failure_message="The recurring payment was stopped at the provider.",
        )
        recurrence = Recurrence.objects.select_for_update().get(pk=charge.recurrence_id)
        if recurrence.status != RecurrenceStatus.STOPPED:
            mark_stopped(
                recurrence, reason="Stopped at the provider (by the buyer or the provider)", now=now, at_provider=True
            )
            record_audit(
                action="recurrence.stop", actor_label=f"{recurrence.provider}:refusal", obj=recurrence, now=now
            )
        charge = RecurringCharge.objects.select_for_update().get(pk=charge_id)
        if charge.status not in (ChargeStatus.SUCCEEDED, ChargeStatus.ABANDONED):
            abandon(charge, reason="The recurring payment was stopped at the provider.", now=now, notify=False)
    abandon_waiting_charges(recurrence_id=charge.recurrence_id, now=now)


def _attempt_not_created(*, charge_id: int, payment: Payment, exc: ProviderError, now: datetime) -> None:
    """Refused before or by the provider: no child exists. The attempt failed; retried on the schedule."""
    logger.warning("recurring charge %s attempt (payment %s) refused: %s", charge_id, payment.pk, exc.code)
    with transaction.atomic():
        charge = RecurringCharge.objects.get(pk=charge_id)
        Order.objects.select_for_update().get(pk=charge.order_id)
        transition_payment(
            payment=payment,
            to=PaymentStatus.FAILED,
            now=now,
            failure_code=(exc.code or "provider_error")[:80],
            failure_message=str(exc)[:300],
        )
        charge = RecurringCharge.objects.select_for_update().get(pk=charge_id)
        if charge.payment_id == payment.pk and charge.status == ChargeStatus.PROCESSING:
            fail_attempt(charge, error=f"{exc.code or 'provider_error'}: {exc}", now=now)


def _attempt_in_doubt(*, charge_id: int, payment: Payment, error: str, now: datetime) -> None:
    """The provider's answer was lost: it may have created (and will charge) a child whose id we do not know.
    Never retried automatically; staff check the provider's portal for the order number (our payment id)."""
    logger.error("recurring charge %s attempt (payment %s) outcome unknown: %s", charge_id, payment.pk, error)
    with transaction.atomic():
        Payment.objects.filter(pk=payment.pk, status=PaymentStatus.CREATED).update(
            failure_code="outcome_unknown", failure_message=error[:300]
        )
        charge = RecurringCharge.objects.select_for_update().get(pk=charge_id)
        if charge.payment_id != payment.pk or charge.needs_review:
            return
        flag_in_doubt(charge, error=error, now=now)


def sync_charge_outcome(*, payment: Payment, now: datetime) -> RecurringCharge | None:
    """A recurring charge follows its payment: succeeded when a payment of it settled its order; failed (retried
    on the schedule, or abandoned after the last attempt) when its current attempt ended at the provider."""
    charge = RecurringCharge.objects.filter(order_id=payment.order_id).first()
    if charge is None:
        return None
    with transaction.atomic():
        Order.objects.select_for_update().get(pk=payment.order_id)  # held already on the notification path
        charge = RecurringCharge.objects.select_for_update().get(pk=charge.pk)
        payment = Payment.objects.get(pk=payment.pk)
        if payment.status == PaymentStatus.SUCCEEDED:
            if payment.settles_order:
                mark_succeeded(charge, payment=payment, now=now)
        elif (
            payment.status in PAYMENT_ENDED
            and charge.payment_id == payment.pk
            and charge.status == ChargeStatus.PROCESSING
        ):
            fail_attempt(charge, error=payment_error(payment), now=now)
    return charge


def release_in_doubt_charge(*, charge: RecurringCharge, now: datetime, actor=None, request=None) -> RecurringCharge:
    """Staff checked the provider's portal: the in-doubt attempt was NOT created there. Its payment is failed
    and the charge is retried on the schedule like any failed attempt."""
    with transaction.atomic():
        Order.objects.select_for_update().get(pk=charge.order_id)
        locked = RecurringCharge.objects.select_for_update().get(pk=charge.pk)
        if not locked.needs_review or locked.status != ChargeStatus.PROCESSING:
            raise ConflictError("This charge is not waiting for a check.", code=ErrorCode.VALIDATION_ERROR)
        payment = locked.payment
        if payment is not None and payment.provider_ref:
            raise ConflictError(
                "The provider created this attempt: its outcome comes from the provider.",
                code=ErrorCode.VALIDATION_ERROR,
            )
        if payment is not None:
            transition_payment(
                payment=payment,
                to=PaymentStatus.FAILED,
                now=now,
                failure_code="not_created",
                failure_message="Staff confirmed the provider has no payment with this order number.",
            )
        record_audit(
            action="recurrence.charge.release",
            actor=actor,
            obj=locked,
            request=request,
            amount_minor=locked.amount_minor,
            currency=locked.currency,
            message=f"order number {locked.payment_id} not found at the provider",
            now=now,
        )
        fail_attempt(locked, error="The provider did not create the previous attempt (checked by staff).", now=now)
    return RecurringCharge.objects.get(pk=charge.pk)


def abandon_charge(
    *, charge: RecurringCharge, reason: str, now: datetime, actor=None, actor_label: str = "", request=None
) -> RecurringCharge:
    """Staff give a charge up. Refused while the provider may still charge an attempt of it that it created."""
    with transaction.atomic():
        Order.objects.select_for_update().get(pk=charge.order_id)
        locked = RecurringCharge.objects.select_for_update().get(pk=charge.pk)
        if locked.status in (ChargeStatus.SUCCEEDED, ChargeStatus.ABANDONED):
            return locked
        payment = locked.payment
        if payment is not None and payment.status in PAYMENT_IN_FLIGHT:
            if payment.provider_ref:
                raise ConflictError(
                    "The provider is still processing this charge; wait for its outcome.",
                    code=ErrorCode.PAYMENT_IN_PROGRESS,
                )
            transition_payment(
                payment=payment,
                to=PaymentStatus.CANCELED,
                now=now,
                failure_code="abandoned",
                failure_message="Abandoned by staff.",
            )
        abandon(
            locked,
            reason=reason or "Abandoned by staff.",
            now=now,
            actor=actor,
            actor_label=actor_label,
            request=request,
        )
    return RecurringCharge.objects.get(pk=charge.pk)
