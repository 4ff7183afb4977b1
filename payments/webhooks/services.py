"""The webhook inbox: store each verified event once, then process it in a task.

A delivery is verified by its provider; each event is inserted under UNIQUE (provider, event_id) in its own
transaction, and the processing task is queued on commit. A duplicate delivery hits the constraint and is
answered 200 without doing anything. Processing claims the row (received/failed -> processing), applies
the event and marks it processed in the same transaction as its effects; on error the row is marked
failed with the error, outside the rolled-back transaction, and retried with backoff by a beat task.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.http import HttpRequest

from core.audit import client_ip, record_audit
from payments.models import Payment, WebhookEvent, WebhookRejection
from payments.providers.base import ProviderEvent, WebhookRejected
from payments.providers.registry import get_provider
from payments.webhooks.handlers import handle

logger = logging.getLogger(__name__)
Status = WebhookEvent.Status


@dataclass(frozen=True)
class ReceiveResult:
    stored: int
    duplicates: int


def record_rejection(*, provider: str, reason: str, request: HttpRequest, now: datetime) -> None:
    """Count a rejected delivery (never its body) and log it."""
    ip = client_ip(request)
    logger.warning("rejected %s webhook from %s: %s", provider, ip, reason)
    day = now.date()
    updated = WebhookRejection.objects.filter(provider=provider, reason=reason, day=day).update(
        count=F("count") + 1, last_seen_at=now, last_ip=ip
    )
    if not updated:
        try:
            with transaction.atomic():
                WebhookRejection.objects.create(
                    provider=provider, reason=reason, day=day, count=1, last_seen_at=now, last_ip=ip
                )
        except IntegrityError:
            WebhookRejection.objects.filter(provider=provider, reason=reason, day=day).update(
                count=F("count") + 1, last_seen_at=now, last_ip=ip
            )


def receive_webhook(*, provider_name: str, request: HttpRequest, now: datetime) -> ReceiveResult:
    """Verify and store a delivery. Raises WebhookRejected (nothing stored) if it is not authentic."""
    provider = get_provider(provider_name)
    try:
        events = provider.parse_webhook(request=request)
    except WebhookRejected as exc:
        record_rejection(provider=provider_name, reason=exc.code or "rejected", request=request, now=now)
        raise
    stored = duplicates = 0
    for event in events:
        if store_event(provider_name=provider_name, event=event, now=now) is None:
            duplicates += 1
        else:
            stored += 1
    return ReceiveResult(stored=stored, duplicates=duplicates)


def store_event(*, provider_name: str, event: ProviderEvent, now: datetime) -> WebhookEvent | None:
    """Insert the event once; None if it was already there."""
    try:
        with transaction.atomic():
            row = WebhookEvent.objects.create(
                provider=provider_name,
                event_id=event.event_id,
                event_type=event.event_type[:100],
                payload=event.payload,
                received_at=now,
                payment_id=_existing_payment_id(event.our_payment_id),
            )
            _queue_processing(row.pk)
    except IntegrityError:
        return None
    return row


def _existing_payment_id(payment_id: int | None) -> int | None:
    # An id from a provider's metadata may name no payment here (another environment on the same account).
    if payment_id is None or not Payment.objects.filter(pk=payment_id).exists():
        return None
    return payment_id


def _queue_processing(webhook_event_id: int) -> None:
    from payments.tasks import process_webhook_event

    transaction.on_commit(lambda: process_webhook_event.delay(webhook_event_id=webhook_event_id))


def process_webhook_event(*, webhook_event_id: int, now: datetime) -> str:
    """Apply one stored event. Safe to run twice, or concurrently: only the claimant does anything."""
    claimed = WebhookEvent.objects.filter(pk=webhook_event_id, status__in=[Status.RECEIVED, Status.FAILED]).update(
        status=Status.PROCESSING, attempts=F("attempts") + 1, processing_started_at=now
    )
    if not claimed:
        return "skipped"
    row = WebhookEvent.objects.get(pk=webhook_event_id)
    try:
        with transaction.atomic():
            event = get_provider(row.provider).interpret_event(payload=row.payload)
            status, payment_id = handle(row.provider, event, now)
            WebhookEvent.objects.filter(pk=row.pk).update(
                status=status, processed_at=now, last_error="", next_attempt_at=None, payment_id=payment_id
            )
    except Exception as exc:  # recorded on the row (outside the rolled-back transaction) and retried
        _mark_failed(row=row, error=f"{type(exc).__name__}: {exc}", now=now)
        return Status.FAILED
    return status


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(30 * 2 ** max(attempts - 1, 0), 6 * 3600))


def _mark_failed(*, row: WebhookEvent, error: str, now: datetime) -> None:
    attempts = WebhookEvent.objects.filter(pk=row.pk).values_list("attempts", flat=True).first() or 1
    exhausted = attempts >= settings.TOLLGATE_WEBHOOK_MAX_ATTEMPTS
    WebhookEvent.objects.filter(pk=row.pk).update(
        status=Status.FAILED, last_error=error[:2000], next_attempt_at=None if exhausted else now + _backoff(attempts)
    )
    if exhausted:
        logger.error(
            "webhook event %s %s failed %s times; giving up until staff reprocess it: %s",
            row.provider,
            row.event_id,
            attempts,
            error[:200],
        )
        record_audit(
            action="webhook.dead_letter", actor_label="system", obj=row, outcome="failure", message=error[:500], now=now
        )
    else:
        logger.warning("webhook event %s %s failed (attempt %s): %s", row.provider, row.event_id, attempts, error[:200])


def reprocess_webhook_event(*, webhook_event: WebhookEvent, actor, request, now: datetime) -> None:
    """Staff replay: put the event back to `received` and process it again (effects stay idempotent)."""
    WebhookEvent.objects.filter(pk=webhook_event.pk).exclude(status=Status.PROCESSING).update(
        status=Status.RECEIVED, attempts=0, next_attempt_at=None
    )
    record_audit(action="webhook.reprocess", actor=actor, obj=webhook_event, request=request, now=now)
    _queue_processing(webhook_event.pk)


@dataclass(frozen=True)
class BackfillResult:
    listed: int
    stored: int


def backfill_events(
    *, provider_name: str, since: datetime, now: datetime, undelivered_only: bool = True
) -> BackfillResult:
    """Fetch from the provider's events API what its deliveries may not have brought (our endpoint down longer
    than the provider retries, a delivery refused by mistake) and put it in the inbox. Events already there
    are duplicates under the inbox's unique key: a backfill never applies anything twice."""
    provider = get_provider(provider_name)
    missed = provider.list_missed_events(since=since, undelivered_only=undelivered_only)
    stored = sum(store_event(provider_name=provider_name, event=event, now=now) is not None for event in missed)
    if stored:
        logger.warning("backfilled %s %s event(s) that never arrived by webhook", stored, provider_name)
    return BackfillResult(listed=len(missed), stored=stored)


