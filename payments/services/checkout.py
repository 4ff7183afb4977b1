"""Starting a payment on a provider's hosted page, and asking a provider for the truth."""

from __future__ import annotations

import logging
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.urls import reverse

from core.errors import DomainError, ErrorCode
from payments.models import CaptureMethod, Order, OrderStatus, Payment, PaymentStatus
from payments.providers.base import CAPTURE, RECURRING, ProviderError, ProviderUnavailable
from payments.providers.registry import checkout_providers, get_provider
from payments.services.fulfilment import apply_payment_state
from payments.services.orders import expire_order, has_authorized_payment
from payments.state import PAYMENT_IN_FLIGHT, transition_payment

logger = logging.getLogger(__name__)


def _absolute(path: str) -> str:
    return f"{settings.PUBLIC_BASE_URL}{path}"


def checkout_urls(order: Order, provider_name: str) -> dict[str, str]:
    return {
        "return_url": _absolute(reverse("checkout:return", args=[order.token])),
        "cancel_url": _absolute(reverse("checkout:page", args=[order.token]) + "?canceled=1"),
        "notification_url": _absolute(reverse("webhooks:receive", args=[provider_name])),
    }


def start_payment(*, order: Order, provider_name: str, now: datetime) -> Payment:
    """Create a payment attempt and its checkout at the provider; returns the payment with `checkout_url`.

    A second click while an attempt with the same provider is still open returns that attempt instead of
    opening another (which could otherwise be paid twice).
    """
    if provider_name not in {p.name for p in checkout_providers()}:
        raise DomainError("That payment method is not available.", code=ErrorCode.PROVIDER_NOT_AVAILABLE)
    if getattr(get_provider(provider_name), "pays_with_code", False):  # store credit: its code, on our page
        raise DomainError("Enter your store credit code to pay with it.", code=ErrorCode.PROVIDER_NOT_AVAILABLE)
    if order.recurring and RECURRING not in get_provider(provider_name).capabilities:
        raise DomainError(
            "This order sets up recurring payments: choose a payment method that can.",
            code=ErrorCode.RECURRING_NOT_AVAILABLE,
        )
    currencies = getattr(get_provider(provider_name), "currencies", None)
    if currencies is not None and order.currency not in currencies:
        raise DomainError(
            f"This payment method does not take {order.currency}: choose another.",
            code=ErrorCode.PROVIDER_NOT_AVAILABLE,
        )
    if order.capture_method == CaptureMethod.MANUAL and CAPTURE not in get_provider(provider_name).capabilities:
        raise DomainError(
            "This order is only to be authorized now and charged later: choose a payment method that can.",
            code=ErrorCode.CAPTURE_NOT_AVAILABLE,
        )
    if order.status == OrderStatus.OPEN and order.expires_at <= now:
        expire_order(order=order, now=now)
        order.refresh_from_db()
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        if locked.status != OrderStatus.OPEN:
            code = ErrorCode.ORDER_EXPIRED if locked.status == OrderStatus.EXPIRED else ErrorCode.ORDER_NOT_OPEN
            raise DomainError(f"This order is {locked.get_status_display().lower()}.", code=code, status=409)
        if has_authorized_payment(locked):
            raise DomainError(
                "A payment for this order is already authorized; the seller will charge it.",
                code=ErrorCode.PAYMENT_AUTHORIZED,
                status=409,
            )
        from refunds.store_credit import reserved_credit_minor

        due_minor = locked.total_minor - reserved_credit_minor(locked)  # the rest after applied store credit
        reusable = (
            Payment.objects.filter(
                order=locked,
                provider=provider_name,
                amount_minor=due_minor,
                status__in=[PaymentStatus.PENDING, PaymentStatus.REQUIRES_ACTION],
            )
            .exclude(checkout_url="")
            .order_by("-created_at", "-pk")
            .first()
        )
        if reusable is not None:
            return reusable
        payment = Payment.objects.create(
            order=locked,
            provider=provider_name,
            amount_minor=due_minor,
            currency=locked.currency,
            created_at=now,
            status_changed_at=now,
        )

    # The provider call happens outside any transaction: no row lock is held across network I/O.
    provider = get_provider(provider_name)
    try:
        redirect = provider.create_checkout(payment=payment, **checkout_urls(locked, provider_name))
    except ProviderError as exc:
        logger.warning("checkout creation failed at %s for payment %s: %s", provider_name, payment.pk, exc.code)
        transition_payment(
            payment=payment,
            to=PaymentStatus.FAILED,
            now=now,
            failure_code=exc.code or "provider_error",
            failure_message="The payment provider could not be reached.",
        )
        raise DomainError(
            "The payment provider is not reachable right now. Please try again in a moment.",
            code=ErrorCode.PROVIDER_UNAVAILABLE,
            status=503,
        ) from exc
    transition_payment(
        payment=payment,
        to=PaymentStatus.PENDING,
        now=now,
        provider_ref=redirect.provider_ref,
        checkout_url=redirect.url,
    )
    return payment


def sync_payment_from_provider(*, payment: Payment, now: datetime, source: str = "return_page") -> Payment:
    """Fetch the payment's state from its provider and apply it through the same fulfilment path as a
    webhook. Used by the buyer's return page (the webhook may not have arrived yet) and the janitor."""
    if payment.status not in PAYMENT_IN_FLIGHT or not payment.provider_ref:
        return payment
    try:
        state = get_provider(payment.provider).fetch_payment(payment=payment)
    except (ProviderUnavailable, ProviderError) as exc:
        logger.info("could not fetch payment %s from %s: %s", payment.pk, payment.provider, exc.code)
        return payment
    apply_payment_state(payment_id=payment.pk, state=state, now=now, source=source)
    payment.refresh_from_db()
    return payment
