"""Admin actions run the services, and only for staff holding the action's own permission (checked by the
server when the form is posted, not only by hiding the action)."""

import pytest
from django.contrib.messages import get_messages

from core.models import AuditEntry
from payments.models import OrderStatus, Payment, PaymentStatus, WebhookEvent

pytestmark = pytest.mark.django_db

EVENTS = "/admin/payments/webhookevent/"
ORDERS = "/admin/payments/order/"


def _post_action(client, url, action, *pks):
    """What the browser sends from a changelist's action bar."""
    return client.post(url, {"action": action, "_selected_action": [str(pk) for pk in pks], "index": "0"})


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def failed_event(make_order, make_succeeded_event):
    """A payment.succeeded event that gave up after its retries (as if the handler had been broken)."""
    order = make_order()
    event = make_succeeded_event(order)
    WebhookEvent.objects.filter(pk=event.pk).update(
        status=WebhookEvent.Status.FAILED, attempts=8, last_error="OperationalError: database is locked"
    )
    event.refresh_from_db()
    return event


def test_reprocess_resets_a_failed_event_and_processes_it(
    staff_client, failed_event, django_capture_on_commit_callbacks
):
    client = staff_client("payments.view_webhookevent", "payments.reprocess_webhookevent")
    assert 'value="reprocess"' in client.get(EVENTS).content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        response = _post_action(client, EVENTS, "reprocess", failed_event.pk)

    assert response.status_code == 302
    failed_event.refresh_from_db()
    assert failed_event.status == WebhookEvent.Status.PROCESSED
    assert failed_event.attempts == 1
    assert failed_event.last_error == ""
    payment = Payment.objects.get(pk=failed_event.payment_id)
    assert payment.status == PaymentStatus.SUCCEEDED
    assert payment.order.status == OrderStatus.PAID
    # The task runs after the action's commit; with a broker it would still be queued at this point.
    assert _messages(response) == [f"sandbox event {failed_event.event_id}: queued for processing"]
    audit = AuditEntry.objects.get(action="webhook.reprocess")
    assert audit.actor_id == client.user.pk
    assert audit.object_id == str(failed_event.pk)


def test_reprocess_without_the_permission_changes_nothing(
    staff_client, failed_event, django_capture_on_commit_callbacks
):
    client = staff_client("payments.view_webhookevent")
    assert 'value="reprocess"' not in client.get(EVENTS).content.decode()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        _post_action(client, EVENTS, "reprocess", failed_event.pk)

    assert callbacks == []
    before = failed_event
    failed_event.refresh_from_db()
    assert (failed_event.status, failed_event.attempts, failed_event.last_error) == (
        WebhookEvent.Status.FAILED,
        8,
        before.last_error,
    )
    assert not AuditEntry.objects.filter(action="webhook.reprocess").exists()


def test_cancel_cancels_open_orders_and_reports_each_order(staff_client, make_order, make_paid_order):
    client = staff_client("payments.view_order", "payments.cancel_order")
    open_order = make_order()
    paid_order = make_paid_order()
    assert 'value="cancel_orders"' in client.get(ORDERS).content.decode()

    response = _post_action(client, ORDERS, "cancel_orders", open_order.pk, paid_order.pk)

    assert response.status_code == 302
    open_order.refresh_from_db()
    paid_order.refresh_from_db()
    assert open_order.status == OrderStatus.CANCELED
    assert paid_order.status == OrderStatus.PAID
    messages = _messages(response)
    assert f"Order {open_order.short_token}: canceled." in messages
    assert f"Order {paid_order.short_token}: not canceled. Only open orders can be canceled; this one is paid." in (
        messages
    )
    audit = AuditEntry.objects.get(action="order.cancel")
    assert (audit.actor_id, audit.object_id) == (client.user.pk, str(open_order.pk))


def test_cancel_closes_the_payment_under_way(staff_client, make_order):
    from django.utils import timezone

    from payments.services.checkout import start_payment

    order = make_order()
    payment = start_payment(order=order, provider_name="sandbox", now=timezone.now())
    client = staff_client("payments.view_order", "payments.cancel_order")

    _post_action(client, ORDERS, "cancel_orders", order.pk)

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.CANCELED


def test_cancel_without_the_permission_changes_nothing(staff_client, make_order):
    client = staff_client("payments.view_order")
    order = make_order()
    assert 'value="cancel_orders"' not in client.get(ORDERS).content.decode()

    _post_action(client, ORDERS, "cancel_orders", order.pk)

    order.refresh_from_db()
    assert order.status == OrderStatus.OPEN
    assert not AuditEntry.objects.filter(action="order.cancel").exists()


def test_no_bulk_delete_on_money_bearing_models(admin_client, make_order):
    make_order()
    for url in [ORDERS, "/admin/payments/payment/", EVENTS, "/admin/refunds/refund/", "/admin/core/auditentry/"]:
        assert 'value="delete_selected"' not in admin_client.get(url).content.decode(), url