def backfill_window_start(*, provider_name: str, now: datetime) -> datetime:
    """Where the periodic backfill looks from: the usual window, or further back to just before the last
    event we received if we have heard nothing for longer (an outage; all the way if never), never past
    the 30 days providers keep."""
    oldest = now - timedelta(days=30)
    last = (
        WebhookEvent.objects.filter(provider=provider_name)
        .order_by("-received_at")
        .values_list("received_at", flat=True)
        .first()
    )
    if last is None:
        return oldest
    return max(oldest, min(now - settings.TOLLGATE_WEBHOOK_BACKFILL_WINDOW, last - timedelta(hours=1)))


def resend_stuck_events(*, now: datetime) -> int:
    """Re-queue events whose processing task was lost: `received` for too long (the publish after commit
    can be lost), or `processing` far past any task's time limit (its worker died)."""
    WebhookEvent.objects.filter(
        status=Status.PROCESSING, processing_started_at__lt=now - settings.TOLLGATE_WEBHOOK_PROCESSING_TIMEOUT
    ).update(status=Status.RECEIVED)
    stuck = WebhookEvent.objects.filter(
        status=Status.RECEIVED, received_at__lt=now - settings.TOLLGATE_WEBHOOK_STUCK_AFTER
    )
    ids = list(stuck.order_by("received_at").values_list("pk", flat=True)[:1000])
    for pk in ids:
        _queue_processing(pk)
    return len(ids)


def retry_failed_events(*, now: datetime) -> int:
    due = WebhookEvent.objects.filter(
        status=Status.FAILED, next_attempt_at__lte=now, attempts__lt=settings.TOLLGATE_WEBHOOK_MAX_ATTEMPTS
    )
    ids = list(due.order_by("next_attempt_at").values_list("pk", flat=True)[:1000])
    for pk in ids:
        _queue_processing(pk)
    return len(ids)
