"""Every way a refund at GoPay can go: FINISHED; ACCEPTED then finished (or failed) and picked up by a notification;
FAILED; too much; PAYMENT_REFUND_NOT_SUPPORTED; too old for a card refund; never reached GoPay (status 0) and sent
again. After each, the books agree with GoPay (`assert_conserved`)."""

from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.utils import timezone

from core.errors import DomainError, ErrorCode
from ledger.models import LedgerTransaction
from payments.models import OrderStatus, PaymentStatus
from payments.providers.base import ProviderOutcomeUnknown, ProviderUnavailable
from refunds.models import Refund, RefundReason, RefundStatus
from refunds.services import execute_refund, refundable_minor, request_refund, resend_stuck_refunds
from tests.payments.gopay.helpers import (
    assert_conserved,
    gopay_id,
    gopay_order,
    notify_and_process,
    start_gopay_payment,
)

pytestmark = pytest.mark.django_db
REFUND = r"/payments/payment/\d+/refund"
HISTORY = r"/payments/payment/\d+/refunds"


@pytest.fixture
def capture(django_capture_on_commit_callbacks):
    return django_capture_on_commit_callbacks


@pytest.fixture
def paid(client, payee, fake_gopay, capture):
    """A 1 500 Kč order paid through GoPay and booked; the fake's log starts empty."""
    order = gopay_order(payee)
    payment = start_gopay_payment(order)
    fake_gopay.pay(gopay_id(payment))
    notify_and_process(client, capture, gopay_id(payment))
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    fake_gopay.requests.clear()
    return payment


def refund(payment, amount, capture=None, **kwargs):
    """Ask for a refund; with `capture` its task runs (eager Celery), without it only the row is made."""
    order = payment.order
    order.refresh_from_db()
    if capture is None:
        return request_refund(order=order, amount_minor=amount, reason="requested_by_customer", now=timezone.now())
    with capture(execute=True):
        made = request_refund(order=order, amount_minor=amount, reason="requested_by_customer", now=timezone.now())
    made.refresh_from_db()
    return made


def refund_posts(fake):
    return fake.posts(REFUND)


# --- FINISHED -------------------------------------------------------------------------------------------------


def test_finished(paid, fake_gopay, capture):
    made = refund(paid, 50000, capture)

    assert (made.status, made.provider_attempts) == (RefundStatus.SUCCEEDED, 1)
    [entry] = fake_gopay.refund_history(gopay_id(paid))
    assert made.provider_ref == str(entry["id"])
    [post] = refund_posts(fake_gopay)
    assert (post.body, post.scope, post.status) == ({"amount": "50000"}, "payment-all", 200)
    # The history is read before sending (nothing there yet) and after (to learn the refund's id).
    assert [r.method for r in fake_gopay.calls(None, r"/payments/payment/\d+/refunds?")] == ["GET", "POST", "GET"]
    paid.refresh_from_db()
    assert paid.refunded_minor == 50000
    assert paid.order.status == OrderStatus.PARTIALLY_REFUNDED
    assert LedgerTransaction.objects.filter(kind="refund").count() == 1
    assert_conserved(fake_gopay)


def test_finished_then_the_rest_and_notifications_change_nothing(client, paid, fake_gopay, capture):
    refund(paid, 50000, capture)
    refund(paid, 100000, capture)
    for _ in range(3):
        notify_and_process(client, capture, gopay_id(paid))

    assert fake_gopay.payment(gopay_id(paid))["state"] == "REFUNDED"
    assert list(Refund.objects.order_by("pk").values_list("amount_minor", "status")) == [
        (50000, RefundStatus.SUCCEEDED),
        (100000, RefundStatus.SUCCEEDED),
    ]
    paid.refresh_from_db()
    assert paid.order.status == OrderStatus.REFUNDED
    assert LedgerTransaction.objects.filter(kind="refund").count() == 2
    assert len(refund_posts(fake_gopay)) == 2
    assert_conserved(fake_gopay)


# --- ACCEPTED: GoPay is still processing it --------------------------------------------------------------------


