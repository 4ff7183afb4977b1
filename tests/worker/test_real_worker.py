"""The inbox on a real broker and a real worker: the webhook answer does not wait for processing, the
worker applies the event, and the same task message delivered twice has one effect."""

import pytest
from django.test import Client
from django.utils import timezone

from ledger.models import LedgerTransaction
from ledger.selectors import check_ledger
from payments.models import OrderStatus, WebhookEvent
from payments.providers.sandbox import gateway
from payments.providers.sandbox.models import SandboxEvent
from payments.services.checkout import start_payment
from payments.services.orders import LineInput, create_order
from payments.tasks import process_webhook_event
from tests.factories import PayeeFactory

pytestmark = [pytest.mark.worker, pytest.mark.postgres]


def _paid_at_gateway(monkeypatch):
    """An order whose sandbox session is paid; the gateway's own delivery is switched off so the test
    posts the signed event itself."""
    from payments.providers.sandbox import tasks as sandbox_tasks

    monkeypatch.setattr(sandbox_tasks.deliver_sandbox_event, "delay", lambda **kwargs: None)
    now = timezone.now()
    payee = PayeeFactory()
    order = create_order(
        currency="EUR",
        buyer_email="buyer@example.com",
        now=now,
        lines=[LineInput(payee_id=payee.pk, description="Subwoofer", quantity=1, unit_amount_minor=19900)],
    )
    payment = start_payment(order=order, provider_name="sandbox", now=now)
    session = gateway.get_session(payment.provider_ref)
    gateway.buyer_pays(str(session.token), now=now)
    event = SandboxEvent.objects.get(session=session, event_type="payment.succeeded")
    return order, payment, event


def test_webhook_is_acknowledged_then_processed_by_the_worker(celery_worker, monkeypatch):
    order, payment, event = _paid_at_gateway(monkeypatch)
    body, headers = gateway.signed_delivery(event)

    response = Client().post(
        "/webhooks/sandbox/",
        data=body,
        content_type="application/json",
        headers={"Tollgate-Sandbox-Signature": headers["Tollgate-Sandbox-Signature"]},
    )

    assert response.status_code == 200
    row = celery_worker(lambda: WebhookEvent.objects.filter(status=WebhookEvent.Status.PROCESSED).first())
    assert row.event_id == event.event_id
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    assert LedgerTransaction.objects.filter(idempotency_key=f"capture:payment:{payment.pk}").count() == 1
    assert check_ledger().ok


def test_the_same_task_message_twice_has_one_effect(celery_worker, monkeypatch):
    order, payment, event = _paid_at_gateway(monkeypatch)
    from payments.providers.registry import get_provider
    from payments.webhooks.services import store_event

    with monkeypatch.context() as patched:  # store the row without queueing, then queue it twice at once
        patched.setattr("payments.webhooks.services._queue_processing", lambda pk: None)
        row = store_event(
            provider_name="sandbox",
            event=get_provider("sandbox").interpret_event(payload=event.payload),
            now=timezone.now(),
        )
    process_webhook_event.delay(webhook_event_id=row.pk)
    process_webhook_event.delay(webhook_event_id=row.pk)

    celery_worker(lambda: WebhookEvent.objects.filter(pk=row.pk, status=WebhookEvent.Status.PROCESSED).exists())
    row.refresh_from_db()
    assert row.attempts == 1
    assert LedgerTransaction.objects.filter(kind="capture").count() == 1
    assert payment.history.filter(status="succeeded").count() == 1


def test_the_paid_order_is_invoiced_rendered_and_emailed_by_the_documents_queue(celery_worker, monkeypatch):
    from invoicing.models import Invoice, InvoiceDelivery, InvoicePdf

    order, payment, event = _paid_at_gateway(monkeypatch)
    body, headers = gateway.signed_delivery(event)
    response = Client().post(
        "/webhooks/sandbox/",
        data=body,
        content_type="application/json",
        headers={"Tollgate-Sandbox-Signature": headers["Tollgate-Sandbox-Signature"]},
    )
    assert response.status_code == 200
    delivery = celery_worker(lambda: InvoiceDelivery.objects.filter(invoice__order=order).first(), timeout=60)
    invoice = Invoice.objects.get(order=order)
    assert delivery.to == "buyer@example.com"
    assert (invoice.gross_minor, invoice.sequence) == (19900, 1)
    assert bytes(InvoicePdf.objects.get(invoice=invoice).content).startswith(b"%PDF-")
