"""GoPay has no idempotency keys: a refund whose answer is lost must never be refunded twice. Before each
send and each retry the refund history is read (RELIABILITY §2, §6 row 12)."""

import pytest
from django.utils import timezone

from payments.providers.base import ProviderOutcomeUnknown, ProviderUnavailable
from refunds.models import Refund, RefundStatus
from refunds.services import execute_refund, request_refund
from tests.payments.gopay.helpers import (
    assert_conserved,
    gopay_id,
    gopay_order,
    notify_and_process,
    start_gopay_payment,
)

pytestmark = pytest.mark.django_db

REFUND_PATH = r"/payments/payment/\d+/refund"
HISTORY_PATH = r"/payments/payment/\d+/refunds"


@pytest.fixture
def paid(client, payee, fake_gopay, django_capture_on_commit_callbacks):
    order = gopay_order(payee)
    payment = start_gopay_payment(order)
    fake_gopay.pay(gopay_id(payment))
    notify_and_process(client, django_capture_on_commit_callbacks, gopay_id(payment))
    payment.refresh_from_db()
    return order, payment


def _retry_until_settled(refund_id: int, limit: int = 100) -> Refund:
    for _ in range(limit):
        try:
            refund = execute_refund(refund_id=refund_id, now=timezone.now())
        except (ProviderOutcomeUnknown, ProviderUnavailable):
            continue  # the task would retry with backoff
        if refund.status in (RefundStatus.SUCCEEDED, RefundStatus.FAILED):
            return refund
    raise AssertionError(f"refund {refund_id} not settled after {limit} tries")


def test_200_refunds_each_applied_with_its_answer_lost_are_each_refunded_once(paid, fake_gopay):
    order, payment = paid
    fake_gopay.fail(REFUND_PATH, "lost", times=200)
    ids = []
    for _ in range(200):
        refund = request_refund(order=order, amount_minor=500, reason="requested_by_customer", now=timezone.now())
        ids.append(refund.pk)
        assert _retry_until_settled(refund.pk).status == RefundStatus.SUCCEEDED

    assert len(fake_gopay.posts(REFUND_PATH)) == 200  # one send each: every retry found it in the history
    assert fake_gopay.refunded(gopay_id(payment)) == 200 * 500
    assert len(set(Refund.objects.filter(pk__in=ids).values_list("provider_ref", flat=True))) == 200
    payment.refresh_from_db()
    assert payment.refunded_minor == 200 * 500
    assert_conserved(fake_gopay)


def test_a_refund_lost_then_the_history_unreadable_50_times_is_still_refunded_exactly_once(paid, fake_gopay):
    order, payment = paid
    fake_gopay.fail(REFUND_PATH, "lost", times=1)
    refund = request_refund(order=order, amount_minor=40000, reason="requested_by_customer", now=timezone.now())
    with pytest.raises(ProviderOutcomeUnknown):
        execute_refund(refund_id=refund.pk, now=timezone.now())
    fake_gopay.fail(HISTORY_PATH, "status0", times=25)
    fake_gopay.fail(HISTORY_PATH, "500", times=25)

    assert _retry_until_settled(refund.pk).status == RefundStatus.SUCCEEDED
    assert len(fake_gopay.posts(REFUND_PATH)) == 1
    assert fake_gopay.refunded(gopay_id(payment)) == 40000
    assert_conserved(fake_gopay)


def test_a_refund_that_never_reached_gopay_is_sent_again_and_refunded_once(paid, fake_gopay):
    order, payment = paid
    fake_gopay.fail(REFUND_PATH, "status0", times=3)
    refund = request_refund(order=order, amount_minor=150000, reason="requested_by_customer", now=timezone.now())

    assert _retry_until_settled(refund.pk).status == RefundStatus.SUCCEEDED
    assert fake_gopay.refunded(gopay_id(payment)) == 150000
    assert len(fake_gopay.posts(REFUND_PATH)) == 4  # 3 that never arrived, 1 that did
    assert_conserved(fake_gopay)


def test_a_lost_refund_confirmed_by_a_notification_first_is_not_sent_again(
    client, paid, fake_gopay, django_capture_on_commit_callbacks
):
    """The notification for the refund arrives before our retry: it completes our refund (not a portal one)."""
    order, payment = paid
    fake_gopay.fail(REFUND_PATH, "lost", times=1)
    refund = request_refund(order=order, amount_minor=30000, reason="requested_by_customer", now=timezone.now())
    with pytest.raises(ProviderOutcomeUnknown):
        execute_refund(refund_id=refund.pk, now=timezone.now())

    notify_and_process(client, django_capture_on_commit_callbacks, gopay_id(payment))
    refund.refresh_from_db()
    assert refund.status == RefundStatus.SUCCEEDED
    assert Refund.objects.count() == 1  # not mistaken for a refund made in GoPay's portal
    assert _retry_until_settled(refund.pk).status == RefundStatus.SUCCEEDED
    assert len(fake_gopay.posts(REFUND_PATH)) == 1
    assert fake_gopay.refunded(gopay_id(payment)) == 30000
    assert_conserved(fake_gopay)


def test_without_the_history_check_a_lost_answer_would_refund_twice(paid, fake_gopay, monkeypatch):
    """The guard patched out (RELIABILITY §6): the same retry then sends the refund a second time."""
    from payments.providers.gopay import refunds as gopay_refunds

    monkeypatch.setattr(gopay_refunds, "match_history", lambda payment, entries: [(e, None) for e in entries])
    order, payment = paid
    fake_gopay.fail(REFUND_PATH, "lost", times=1)
    refund = request_refund(order=order, amount_minor=40000, reason="requested_by_customer", now=timezone.now())

    _retry_until_settled(refund.pk)

    assert len(fake_gopay.posts(REFUND_PATH)) == 2
    assert fake_gopay.refunded(gopay_id(payment)) == 80000  # the buyer got it twice
