"""Sandbox test disputes from the admin: staff open one on a paid sandbox payment (an action on Payment) and
close it won or lost (actions on Dispute); the gateway answers with its signed dispute.* webhooks to
/webhooks/sandbox/, which hold and settle the payee's share like a real provider's events."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from ledger import accounts
from payments.models import WebhookEvent
from payments.providers.registry import get_provider
from payments.providers.sandbox import gateway
from payments.providers.sandbox.models import SandboxDispute, SandboxEvent
from refunds.models import Dispute, DisputeStatus
from tests.factories import staff_client as staff
from tests.refunds.disputes_helpers import assert_ledger_ok, balance, one_line, open_dispute, paid_sandbox_order

pytestmark = pytest.mark.django_db

PAYMENTS_URL = "/admin/payments/payment/"
DISPUTES_URL = "/admin/refunds/dispute/"


def run_action(client, url: str, action: str, pks) -> object:
    return client.post(url, {"action": action, "index": "0", "_selected_action": [str(pk) for pk in pks]})


def test_staff_open_a_test_dispute_and_win_it_through_the_signed_webhook(
    payee, webhook_relay, django_capture_on_commit_callbacks
):
    order, payment = paid_sandbox_order(django_capture_on_commit_callbacks, [one_line(payee)])
    share = order.lines.get().payee_share_minor
    opener = staff("payments.view_payment", "sandbox.add_sandboxdispute")
    assert "Open a test dispute (sandbox)" in opener.get(PAYMENTS_URL).content.decode()
    webhook_relay.deliveries.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = run_action(opener, PAYMENTS_URL, "open_test_dispute", [payment.pk])
    assert response.status_code == 302
    assert webhook_relay.deliveries == [("/webhooks/sandbox/", 200)]
    event = WebhookEvent.objects.get(provider="sandbox", event_type="dispute.created")
    assert event.status == WebhookEvent.Status.PROCESSED
    dispute = Dispute.objects.get(payment=payment)
    assert dispute.status == DisputeStatus.OPEN
    assert dispute.amount_minor == 12900
    assert dispute.held_minor == share
    assert dispute.reason == "fraudulent"
    assert abs(dispute.evidence_due_by - (timezone.now() + timedelta(days=7))) < timedelta(minutes=1)
    assert balance(accounts.payee_reserved(payee.pk)) == share
    assert balance(accounts.payee_available(payee.pk)) == -share
    assert_ledger_ok()

    closer = staff("refunds.view_dispute", "sandbox.change_sandboxdispute")
    with django_capture_on_commit_callbacks(execute=True):
        run_action(closer, DISPUTES_URL, "sandbox_submit_evidence", [dispute.pk])
    dispute.refresh_from_db()
    assert dispute.status == DisputeStatus.UNDER_REVIEW
    with django_capture_on_commit_callbacks(execute=True):
        run_action(closer, DISPUTES_URL, "sandbox_close_won", [dispute.pk])
    dispute.refresh_from_db()
    assert dispute.status == DisputeStatus.WON
    assert balance(accounts.payee_reserved(payee.pk)) == 0
    assert balance(accounts.payee_available(payee.pk)) == 0
    assert [path for path, status in webhook_relay.deliveries if status == 200] == ["/webhooks/sandbox/"] * 3
    assert_ledger_ok()


def test_closed_lost_from_the_admin_settles_the_loss(payee, webhook_relay, django_capture_on_commit_callbacks):
    order, payment = paid_sandbox_order(django_capture_on_commit_callbacks, [one_line(payee)])
    dispute = open_dispute(django_capture_on_commit_callbacks, payment)
    closer = staff("refunds.view_dispute", "sandbox.change_sandboxdispute")
    with django_capture_on_commit_callbacks(execute=True):
        run_action(closer, DISPUTES_URL, "sandbox_close_lost", [dispute.pk])
    dispute.refresh_from_db()
    assert dispute.status == DisputeStatus.LOST
    assert balance(accounts.payee_reserved(payee.pk)) == 0
    assert balance(accounts.PLATFORM_DISPUTE_LOSSES) == 12900 - dispute.held_minor
    assert_ledger_ok()


def test_without_the_permission_the_action_is_neither_offered_nor_run(
    payee, webhook_relay, django_capture_on_commit_callbacks
):
    order, payment = paid_sandbox_order(django_capture_on_commit_callbacks, [one_line(payee)])
    viewer = staff("payments.view_payment")
    assert "open_test_dispute" not in viewer.get(PAYMENTS_URL).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        run_action(viewer, PAYMENTS_URL, "open_test_dispute", [payment.pk])
    assert not SandboxDispute.objects.exists()
    assert not Dispute.objects.exists()


def test_not_offered_when_the_sandbox_is_disabled(settings, payee, webhook_relay, django_capture_on_commit_callbacks):
    order, payment = paid_sandbox_order(django_capture_on_commit_callbacks, [one_line(payee)])
    settings.SANDBOX_ENABLED = False
    opener = staff("payments.view_payment", "sandbox.add_sandboxdispute")
    with django_capture_on_commit_callbacks(execute=True):
        run_action(opener, PAYMENTS_URL, "open_test_dispute", [payment.pk])
    assert not SandboxDispute.objects.exists()


def test_a_payment_is_disputed_once_and_only_for_what_was_not_refunded(
    payee, webhook_relay, django_capture_on_commit_callbacks
):
    order, payment = paid_sandbox_order(django_capture_on_commit_callbacks, [one_line(payee)])
    open_dispute(django_capture_on_commit_callbacks, payment)
    with pytest.raises(gateway.GatewayError) as error:
        gateway.open_dispute(session_id=payment.provider_ref, reason="general", now=timezone.now())
    assert error.value.code == "charge_disputed"


def test_the_adapter_reads_a_dispute_event(payee, webhook_relay, django_capture_on_commit_callbacks):
    order, payment = paid_sandbox_order(django_capture_on_commit_callbacks, [one_line(payee)])
    dispute = open_dispute(django_capture_on_commit_callbacks, payment)
    payload = SandboxEvent.objects.get(event_type="dispute.created").payload
    event = get_provider("sandbox").interpret_event(payload=payload)
    assert event.kind == "dispute"
    assert event.our_payment_id == payment.pk
    assert event.payment_ref == payment.provider_payment_ref
    state = event.dispute_state
    assert state.provider_ref == dispute.provider_ref
    assert state.status == "open"
    assert state.evidence_due_by == dispute.evidence_due_by
    assert [(m.amount.amount_minor, m.fee.amount_minor) for m in state.balance_moves] == [(-12900, 1500)]


def test_due_filter_lists_what_is_due_in_3_days_and_what_is_overdue(
    payee, webhook_relay, django_capture_on_commit_callbacks
):
    order, payment = paid_sandbox_order(django_capture_on_commit_callbacks, [one_line(payee)])
    dispute = open_dispute(django_capture_on_commit_callbacks, payment)
    viewer = staff("refunds.view_dispute")
    page = viewer.get(DISPUTES_URL).content.decode()
    assert dispute.provider_ref in page
    assert "Due in 3 days" in page
    assert "Overdue" in page
    assert dispute.provider_ref not in viewer.get(DISPUTES_URL, {"due": "3d"}).content.decode()
    Dispute.objects.filter(pk=dispute.pk).update(evidence_due_by=timezone.now() + timedelta(days=2))
    assert dispute.provider_ref in viewer.get(DISPUTES_URL, {"due": "3d"}).content.decode()
    assert dispute.provider_ref not in viewer.get(DISPUTES_URL, {"due": "overdue"}).content.decode()
    Dispute.objects.filter(pk=dispute.pk).update(evidence_due_by=timezone.now() - timedelta(hours=1))
    overdue = viewer.get(DISPUTES_URL, {"due": "overdue"}).content.decode()
    assert dispute.provider_ref in overdue
    assert "(overdue)" in overdue
    for params in ({"payment__provider": "sandbox"}, {"reason": "fraudulent"}, {"q": order.short_token}):
        assert dispute.provider_ref in viewer.get(DISPUTES_URL, params).content.decode()
    payee_filter = viewer.get(DISPUTES_URL, {"order__lines__payee__id__exact": payee.pk})
    assert payee_filter.status_code == 200
    assert dispute.provider_ref in payee_filter.content.decode()
    assert "€129.00" in page  # totals per currency
