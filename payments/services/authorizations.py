"""Pre-authorized payments (orders with `capture_method` manual): capture them, all or part, or void them; and
watch their holds, which lapse at the provider after a while.

- Provider calls are made outside any DB transaction and hold no row lock. What the provider answers goes
  through the one fulfilment path (`apply_payment_state`, source "capture" / "void"), so a notification that
  arrives before, at the same time or after ends in the same rows and the same ledger.
- When the provider does not answer (`ProviderUnavailable`, `ProviderOutcomeUnknown`) nothing is changed
  here: the capture may have happened. The payment stays as it is; the next notification, the buyer's return
  page or the hourly `watch_authorizations` applies the truth. Never retried blindly.
- After a void (or a lapse) the order is open again, so the buyer may pay again (the hold is gone), unless its
  time is up: then it is expired at once, as the stale-order janitor would. While a payment is authorized the
  order is never expired (see `orders.expire_order`).
- Everything is keyed on the provider's capabilities (`capture`, `void`), never on its name.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction

from core.audit import record_audit
from core.errors import DomainError, ErrorCode, NotFoundError
from core.models import AuditEntry
from core.staff_mail import email_staff
from ledger.money import Money
from payments.models import OrderStatus, Payment, PaymentStatus, ReviewReason
from payments.providers.base import (
    CAPTURE,
    VOID,
    ProviderConfigurationError,
    ProviderOutcomeUnknown,
    ProviderPaymentState,
    ProviderRequestRejected,
    ProviderUnavailable,
)
from payments.providers.registry import get_provider
from payments.services.checkout import sync_payment_from_provider
from payments.services.fulfilment import AUTHORIZATION_EXPIRED, apply_payment_state
from payments.services.orders import expire_order

logger = logging.getLogger(__name__)

# Staff are warned this long before a hold lapses where the provider does not say (adapter attribute
# `authorization_warn_before`).
DEFAULT_WARN_BEFORE = timedelta(days=1)
# A hold past its expiry that the provider still reports as authorized (or that we cannot look up) is recorded
# as lapsed this long after the expiry: by then no capture can succeed.
RELEASE_AFTER_EXPIRY = timedelta(days=1)
PROVIDER_NAMES = {"gopay": "GoPay", "stripe": "Stripe", "paypal": "PayPal", "sandbox": "The sandbox"}


def provider_label(name: str) -> str:
    return PROVIDER_NAMES.get(name, name)


def _load_authorized(payment_id: int, verb: str) -> Payment:
    payment = Payment.objects.select_related("order").filter(pk=payment_id).first()
    if payment is None:
        raise NotFoundError("No such payment.")
    if payment.status != PaymentStatus.AUTHORIZED:
        raise DomainError(
            f"Payment {payment.pk} is {payment.get_status_display().lower()}, not authorized: "
            f"there is nothing to {verb}.",
            code=ErrorCode.PAYMENT_NOT_AUTHORIZED,
            status=409,
        )
    return payment


def _provider_that_can(payment: Payment, capability: str, code: ErrorCode):
    try:
        provider = get_provider(payment.provider)
    except ProviderConfigurationError as exc:
        raise DomainError(str(exc), code=ErrorCode.PROVIDER_NOT_CONFIGURED, status=503) from exc
    if capability not in provider.capabilities:
        done = "captured" if capability == CAPTURE else "voided"
        raise DomainError(
            f"{provider_label(payment.provider)} payments cannot be {done} here.",
            code=code,
            status=409,
        )
    return provider


def _audit_failure(*, action: str, payment: Payment, actor, actor_label: str, request, amount_minor, message, now):
    record_audit(
        action=action,
        actor=actor,
        actor_label=actor_label,
        obj=payment,
        request=request,
        amount_minor=amount_minor,
        currency=payment.currency,
        outcome=AuditEntry.Outcome.FAILURE,
        message=message,
        now=now,
    )


def _call_provider(*, verb: str, payment: Payment, call, actor, actor_label, request, amount_minor, now):
    """Run the provider call; its errors become DomainErrors (written to the audit trail first)."""
    name = provider_label(payment.provider)
    try:
        return call()
    except (ProviderUnavailable, ProviderOutcomeUnknown) as exc:
        _audit_failure(
            action=f"payment.{verb}",
            payment=payment,
            actor=actor,
            actor_label=actor_label,
            request=request,
            amount_minor=amount_minor,
            message=f"no answer: {exc.code or exc}",
            now=now,
        )
        raise DomainError(
            f"{name} did not answer; the {verb} may have happened — the status is checked again. "
            "Look at the payment again in a few minutes before retrying.",
            code=ErrorCode.PROVIDER_UNAVAILABLE,
            status=503,
        ) from exc
    except ProviderRequestRejected as exc:
        _audit_failure(
            action=f"payment.{verb}",
            payment=payment,
            actor=actor,
            actor_label=actor_label,
            request=request,
            amount_minor=amount_minor,
            message=f"rejected: {exc.code}: {exc}",
            now=now,
        )
        # The hold may have lapsed or been captured or voided elsewhere: take the provider's word for it.
        sync_payment_from_provider(payment=payment, now=now, source=verb)
        raise DomainError(f"{name} refused the {verb}: {exc}", code=ErrorCode.PROVIDER_REJECTED, status=409) from exc
    except ProviderConfigurationError as exc:
        raise DomainError(str(exc), code=ErrorCode.PROVIDER_NOT_CONFIGURED, status=503) from exc


def capture_authorized_payment(
    *,
    payment_id: int,
    amount_minor: int | None,
    now: datetime,
    actor=None,
    actor_label: str = "",
    request=None,
) -> Payment:
    """Capture an authorized payment: all of it (`amount_minor` None or the authorized amount) or part (the
    provider releases the rest; see `refunds.services.record_uncaptured_release` for how the rest is booked).
    Raises `payment_not_authorized`, `capture_not_supported`, `amount_must_be_positive`,
    `capture_exceeds_authorized` before anything is sent; provider errors as 503 / 409 (see module doc)."""
    payment = _load_authorized(payment_id, "capture")
    provider = _provider_that_can(payment, CAPTURE, ErrorCode.CAPTURE_NOT_SUPPORTED)
    authorized = payment.authorized_minor or payment.amount_minor
    amount = authorized if amount_minor is None else amount_minor
    if amount <= 0:
        raise DomainError("The amount to capture must be greater than zero.", code=ErrorCode.AMOUNT_NOT_POSITIVE)
    if amount > authorized:
        raise DomainError(
            f"Only {Money(authorized, payment.currency)} is authorized; "
            f"{Money(amount, payment.currency)} cannot be captured.",
            code=ErrorCode.CAPTURE_EXCEEDS_AUTHORIZED,
            status=409,
            fields={"amount": [{"code": ErrorCode.CAPTURE_EXCEEDS_AUTHORIZED, "message": "More than authorized."}]},
        )
    state = _call_provider(
        verb="capture",
        payment=payment,
        call=lambda: provider.capture(payment=payment, amount=Money(amount, payment.currency)),
        actor=actor,
        actor_label=actor_label,
        request=request,
        amount_minor=amount,
        now=now,
    )
    with transaction.atomic():
        apply_payment_state(payment_id=payment.pk, state=state, now=now, source="capture")
        payment.refresh_from_db()
        record_audit(
            action="payment.capture",
            actor=actor,
            actor_label=actor_label,
            obj=payment,
            request=request,
            amount_minor=amount,
            currency=payment.currency,
            message=f"{'full' if amount == authorized else 'partial'} capture of "
            f"{Money(authorized, payment.currency)} authorized; now {payment.status}",
            now=now,
        )
    return payment


def void_authorized_payment(
    *, payment_id: int, now: datetime, actor=None, actor_label: str = "", request=None
) -> Payment:
    """Release the hold on the buyer's card; nothing is charged. The order is open again (the buyer may pay
    again) unless its time is up, when it is expired."""
    payment = _load_authorized(payment_id, "void")
    provider = _provider_that_can(payment, VOID, ErrorCode.VOID_NOT_SUPPORTED)
    state = _call_provider(
        verb="void",
        payment=payment,
        call=lambda: provider.void(payment=payment),
        actor=actor,
        actor_label=actor_label,
        request=request,
        amount_minor=payment.authorized_minor,
        now=now,
    )
    held = payment.authorized_minor
    with transaction.atomic():
        apply_payment_state(payment_id=payment.pk, state=state, now=now, source="void")
        payment.refresh_from_db()
        record_audit(
            action="payment.void",
            actor=actor,
            actor_label=actor_label,
            obj=payment,
            request=request,
            amount_minor=held,
            currency=payment.currency,
            message=f"now {payment.status}",
            now=now,
        )
    _expire_order_if_due(payment, now)
    return payment


def _expire_order_if_due(payment: Payment, now: datetime) -> None:
    order = payment.order
    order.refresh_from_db()
    if payment.status != PaymentStatus.AUTHORIZED and order.status == OrderStatus.OPEN and order.expires_at <= now:
        expire_order(order=order, now=now)


# --- the watch ----------------------------------------------------------------------------------------------


@dataclass
class WatchResult:
    looked_up: int = 0
    warned: int = 0
    lapsed: int = 0
    ended: int = 0


def _warn_before(provider_name: str) -> timedelta:
    try:
        provider = get_provider(provider_name)
    except ProviderConfigurationError:
        return DEFAULT_WARN_BEFORE
    return getattr(provider, "authorization_warn_before", None) or DEFAULT_WARN_BEFORE


def watch_authorizations(*, now: datetime, limit: int = 500) -> WatchResult:
    """Hourly. For every authorized payment: ask the provider (a notification may never have come, or a capture
    or void answer was lost); warn staff once when its hold is about to lapse; and once it has lapsed, record
    the release (payment canceled, `authorization_expired`, hold reversed) — when the provider says so, or a
    day after the expiry if the provider still says authorized or cannot be reached. Safe to run twice."""
    result = WatchResult()
    ids = list(
        Payment.objects.filter(status=PaymentStatus.AUTHORIZED)
        .order_by("authorization_expires_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    for payment_id in ids:
        try:
            _watch_one(payment_id=payment_id, now=now, result=result)
        except Exception:  # one payment must not stop the watch of the others; the next run looks again
            logger.exception("authorization watch failed for payment %s", payment_id)
    return result


def _watch_one(*, payment_id: int, now: datetime, result: WatchResult) -> None:
    payment = Payment.objects.select_related("order").get(pk=payment_id)
    if payment.provider_ref:
        payment = sync_payment_from_provider(payment=payment, now=now, source="authorization_watch")
        result.looked_up += 1
    expires = payment.authorization_expires_at
    if payment.status == PaymentStatus.AUTHORIZED and expires is not None:
        if now >= expires + RELEASE_AFTER_EXPIRY:
            _record_lapse(payment=payment, now=now)
            payment.refresh_from_db()
            result.lapsed += 1
        elif payment.authorization_warned_at is None and expires - _warn_before(payment.provider) <= now:
            result.warned += int(_warn(payment=payment, now=now))
    if payment.status != PaymentStatus.AUTHORIZED:
        result.ended += 1
        _expire_order_if_due(payment, now)


def _warn(*, payment: Payment, now: datetime) -> bool:
    """Flag the payment for review, audit and e-mail staff; once (claimed with a conditional UPDATE)."""
    with transaction.atomic():
        claimed = Payment.objects.filter(
            pk=payment.pk, status=PaymentStatus.AUTHORIZED, authorization_warned_at__isnull=True
        ).update(authorization_warned_at=now, needs_review=True)
        if not claimed:
            return False
        Payment.objects.filter(pk=payment.pk, review_reason="").update(
            review_reason=ReviewReason.AUTHORIZATION_EXPIRING
        )
        record_audit(
            action="payment.authorization_expiring",
            actor_label="system:authorization_watch",
            obj=payment,
            amount_minor=payment.authorized_minor,
            currency=payment.currency,
            message=f"expires {payment.authorization_expires_at.isoformat()}",
            now=now,
        )
    order = payment.order
    amount = Money(payment.authorized_minor, payment.currency)
    subject = f"Authorization of order {order.reference or order.short_token} expires soon: capture or void it"
    body = (
        f"The card authorization of order {order.reference or order.token} ({amount}, payment {payment.pk} "
        f"via {provider_label(payment.provider)}) expires at {payment.authorization_expires_at:%Y-%m-%d %H:%M} "
        "UTC: capture or void it.\n\n"
        f"Payment: {settings.PUBLIC_BASE_URL}/admin/payments/payment/{payment.pk}/change/\n"
        "After it lapses the buyer's card is no longer held and the order cannot be charged.\n"
    )
    email_staff(subject=subject, body=body)  # best effort: the flag and the audit entry stand
    return True


def _record_lapse(*, payment: Payment, now: datetime) -> None:
    """The hold is past its expiry and a day more, and the provider still says authorized (or cannot be asked):
    no capture can succeed now. Record the release through the fulfilment path; if the provider ever reports a
    capture after all, that success is still applied (a payment may succeed from canceled)."""
    logger.warning(
        "payment %s: authorization expired at %s and is recorded as released",
        payment.pk,
        payment.authorization_expires_at,
    )
    state = ProviderPaymentState(
        provider_ref=payment.provider_ref,
        status=PaymentStatus.CANCELED,
        failure_code=AUTHORIZATION_EXPIRED,
        failure_message="The card authorization lapsed before it was captured; nothing was charged.",
        raw_status="LAPSED",
    )
    apply_payment_state(payment_id=payment.pk, state=state, now=now, source="authorization_watch")
