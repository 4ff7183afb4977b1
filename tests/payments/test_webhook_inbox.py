"""The webhook inbox (DESIGN §7): store once, process once, in any order, with retries, dead-lettering,
re-sending of stuck events and staff replay. Events are built and signed here in the gateway's shape."""

import itertools
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from core.models import AuditEntry
from ledger.models import LedgerTransaction
from ledger.selectors import check_ledger
from payments.models import OrderStatus, Payment, PaymentStatus, WebhookEvent
from payments.providers.sandbox import gateway
from payments.webhooks.services import (
    process_webhook_event,
    reprocess_webhook_event,
    resend_stuck_events,
    retry_failed_events,
)
from tests.factories import StaffFactory
from tests.payments.helpers import (
    captures_of,
    event_payload,
    ledger_footprint,
    make_order,
    post_event,
    session_of,
    start_sandbox_payment,
)

pytestmark = pytest.mark.django_db
Status = WebhookEvent.Status


@pytest.fixture
def deliver(client, django_capture_on_commit_callbacks):
    """Deliver a signed event through the real URL and run what it queued (the processing task)."""

    def _deliver(payload):
        with django_capture_on_commit_callbacks(execute=True):
            response = post_event(client, payload)
        assert response.status_code == 200, response.content
        return response

    return _deliver


def test_duplicate_delivery_is_answered_200_and_does_nothing(deliver, payment, session):
    payload = event_payload(session, "succeeded")
    first = deliver(payload)
    assert first.json() == {"received": 1, "duplicates": 0}
    again = deliver(payload)
    assert again.json() == {"received": 0, "duplicates": 1}

    row = WebhookEvent.objects.get()
    assert row.status == Status.PROCESSED
    assert row.attempts == 1
    assert row.payment_id == payment.pk
    assert captures_of(payment) == 1
    assert LedgerTransaction.objects.filter(kind="capture").count() == 1
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert payment.history.filter(status=PaymentStatus.SUCCEEDED).count() == 1


def test_same_event_again_after_72_hours_is_still_one_ledger_transaction(deliver, payment, session, time_machine):
    payload = event_payload(session, "succeeded")
    deliver(payload)
    time_machine.move_to(timezone.now() + timedelta(hours=72))
    payload_later = dict(payload, created=payload["created"] + 72 * 3600)  # re-sent: new signature time, same id
    assert deliver(payload_later).json()["duplicates"] == 1
    assert captures_of(payment) == 1
    assert WebhookEvent.objects.count() == 1


def test_the_same_success_under_another_event_id_has_one_effect(deliver, payment, session):
    deliver(event_payload(session, "succeeded"))
    deliver(event_payload(session, "succeeded"))  # e.g. the provider re-emitted it
    assert WebhookEvent.objects.filter(status=Status.PROCESSED).count() == 2
    assert captures_of(payment) == 1
    assert LedgerTransaction.objects.filter(kind="provider_fee").count() == 1
    assert payment.history.filter(status=PaymentStatus.SUCCEEDED).count() == 1


def test_processing_task_run_twice_has_one_effect(client, payment, session):
    response = post_event(client, event_payload(session, "succeeded"))  # task not run: the row waits
    assert response.status_code == 200
    row = WebhookEvent.objects.get()
    assert row.status == Status.RECEIVED
    now = timezone.now()
    assert process_webhook_event(webhook_event_id=row.pk, now=now) == Status.PROCESSED
    assert process_webhook_event(webhook_event_id=row.pk, now=now) == "skipped"
    row.refresh_from_db()
    assert (row.status, row.attempts) == (Status.PROCESSED, 1)
    assert captures_of(payment) == 1
    assert payment.history.filter(status=PaymentStatus.SUCCEEDED).count() == 1


def test_an_ignored_event_type_is_recorded_and_changes_nothing(deliver, payment, session):
    payload = event_payload(session, "succeeded")
    payload["type"] = "charge.dispute.funds_reinstated"
    deliver(payload)
    row = WebhookEvent.objects.get()
    assert row.status == Status.IGNORED
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PENDING
    assert not LedgerTransaction.objects.exists()


# --- ordering: every permutation ends in the same state and ledger (I9) -------------------------------

SEQUENCES = [
    *itertools.permutations(["requires_action", "failed", "succeeded"]),
    ("requires_action", "succeeded"),
    ("succeeded", "requires_action"),
    ("failed", "succeeded"),
    ("succeeded", "failed"),
    ("canceled", "succeeded"),
    ("succeeded", "canceled"),
    ("expired", "succeeded"),
    ("succeeded", "expired", "failed", "requires_action", "canceled"),
]


