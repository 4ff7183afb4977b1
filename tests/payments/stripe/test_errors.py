"""What goes wrong with Stripe and what we do about it: declines shown to the buyer in plain words; 5xx and
timeouts retried by the SDK with the same idempotency key, then ProviderOutcomeUnknown (the refund stays
processing and a later run completes exactly one refund); a lost answer replayed; an idempotency_error is
never retried (RELIABILITY §6 rows 12, 14, 16)."""

import pytest
from django.utils import timezone

from payments.checkout.messages import GENERIC, failure_message
from payments.models import OrderStatus, PaymentStatus
from payments.providers.base import ProviderOutcomeUnknown, ProviderRequestRejected
from payments.providers.stripe import client as stripe_client
from refunds.models import Refund, RefundStatus
from refunds.services import execute_refund, request_refund, resend_stuck_refunds
from tests.payments.stripe.helpers import (
    assert_conserved,
    deliver_all,
    pay_and_return,
    start_stripe_payment,
    stripe_order,
)

pytestmark = pytest.mark.django_db

REFUNDS = r"/v1/refunds"
SESSIONS = r"/v1/checkout/sessions"


# --- declines ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "decline_code",
    [
        "insufficient_funds",
        "generic_decline",
        "expired_card",
        "incorrect_cvc",
        "card_velocity_exceeded",
        "do_not_honor",
        "lost_card",
        "stolen_card",
        "fraudulent",
        "processing_error",
        "authentication_required",
        "try_again_later",
    ],
)
def test_a_decline_fails_the_payment_with_the_decline_code_and_tells_the_buyer_in_plain_words(
    client, payee, fake_stripe, django_capture_on_commit_callbacks, decline_code
):
    order = stripe_order(payee)
    payment = start_stripe_payment(order)

    assert deliver_all(
        client, fake_stripe.decline(payment.provider_ref, decline_code), django_capture_on_commit_callbacks
    ) == [200]

    payment.refresh_from_db()
    assert (payment.status, payment.failure_code) == (PaymentStatus.FAILED, decline_code)
    page = client.get(f"/checkout/{order.token}/return/").content.decode()
    message = failure_message(decline_code)
    assert "did not go through" in page
    assert message.replace("'", "&#x27;") in page
    assert decline_code not in page  # the code itself is not for the buyer
    # Each of Stripe's codes has its own words (fraud signals get the plain "declined" on purpose), not the
    # catch-all for codes nobody mapped.
    assert message != GENERIC, f"no plain-language message for Stripe's {decline_code}"


def test_after_a_decline_the_buyer_may_still_pay_in_the_same_session(
    client, payee, fake_stripe, django_capture_on_commit_callbacks
):
    order = stripe_order(payee)
    payment = start_stripe_payment(order)
    deliver_all(client, fake_stripe.decline(payment.provider_ref), django_capture_on_commit_callbacks)
    deliver_all(client, fake_stripe.pay(payment.provider_ref), django_capture_on_commit_callbacks)

    payment.refresh_from_db()
    order.refresh_from_db()
    assert (payment.status, payment.failure_code, order.status) == (PaymentStatus.SUCCEEDED, "", OrderStatus.PAID)
    assert_conserved(fake_stripe)


# --- checkout creation: 5xx and timeouts -----------------------------------------------------------------


def test_a_5xx_on_checkout_creation_is_retried_by_the_sdk_with_the_same_key(payee, fake_stripe):
    fake_stripe.fail(SESSIONS, "500", times=1)
    order = stripe_order(payee)
    payment = start_stripe_payment(order)

    sent = fake_stripe.posts(SESSIONS)
    assert [r.status for r in sent] == [500, 200]
    assert {r.idempotency_key for r in sent} == {f"tollgate-payment-{payment.pk}"}
    assert len(fake_stripe.of_type("checkout.session")) == 1
    assert payment.status == PaymentStatus.PENDING
    assert payment.checkout_url == fake_stripe.objects[payment.provider_ref]["url"]


@pytest.mark.parametrize("fault", ["500", "timeout"])
def test_persistent_5xx_or_timeouts_on_checkout_creation_fail_the_attempt_politely(client, payee, fake_stripe, fault):
    fake_stripe.fail(SESSIONS, fault, times=3)  # the first try and the SDK's two retries
    order = stripe_order(payee)

    response = client.post(f"/checkout/{order.token}/", {"method": "stripe"})

    assert response.status_code == 400  # the checkout page again, with the error
    assert "not reachable right now" in response.content.decode()
    payment = order.payments.get()
    assert (payment.status, payment.failure_code) == (PaymentStatus.FAILED, "outcome_unknown")
    sent = fake_stripe.posts(SESSIONS)
    assert len(sent) == 3
    assert {r.idempotency_key for r in sent} == {f"tollgate-payment-{payment.pk}"}
    # The buyer tries again a moment later: a new attempt, a new key, a session.
    response = client.post(f"/checkout/{order.token}/", {"method": "stripe"})
    assert response.status_code == 303
    assert len(fake_stripe.of_type("checkout.session")) == 1


# --- refunds: unknown outcomes, lost answers, idempotency errors ----------------------------------------


@pytest.fixture
def paid_order(client, payee, fake_stripe, django_capture_on_commit_callbacks):
    order = stripe_order(payee)
    payment = start_stripe_payment(order)
    with django_capture_on_commit_callbacks(execute=True):
        pay_and_return(client, fake_stripe, payment)
    order.refresh_from_db()
    return order