def test_accepted_stays_processing_until_gopay_finishes_it(client, paid, fake_gopay, capture):
    fake_gopay.refund_result = "ACCEPTED"
    made = refund(paid, 50000, capture)

    [entry] = fake_gopay.refund_history(gopay_id(paid))
    assert entry["state"] == "REQUESTED"
    assert made.status == RefundStatus.PROCESSING
    assert made.provider_ref == str(entry["id"])
    assert LedgerTransaction.objects.filter(kind="refund").count() == 0
    assert refundable_minor(paid) == 100000  # held while GoPay works on it
    with pytest.raises(DomainError) as raised:
        refund(paid, 100001)
    assert raised.value.code == ErrorCode.REFUND_EXCEEDS_CAPTURED

    # A notification while GoPay is still at it, and the janitor, neither complete nor resend it.
    notify_and_process(client, capture, gopay_id(paid))
    with capture(execute=True):
        assert resend_stuck_refunds(now=timezone.now() + timedelta(hours=1)) == 1
    made.refresh_from_db()
    assert made.status == RefundStatus.PROCESSING
    assert len(refund_posts(fake_gopay)) == 1

    fake_gopay.finish_refunds(gopay_id(paid))
    for _ in range(3):
        notify_and_process(client, capture, gopay_id(paid))

    made.refresh_from_db()
    assert (made.status, made.provider_ref) == (RefundStatus.SUCCEEDED, str(entry["id"]))
    assert made.reason == RefundReason.REQUESTED_BY_CUSTOMER  # ours, not "made at GoPay"
    assert Refund.objects.count() == 1
    assert LedgerTransaction.objects.filter(kind="refund").count() == 1
    assert len(refund_posts(fake_gopay)) == 1
    paid.refresh_from_db()
    assert paid.refunded_minor == 50000
    assert paid.order.status == OrderStatus.PARTIALLY_REFUNDED
    assert_conserved(fake_gopay)


def test_accepted_then_failed_at_gopay_fails_ours_for_staff(client, paid, fake_gopay, capture):
    fake_gopay.refund_result = "ACCEPTED"
    made = refund(paid, 50000, capture)
    fake_gopay.finish_refunds(gopay_id(paid), ok=False)  # history: REQUESTED -> FAILED
    for _ in range(3):
        notify_and_process(client, capture, gopay_id(paid))

    made.refresh_from_db()
    assert made.status == RefundStatus.FAILED
    assert made.failure_message == "GoPay could not complete the refund."
    paid.refresh_from_db()
    assert paid.needs_review
    assert paid.refunded_minor == 0
    assert paid.order.status == OrderStatus.PAID
    assert refundable_minor(paid) == 150000  # the amount is free again
    assert LedgerTransaction.objects.filter(kind="refund").count() == 0
    assert Refund.objects.count() == 1  # the failed entry is not ingested as one made at GoPay
    assert_conserved(fake_gopay)


def test_accepted_and_finished_before_we_asked_again(paid, fake_gopay, capture):
    """GoPay finished it before anyone notified us: sending the refund again only finds it done."""
    fake_gopay.refund_result = "ACCEPTED"
    made = refund(paid, 50000, capture)
    fake_gopay.finish_refunds(gopay_id(paid))

    assert execute_refund(refund_id=made.pk, now=timezone.now()).status == RefundStatus.SUCCEEDED
    made.refresh_from_db()
    assert made.status == RefundStatus.SUCCEEDED
    assert len(refund_posts(fake_gopay)) == 1
    assert_conserved(fake_gopay)


# --- refused or failed -------------------------------------------------------------------------------------


def test_failed_result_fails_the_refund_with_a_message_for_staff(paid, fake_gopay, capture):
    from core.models import AuditEntry

    fake_gopay.refund_result = "FAILED"
    made = refund(paid, 50000, capture)

    assert made.status == RefundStatus.FAILED
    assert made.failure_message == "GoPay refused the refund."
    assert fake_gopay.refund_history(gopay_id(paid)) == []
    assert len(refund_posts(fake_gopay)) == 1
    paid.refresh_from_db()
    assert paid.needs_review
    assert paid.order.status == OrderStatus.PAID
    assert AuditEntry.objects.filter(action="refund.failed", outcome="failure").exists()
    assert LedgerTransaction.objects.filter(kind="refund").count() == 0
    assert_conserved(fake_gopay)