@pytest.mark.parametrize("sequence", SEQUENCES, ids="-".join)
def test_events_in_any_order_end_in_the_same_state_and_ledger(deliver, payee, sequence):
    outcomes = []
    for run in (("succeeded",), sequence):  # the plain success is the reference
        order = make_order(payee)
        payment = start_sandbox_payment(order)
        session = session_of(payment)
        for status in run:
            deliver(event_payload(session, status))
        payment.refresh_from_db()
        order.refresh_from_db()
        assert WebhookEvent.objects.filter(payment=payment).count() == len(run)
        outcomes.append(
            (
                payment.status,
                payment.settles_order,
                payment.captured_minor,
                payment.fee_minor,
                payment.failure_code,
                payment.needs_review,
                order.status,
                ledger_footprint(payment),
            )
        )
        # I9: the payment never left `succeeded` once it got there
        history = list(payment.history.order_by("history_date", "history_id").values_list("status", flat=True))
        assert history[history.index(PaymentStatus.SUCCEEDED) :] == [PaymentStatus.SUCCEEDED]
    reference, observed = outcomes
    assert observed == reference
    assert reference[0] == PaymentStatus.SUCCEEDED
    assert reference[6] == OrderStatus.PAID
    assert check_ledger().ok


@pytest.mark.parametrize(
    ("sequence", "final"),
    [
        (("requires_action", "failed"), PaymentStatus.FAILED),
        (("failed", "requires_action"), PaymentStatus.FAILED),
        (("failed", "canceled", "expired"), PaymentStatus.FAILED),
        (("canceled", "failed"), PaymentStatus.CANCELED),
        (("requires_action", "requires_action"), PaymentStatus.REQUIRES_ACTION),
    ],
)
def test_without_a_success_no_event_moves_a_payment_backwards(deliver, payment, session, sequence, final):
    for status in sequence:
        deliver(event_payload(session, status))
    payment.refresh_from_db()
    assert payment.status == final
    assert payment.order.status == OrderStatus.OPEN
    assert not LedgerTransaction.objects.exists()


# --- failures, retries, dead letters, stuck events, staff replay ---------------------------------------


def _unknown_payment_event(session):
    payload = event_payload(session, "succeeded")
    obj = payload["data"]["object"]
    obj["id"] = "sbx_" + "0" * 31 + "1"  # a session we never created a payment for
    obj["metadata"] = {"payment_id": 987654321}
    return payload


def test_event_for_unknown_payment_fails_and_is_retried_until_dead_lettered(
    client, session, django_capture_on_commit_callbacks, caplog
):
    with django_capture_on_commit_callbacks(execute=True):
        assert post_event(client, _unknown_payment_event(session)).status_code == 200
    row = WebhookEvent.objects.get()
    assert row.status == Status.FAILED
    assert row.attempts == 1
    assert "UnknownPayment" in row.last_error
    assert row.next_attempt_at is not None
    first_retry_at = row.next_attempt_at

    # not due yet: nothing is re-queued
    assert retry_failed_events(now=first_retry_at - timedelta(seconds=1)) == 0

    max_attempts = settings.TOLLGATE_WEBHOOK_MAX_ATTEMPTS
    delays = []
    for attempt in range(2, max_attempts + 1):
        with django_capture_on_commit_callbacks(execute=True):
            assert retry_failed_events(now=row.next_attempt_at) == 1
        previous_due = row.next_attempt_at
        row.refresh_from_db()
        assert row.attempts == attempt
        assert row.status == Status.FAILED
        if row.next_attempt_at is not None:
            delays.append(row.next_attempt_at - previous_due)

    assert row.attempts == max_attempts
    assert row.next_attempt_at is None  # gave up
    assert delays == sorted(delays)  # backoff grows
    assert delays[-1] > delays[0]
    far_future = timezone.now() + timedelta(days=30)
    assert retry_failed_events(now=far_future) == 0
    dead = AuditEntry.objects.get(action="webhook.dead_letter")
    assert dead.object_id == str(row.pk)
    assert dead.outcome == AuditEntry.Outcome.FAILURE
    assert any(r.levelname == "ERROR" and "giving up" in r.getMessage() for r in caplog.records)


def test_failed_event_is_processed_by_staff_replay_once_the_payment_exists(
    client, order, django_capture_on_commit_callbacks
):
    # The provider session exists, but our payment row does not know it yet (its start is still committing).
    now = timezone.now()
    payment = Payment.objects.create(
        order=order, provider="sandbox", amount_minor=order.total_minor, currency="EUR", created_at=now
    )
    session = gateway.create_session(
        idempotency_key="race-1",
        merchant_name="Tollgate",
        description="Order",
        reference=str(payment.pk),
        amount_minor=order.total_minor,
        currency="EUR",
        return_url="http://testserver/r",
        cancel_url="http://testserver/c",
        notification_url="http://testserver/webhooks/sandbox/",
        metadata={},
        now=now,
    )
    with django_capture_on_commit_callbacks(execute=True):
        post_event(client, event_payload(session, "succeeded"))
    row = WebhookEvent.objects.get()
    assert row.status == Status.FAILED
    assert not LedgerTransaction.objects.exists()

    Payment.objects.filter(pk=payment.pk).update(provider_ref=session.public_id, status=PaymentStatus.PENDING)
    staff = StaffFactory()
    with django_capture_on_commit_callbacks(execute=True):
        reprocess_webhook_event(webhook_event=row, actor=staff, request=None, now=timezone.now())

    row.refresh_from_db()
    assert row.status == Status.PROCESSED
    assert row.payment_id == payment.pk
    assert row.last_error == ""
    payment.refresh_from_db()
    order.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert order.status == OrderStatus.PAID
    assert captures_of(payment) == 1
    replay = AuditEntry.objects.get(action="webhook.reprocess")
    assert replay.actor == staff

    # replaying a processed event again changes nothing
    with django_capture_on_commit_callbacks(execute=True):
        reprocess_webhook_event(webhook_event=row, actor=staff, request=None, now=timezone.now())
    assert captures_of(payment) == 1
    assert payment.history.filter(status=PaymentStatus.SUCCEEDED).count() == 1


