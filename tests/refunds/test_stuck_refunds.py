"""A refund whose task was lost (or ran out of retries on an unknown outcome) is sent again by the janitor,
with the same idempotency key: it completes exactly once."""

from datetime import timedelta

import pytest
from django.utils import timezone

from ledger.models import LedgerTransaction
from ledger.selectors import check_ledger
from payments.models import OrderStatus
from payments.providers.registry import get_provider
from payments.services.fulfilment import apply_payment_state
from refunds.models import Refund, RefundStatus
from refunds.services import request_refund, resend_stuck_refunds
from tests.payments.helpers import gateway_deliveries_suppressed, make_order, session_of, start_sandbox_payment

pytestmark = pytest.mark.django_db


def _paid_order(payee):
    from payments.providers.sandbox import gateway

    order = make_order(payee, unit_amount_minor=10000)
    with gateway_deliveries_suppressed():
        payment = start_sandbox_payment(order)
        gateway.buyer_pays(str(session_of(payment).token), now=timezone.now())
    state = get_provider("sandbox").fetch_payment(payment=payment)
    apply_payment_state(payment_id=payment.pk, state=state, now=timezone.now(), source="test")
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    return order


def test_a_refund_whose_task_was_lost_is_completed_once_by_the_janitor(payee, django_capture_on_commit_callbacks):
    order = _paid_order(payee)
    with django_capture_on_commit_callbacks(execute=False):  # the queued task is lost
        refund = request_refund(order=order, amount_minor=4000, reason="requested_by_customer", now=timezone.now())
    assert Refund.objects.get(pk=refund.pk).status == RefundStatus.APPROVED

    later = timezone.now() + timedelta(minutes=20)
    assert resend_stuck_refunds(now=timezone.now()) == 0  # not stuck yet
    for _ in range(2):  # the janitor runs twice
        with django_capture_on_commit_callbacks(execute=True):
            resend_stuck_refunds(now=later)

    refund.refresh_from_db()
    assert refund.status == RefundStatus.SUCCEEDED
    assert session_of(refund.payment).refunded_minor == 4000  # one refund at the gateway
    assert LedgerTransaction.objects.filter(idempotency_key=f"refund:{refund.pk}").count() == 1
    order.refresh_from_db()
    assert (order.status, order.refunded_minor) == (OrderStatus.PARTIALLY_REFUNDED, 4000)
    assert check_ledger().ok
