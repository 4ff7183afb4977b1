"""Thin tasks: load by id, call a service. Every one is safe to run twice."""

import contextlib

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from payments.providers.base import ProviderOutcomeUnknown, ProviderUnavailable


@shared_task(acks_late=True)
def process_webhook_event(*, webhook_event_id: int, **kwargs) -> str:
    from payments.webhooks.services import process_webhook_event as process

    return process(webhook_event_id=webhook_event_id, now=timezone.now())


@shared_task
def resend_stuck_webhook_events(**kwargs) -> int:
    from payments.webhooks.services import resend_stuck_events

    return resend_stuck_events(now=timezone.now())


@shared_task
def retry_failed_webhook_events(**kwargs) -> int:
    from payments.webhooks.services import retry_failed_events

    return retry_failed_events(now=timezone.now())


@shared_task
def backfill_webhook_events(**kwargs) -> int:
    """For each configured provider that lists its events: store what never arrived by webhook."""
    from payments.providers.base import EVENT_BACKFILL, ProviderError
    from payments.providers.registry import get_provider
    from payments.webhooks.services import backfill_events, backfill_window_start

    now, stored = timezone.now(), 0
    for name in settings.TOLLGATE_PROVIDERS:
        provider = get_provider(name)
        if EVENT_BACKFILL in provider.capabilities and provider.is_configured():
            with contextlib.suppress(ProviderError):  # the provider is down: the next run looks again
                since = backfill_window_start(provider_name=name, now=now)
                stored += backfill_events(provider_name=name, since=since, now=now).stored
    return stored


@shared_task
def expire_stale_orders(**kwargs) -> int:
    from payments.services.orders import expire_stale_orders as expire

    return expire(now=timezone.now())


@shared_task(acks_late=True, max_retries=3)
def expire_provider_checkout(*, payment_id: int, **kwargs) -> None:
    from payments.models import Payment
    from payments.providers.base import EXPIRE_CHECKOUT, ProviderError
    from payments.providers.registry import get_provider

    payment = Payment.objects.filter(pk=payment_id).first()
    if payment is None:
        return
    provider = get_provider(payment.provider)
    if EXPIRE_CHECKOUT in provider.capabilities:
        # Best effort: the provider's own expiry closes it anyway, and a late success is refunded automatically.
        with contextlib.suppress(ProviderError):
            provider.expire_checkout(payment=payment)


@shared_task
def sync_stale_payments(**kwargs) -> int:
    """Janitor: ask providers about payments that have been in flight for a while (a missed webhook)."""
    from datetime import timedelta

    from payments.models import Payment, PaymentStatus
    from payments.services.checkout import sync_payment_from_provider

    now = timezone.now()
    stale = Payment.objects.filter(
        status__in=[PaymentStatus.PENDING, PaymentStatus.REQUIRES_ACTION],
        status_changed_at__lt=now - timedelta(minutes=15),
    ).exclude(provider_ref="")
    count = 0
    for payment in stale.order_by("status_changed_at")[:200]:
        sync_payment_from_provider(payment=payment, now=now, source="janitor")
        count += 1
    return count


@shared_task
def watch_authorizations(**kwargs) -> dict:
    """Hourly: card holds about to lapse are flagged and staff e-mailed; lapsed ones are recorded as released."""
    from dataclasses import asdict

    from payments.services.authorizations import watch_authorizations as watch

    return asdict(watch(now=timezone.now()))


@shared_task(acks_late=True, max_retries=5, default_retry_delay=60)
def send_payment_confirmation(*, order_id: int, **kwargs) -> bool:
    from payments.services.notifications import send_payment_confirmation as send

    return send(order_id=order_id, now=timezone.now())


@shared_task(
    bind=True,
    acks_late=True,
    autoretry_for=(ProviderUnavailable, ProviderOutcomeUnknown),
    retry_backoff=10,
    retry_backoff_max=3600,
    max_retries=10,
)
def sync_payment_fee(self, *, payment_id: int, **kwargs) -> bool:
    from payments.services.fulfilment import sync_payment_fee as sync

    return sync(payment_id=payment_id, now=timezone.now())