def test_resend_stuck_events_requeues_old_received_and_resets_dead_processing(
    client, payee, django_capture_on_commit_callbacks
):
    now = timezone.now()
    stuck_after = settings.TOLLGATE_WEBHOOK_STUCK_AFTER
    processing_timeout = settings.TOLLGATE_WEBHOOK_PROCESSING_TIMEOUT
    rows = {}
    for name, status, received_ago, started_ago in [
        ("old_received", Status.RECEIVED, stuck_after + timedelta(seconds=5), None),
        ("fresh_received", Status.RECEIVED, stuck_after - timedelta(seconds=30), None),
        (
            "dead_processing",
            Status.PROCESSING,
            processing_timeout + timedelta(minutes=5),
            processing_timeout + timedelta(minutes=1),
        ),
        ("live_processing", Status.PROCESSING, processing_timeout, timedelta(minutes=1)),
    ]:
        payment = start_sandbox_payment(make_order(payee))
        payload = event_payload(session_of(payment), "succeeded")
        rows[name] = (
            WebhookEvent.objects.create(
                provider="sandbox",
                event_id=payload["id"],
                event_type=payload["type"],
                payload=payload,
                status=status,
                received_at=now - received_ago,
                processing_started_at=now - started_ago if started_ago else None,
            ),
            payment,
        )

    with django_capture_on_commit_callbacks(execute=True):
        assert resend_stuck_events(now=now) == 2

    def status_of(name):
        row, payment = rows[name]
        row.refresh_from_db()
        payment.refresh_from_db()
        return row.status, payment.status

    assert status_of("old_received") == (Status.PROCESSED, PaymentStatus.SUCCEEDED)
    assert status_of("dead_processing") == (Status.PROCESSED, PaymentStatus.SUCCEEDED)
    assert status_of("fresh_received") == (Status.RECEIVED, PaymentStatus.PENDING)
    assert status_of("live_processing") == (Status.PROCESSING, PaymentStatus.PENDING)
    assert LedgerTransaction.objects.filter(kind="capture").count() == 2

    # nothing left to re-send
    with django_capture_on_commit_callbacks(execute=True):
        assert resend_stuck_events(now=now) == 0


def test_handler_error_marks_the_row_failed_and_rolls_back_its_effects(
    deliver, payment, session, monkeypatch, django_capture_on_commit_callbacks
):
    import payments.services.fulfilment as fulfilment

    def broken_post_fee(**kwargs):
        raise RuntimeError("ledger unavailable")

    monkeypatch.setattr(fulfilment, "_post_fee", broken_post_fee)
    deliver(event_payload(session, "succeeded"))
    row = WebhookEvent.objects.get()
    assert row.status == Status.FAILED
    assert row.last_error == "RuntimeError: ledger unavailable"
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PENDING  # the transition rolled back with the failure
    assert not LedgerTransaction.objects.exists()

    monkeypatch.undo()
    with django_capture_on_commit_callbacks(execute=True):
        assert retry_failed_events(now=row.next_attempt_at) == 1
    row.refresh_from_db()
    payment.refresh_from_db()
    assert (row.status, row.attempts) == (Status.PROCESSED, 2)
    assert payment.status == PaymentStatus.SUCCEEDED
    assert captures_of(payment) == 1
    assert check_ledger().ok


def test_with_workers_stopped_every_delivery_is_acked_and_processed_once_they_start(
    client, payee, django_capture_on_commit_callbacks
):
    """The inbox row is the durable part: deliveries are answered 200 while nothing processes them (the
    task publish is lost), and the beat task's re-send processes every one of them later."""
    payments = [start_sandbox_payment(make_order(payee)) for _ in range(10)]
    for payment in payments:
        response = post_event(client, event_payload(session_of(payment), "succeeded"))  # on_commit never runs
        assert response.status_code == 200
    assert WebhookEvent.objects.filter(status=Status.RECEIVED).count() == 10
    assert not LedgerTransaction.objects.exists()

    later = timezone.now() + settings.TOLLGATE_WEBHOOK_STUCK_AFTER + timedelta(seconds=1)
    with django_capture_on_commit_callbacks(execute=True):
        assert resend_stuck_events(now=later) == 10
    assert WebhookEvent.objects.filter(status=Status.PROCESSED).count() == 10
    assert all(captures_of(payment) == 1 for payment in payments)
    assert check_ledger().ok