@pytest.mark.parametrize("refusal", ["FAILED result", "not supported"])
def test_a_refused_refund_never_claims_a_later_refunds_entry(client, paid, fake_gopay, capture, refusal):
    """GoPay refused refund A (nothing moved); staff then refund the same amount again (B), which works. A must
    stay failed: were B's history entry given to A, A would be booked as well and the books would show twice
    what GoPay refunded."""
    if refusal == "FAILED result":
        fake_gopay.refund_result = "FAILED"
    else:
        fake_gopay.mark_refund_not_supported(gopay_id(paid))
    first = refund(paid, 50000, capture)
    assert first.status == RefundStatus.FAILED
    fake_gopay.refund_result = "FINISHED"
    fake_gopay.objects[gopay_id(paid)]["_refund_not_supported"] = False

    second = refund(paid, 50000, capture)
    for _ in range(3):
        notify_and_process(client, capture, gopay_id(paid))

    [entry] = fake_gopay.refund_history(gopay_id(paid))
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, first.provider_ref) == (RefundStatus.FAILED, "")
    assert (second.status, second.provider_ref) == (RefundStatus.SUCCEEDED, str(entry["id"]))
    paid.refresh_from_db()
    assert paid.refunded_minor == 50000
    assert LedgerTransaction.objects.filter(kind="refund").count() == 1
    assert_conserved(fake_gopay)


def test_more_than_was_paid_is_refused_before_gopay_is_asked(paid, fake_gopay, capture):
    with pytest.raises(DomainError) as raised:
        refund(paid, 150001, capture)
    assert raised.value.code == ErrorCode.REFUND_EXCEEDS_CAPTURED
    refund(paid, 100000, capture)
    with pytest.raises(DomainError):
        refund(paid, 50001, capture)

    assert Refund.objects.count() == 1
    assert len(refund_posts(fake_gopay)) == 1
    assert_conserved(fake_gopay)


def test_more_than_gopay_has_left_fails_ours_and_the_portal_refund_is_booked(client, paid, fake_gopay, capture):
    """Staff refunded in GoPay's portal and we had not heard yet: GoPay refuses ours as exceeding."""
    fake_gopay.portal_refund(gopay_id(paid), 100000)
    made = refund(paid, 100000, capture)

    assert made.status == RefundStatus.FAILED
    assert "exceeds" in made.failure_message
    assert fake_gopay.refunded(gopay_id(paid)) == 100000  # nothing refunded twice
    notify_and_process(client, capture, gopay_id(paid))

    refunds = list(Refund.objects.order_by("pk").values_list("amount_minor", "status", "reason"))
    assert refunds == [
        (100000, RefundStatus.FAILED, RefundReason.REQUESTED_BY_CUSTOMER),
        (100000, RefundStatus.SUCCEEDED, RefundReason.MADE_AT_PROVIDER),
    ]
    paid.refresh_from_db()
    assert paid.refunded_minor == 100000
    assert_conserved(fake_gopay)


def test_refund_not_supported_fails_with_the_plain_explanation(paid, fake_gopay, capture):
    fake_gopay.mark_refund_not_supported(gopay_id(paid))
    made = refund(paid, 50000, capture)

    assert made.status == RefundStatus.FAILED
    message = made.failure_message
    assert "GoPay cannot refund this payment" in message
    assert "refund limit" in message
    assert f"{settings.GOPAY_CARD_REFUND_MAX_AGE.days} days" in message
    assert "another way" in message  # what staff should do instead
    assert "PAYMENT_REFUND_NOT_SUPPORTED" not in message
    assert len(refund_posts(fake_gopay)) == 1
    assert fake_gopay.refunded(gopay_id(paid)) == 0
    paid.refresh_from_db()
    assert paid.needs_review
    assert_conserved(fake_gopay)


def test_a_payment_older_than_the_card_refund_limit_is_refused_before_anything_is_sent(
    client, payee, fake_gopay, capture
):
    now = timezone.now()
    with time_machine.travel(now, tick=False) as traveller:
        order = gopay_order(payee)
        payment = start_gopay_payment(order)
        fake_gopay.pay(gopay_id(payment))
        notify_and_process(client, capture, gopay_id(payment))
        fake_gopay.requests.clear()

        traveller.shift(settings.GOPAY_CARD_REFUND_MAX_AGE - timedelta(days=1))
        payment.refresh_from_db()
        assert refund(payment, 10000, capture).status == RefundStatus.SUCCEEDED  # still inside the limit
        traveller.shift(timedelta(days=2))
        made = refund(payment, 10000, capture)

    assert made.status == RefundStatus.FAILED
    assert "refund limit" in made.failure_message
    assert made.provider_attempts == 0
    assert len(refund_posts(fake_gopay)) == 1  # only the one inside the limit
    assert fake_gopay.refunded(gopay_id(payment)) == 10000
    assert_conserved(fake_gopay)


