"""PostgreSQL: concurrent deliveries and concurrent processing of one event have exactly one effect
(RELIABILITY §6 rows 2, 5, 31; dj-stripe#1239, saleor#14648)."""

import pytest
from django.test import Client
from django.utils import timezone

from ledger.models import LedgerTransaction
from ledger.selectors import check_ledger
from payments import tasks
from payments.models import OrderStatus, PaymentStatus, WebhookEvent
from payments.providers.sandbox import gateway
from tests.payments.concurrency import run_concurrently
from tests.payments.helpers import (
    WEBHOOK_URL,
    captures_of,
    gateway_deliveries_suppressed,
    latest_gateway_event,
    make_order,
    session_of,
    start_sandbox_payment,
)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def paid_at_gateway(payee):
    """An open order whose sandbox session the buyer has just paid; returns (payment, the gateway's
    signed payment.succeeded delivery). The gateway's own delivery is held back: the test sends it."""
    order = make_order(payee)
    payment = start_sandbox_payment(order)
    session = session_of(payment)
    with gateway_deliveries_suppressed() as delay:
        gateway.buyer_pays(str(session.token), now=timezone.now())
    assert delay.called
    event = latest_gateway_event(session)
    assert event.event_type == "payment.succeeded"
    body, headers = gateway.signed_delivery(event)
    return payment, event, body, {k: v for k, v in headers.items() if k != "Content-Type"}


def assert_paid_exactly_once(payment):
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert payment.order.status == OrderStatus.PAID
    assert captures_of(payment) == 1
    assert LedgerTransaction.objects.filter(idempotency_key=f"fee:payment:{payment.pk}").count() == 1
    assert payment.history.filter(status=PaymentStatus.SUCCEEDED).count() == 1
    assert payment.order.history.filter(status=OrderStatus.PAID).count() == 1


def test_50_concurrent_deliveries_of_one_event_store_and_apply_it_once(payee):
    for _ in range(5):
        payment, event, body, headers = paid_at_gateway(payee)

        def deliver(index, body=body, headers=headers):
            response = Client().post(WEBHOOK_URL, data=body, content_type="application/json", headers=headers)
            return response.status_code, response.json()

        results = run_concurrently(50, deliver)

        assert [status for status, _ in results] == [200] * 50
        assert sum(body["received"] for _, body in results) == 1
        assert sum(body["duplicates"] for _, body in results) == 49
        row = WebhookEvent.objects.get(event_id=event.event_id)
        assert row.status == WebhookEvent.Status.PROCESSED
        assert row.attempts == 1
        assert_paid_exactly_once(payment)
    assert WebhookEvent.objects.count() == 5
    assert LedgerTransaction.objects.filter(kind="capture").count() == 5
    assert check_ledger().ok


def test_processing_task_for_one_event_from_10_threads_has_one_effect(payee):
    payment, event, _, _ = paid_at_gateway(payee)
    row = WebhookEvent.objects.create(  # stored, not yet processed (no task queued)
        provider="sandbox",
        event_id=event.event_id,
        event_type=event.event_type,
        payload=event.payload,
        received_at=timezone.now(),
    )

    results = run_concurrently(10, lambda index: tasks.process_webhook_event(webhook_event_id=row.pk))

    assert sorted(results) == ["processed"] + ["skipped"] * 9
    row.refresh_from_db()
    assert (row.status, row.attempts) == (WebhookEvent.Status.PROCESSED, 1)
    assert_paid_exactly_once(payment)
    assert check_ledger().ok


def test_webhook_and_return_page_at_the_same_instant_fulfil_once(payee):
    """The buyer lands on the return page (which asks the provider) while the webhook arrives."""
    for _ in range(5):
        payment, _, body, headers = paid_at_gateway(payee)
        token = payment.order.token

        def either(index, body=body, headers=headers, token=token):
            client = Client()
            if index % 2:
                return client.get(f"/checkout/{token}/return/").status_code
            return client.post(WEBHOOK_URL, data=body, content_type="application/json", headers=headers).status_code

        assert run_concurrently(20, either) == [200] * 20
        assert_paid_exactly_once(payment)
    assert check_ledger().ok