def _requested_refund(order, amount: int, capture) -> Refund:
    """A refund row whose task is queued but not run (the test runs execute_refund itself)."""
    with capture() as queued:
        refund = request_refund(order=order, amount_minor=amount, reason="requested_by_customer", now=timezone.now())
    assert len(queued) == 1
    return refund


@pytest.mark.parametrize("fault", ["500", "timeout"])
def test_refund_outcome_unknown_stays_processing_and_a_later_run_completes_exactly_one(
    fake_stripe, paid_order, django_capture_on_commit_callbacks, fault
):
    refund = _requested_refund(paid_order, 4000, django_capture_on_commit_callbacks)
    fake_stripe.fail(REFUNDS, fault, times=3)

    with pytest.raises(ProviderOutcomeUnknown):
        execute_refund(refund_id=refund.pk, now=timezone.now())
    refund.refresh_from_db()
    assert refund.status == RefundStatus.PROCESSING
    assert len(fake_stripe.posts(REFUNDS)) == 3
    assert fake_stripe.of_type("refund") == []

    # Later the janitor sends it again: the same key, one refund at Stripe, ours completed once.
    later = timezone.now() + timezone.timedelta(hours=1)
    with django_capture_on_commit_callbacks(execute=True):
        assert resend_stuck_refunds(now=later) == 1
    refund.refresh_from_db()
    assert refund.status == RefundStatus.SUCCEEDED
    sent = fake_stripe.posts(REFUNDS)
    assert len(sent) == 4
    assert {r.idempotency_key for r in sent} == {f"tollgate-refund-{refund.pk}"}
    assert len(fake_stripe.of_type("refund")) == 1
    assert_conserved(fake_stripe)


def test_a_lost_refund_answer_is_replayed_on_the_sdk_retry(fake_stripe, paid_order, django_capture_on_commit_callbacks):
    fake_stripe.fail(REFUNDS, "lost", times=1)
    with django_capture_on_commit_callbacks(execute=True):
        refund = request_refund(order=paid_order, amount_minor=4000, reason="requested_by_customer", now=timezone.now())

    sent = fake_stripe.posts(REFUNDS)
    assert len(sent) == 2
    assert {r.idempotency_key for r in sent} == {f"tollgate-refund-{refund.pk}"}
    assert len(fake_stripe.of_type("refund")) == 1
    refund.refresh_from_db()
    assert (refund.status, refund.provider_ref) == (RefundStatus.SUCCEEDED, fake_stripe.of_type("refund")[0]["id"])
    assert_conserved(fake_stripe)


def test_a_lost_answer_then_a_later_retry_replays_it_and_makes_no_second_refund(
    fake_stripe, paid_order, django_capture_on_commit_callbacks
):
    refund = _requested_refund(paid_order, 4000, django_capture_on_commit_callbacks)
    fake_stripe.fail(REFUNDS, "lost", times=1)
    fake_stripe.fail(REFUNDS, "timeout", times=2)
    with pytest.raises(ProviderOutcomeUnknown):
        execute_refund(refund_id=refund.pk, now=timezone.now())
    assert len(fake_stripe.of_type("refund")) == 1  # it did happen

    refund = execute_refund(refund_id=refund.pk, now=timezone.now())

    assert refund.status == RefundStatus.SUCCEEDED
    assert len(fake_stripe.of_type("refund")) == 1
    assert fake_stripe.requests[-1].idempotency_key == f"tollgate-refund-{refund.pk}"
    assert_conserved(fake_stripe)


def test_an_idempotency_error_is_never_retried_and_fails_the_refund_for_staff(
    fake_stripe, paid_order, django_capture_on_commit_callbacks
):
    refund = _requested_refund(paid_order, 4000, django_capture_on_commit_callbacks)
    fake_stripe.fail(REFUNDS, "lost", times=1)
    fake_stripe.fail(REFUNDS, "timeout", times=2)
    with pytest.raises(ProviderOutcomeUnknown):
        execute_refund(refund_id=refund.pk, now=timezone.now())
    # The same key now goes out with other parameters (the row was changed meanwhile).
    Refund.objects.filter(pk=refund.pk).update(amount_minor=3000)
    before = len(fake_stripe.requests)

    with django_capture_on_commit_callbacks(execute=True):
        resend_stuck_refunds(now=timezone.now() + timezone.timedelta(hours=1))

    after = fake_stripe.requests[before:]
    assert [(r.path, r.status, r.idempotency_key) for r in after] == [
        ("/v1/refunds", 400, f"tollgate-refund-{refund.pk}")
    ]  # one request: neither the SDK nor the task retried it
    refund.refresh_from_db()
    assert refund.status == RefundStatus.FAILED
    assert refund.payment.needs_review


def test_the_client_raises_idempotency_error_for_a_key_reused_with_other_params(fake_stripe, paid_order):
    payment = paid_order.payments.get()
    params = {"payment_intent": payment.provider_payment_ref, "amount": 1000}
    stripe_client.create_refund(params, idempotency_key="tollgate-refund-999")
    before = len(fake_stripe.requests)

    with pytest.raises(ProviderRequestRejected) as raised:
        stripe_client.create_refund({**params, "amount": 2000}, idempotency_key="tollgate-refund-999")

    assert raised.value.code == "idempotency_error"
    assert len(fake_stripe.requests) == before + 1
    assert len(fake_stripe.of_type("refund")) == 1