# --- never reached GoPay, sent again -----------------------------------------------------------------------


def test_status0_refund_is_sent_again_by_the_next_run_and_made_once(paid, fake_gopay):
    made = refund(paid, 50000)  # the row only; its task is run by hand below
    fake_gopay.fail(REFUND, "status0")
    with pytest.raises(ProviderOutcomeUnknown):
        execute_refund(refund_id=made.pk, now=timezone.now())
    made.refresh_from_db()
    assert (made.status, made.provider_attempts, made.provider_ref) == (RefundStatus.PROCESSING, 1, "")
    assert fake_gopay.refunded(gopay_id(paid)) == 0
    assert LedgerTransaction.objects.filter(kind="refund").count() == 0

    done = execute_refund(refund_id=made.pk, now=timezone.now())
    assert done.status == RefundStatus.SUCCEEDED
    assert [r.status for r in refund_posts(fake_gopay)] == [0, 200]
    made.refresh_from_db()
    assert made.provider_attempts == 2
    assert fake_gopay.refunded(gopay_id(paid)) == 50000
    assert len(fake_gopay.refund_history(gopay_id(paid))) == 1
    assert execute_refund(refund_id=made.pk, now=timezone.now()).status == RefundStatus.SUCCEEDED  # a third run
    assert len(refund_posts(fake_gopay)) == 2
    assert LedgerTransaction.objects.filter(kind="refund").count() == 1
    assert_conserved(fake_gopay)


@pytest.mark.parametrize("kind", ["status0", "500"])
def test_a_refund_left_unknown_is_sent_again_by_the_janitor(paid, fake_gopay, capture, kind):
    made = refund(paid, 50000)
    fake_gopay.fail(REFUND, kind)
    with pytest.raises(ProviderOutcomeUnknown):
        execute_refund(refund_id=made.pk, now=timezone.now())

    with capture(execute=True):
        assert resend_stuck_refunds(now=timezone.now() + timedelta(minutes=16)) == 1
    made.refresh_from_db()
    assert made.status == RefundStatus.SUCCEEDED
    assert [r.status for r in refund_posts(fake_gopay)] == [0 if kind == "status0" else 500, 200]
    assert fake_gopay.refunded(gopay_id(paid)) == 50000
    assert_conserved(fake_gopay)


def test_status0_in_the_celery_task_asks_for_a_retry_which_refunds_once(paid, fake_gopay, capture):
    from celery.exceptions import Retry

    fake_gopay.fail(REFUND, "status0")
    with pytest.raises(Retry):  # eager here; a worker retries it with backoff
        refund(paid, 50000, capture)
    made = Refund.objects.get()
    assert (made.status, made.provider_attempts) == (RefundStatus.PROCESSING, 1)

    with capture(execute=True):
        resend_stuck_refunds(now=timezone.now() + timedelta(minutes=16))
    made.refresh_from_db()
    assert made.status == RefundStatus.SUCCEEDED
    assert [r.status for r in refund_posts(fake_gopay)] == [0, 200]
    assert fake_gopay.refunded(gopay_id(paid)) == 50000
    assert_conserved(fake_gopay)


def test_gopay_down_before_sending_sends_nothing_and_retries(paid, fake_gopay):
    made = refund(paid, 50000)
    fake_gopay.fail(HISTORY, "500")  # the history read that comes before any send
    with pytest.raises(ProviderUnavailable):
        execute_refund(refund_id=made.pk, now=timezone.now())
    made.refresh_from_db()
    assert (made.status, made.provider_attempts) == (RefundStatus.PROCESSING, 0)
    assert refund_posts(fake_gopay) == []

    assert execute_refund(refund_id=made.pk, now=timezone.now()).status == RefundStatus.SUCCEEDED
    assert len(refund_posts(fake_gopay)) == 1
    assert_conserved(fake_gopay)


def test_token_endpoint_down_sends_no_refund(paid, fake_gopay):
    from django.core.cache import cache

    made = refund(paid, 50000)
    cache.clear()  # our token expired
    fake_gopay.fail(r"/oauth2/token", "500")
    with pytest.raises(ProviderUnavailable):
        execute_refund(refund_id=made.pk, now=timezone.now())
    assert fake_gopay.calls(None, r"/payments/.*") == []

    assert execute_refund(refund_id=made.pk, now=timezone.now()).status == RefundStatus.SUCCEEDED
    assert len(refund_posts(fake_gopay)) == 1
    assert_conserved(fake_gopay)
