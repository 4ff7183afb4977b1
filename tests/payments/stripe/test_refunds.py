"""Refunds through Stripe: ours (by payment intent, the key from our refund row) and those made in the Stripe
dashboard (ingested once, however often and in whatever order their events arrive). Each ends with the
ledger balanced and our Stripe accounts equal to the fake's balance (I8)."""

import pytest
from django.utils import timezone

from ledger.models import LedgerTransaction
from payments.models import OrderStatus
from refunds.models import Refund, RefundReason, RefundStatus
from refunds.services import request_refund
from tests.payments.stripe.helpers import (
    assert_conserved,
    deliver_all,
    drain_webhooks,
    pay_and_return,
    start_stripe_payment,
    stripe_order,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def paid(client, payee, fake_stripe, django_capture_on_commit_callbacks):
    """An order paid at Stripe (known from the return page), with the payment's events not delivered yet."""
    order = stripe_order(payee)
    payment = start_stripe_payment(order)
    with django_capture_on_commit_callbacks(execute=True):
        events, _ = pay_and_return(client, fake_stripe, payment)
    payment.refresh_from_db()
    order.refresh_from_db()
    return order, payment, events


def _refund_txs() -> int:
    return LedgerTransaction.objects.filter(kind="refund").count()


@pytest.mark.parametrize(
    "arrangement",
    [
        lambda events: events,
        lambda events: events[::-1],
        lambda events: events + events,
        lambda events: events[::-1] + events,
    ],
    ids=["refund_first", "charge_first", "each_twice", "charge_first_each_twice"],
)
def test_a_dashboard_refund_is_ingested_once(
    client, fake_stripe, paid, django_capture_on_commit_callbacks, arrangement
):
    order, payment, payment_events = paid
    refund_events = fake_stripe.dashboard_refund(payment.provider_payment_ref, 5000)
    assert [e["type"] for e in refund_events] == ["refund.created", "charge.refunded"]

    codes = deliver_all(client, arrangement(refund_events) + payment_events, django_capture_on_commit_callbacks)
    drain_webhooks(django_capture_on_commit_callbacks)

    assert set(codes) == {200}
    refund = Refund.objects.get()
    [at_stripe] = fake_stripe.refunds_of(payment.provider_payment_ref)
    assert (refund.amount_minor, refund.status, refund.reason, refund.provider_ref) == (
        5000,
        RefundStatus.SUCCEEDED,
        RefundReason.MADE_AT_PROVIDER,
        at_stripe["id"],
    )
    assert _refund_txs() == 1
    order.refresh_from_db()
    payment.refresh_from_db()
    assert (order.status, order.refunded_minor, payment.refunded_minor) == (OrderStatus.PARTIALLY_REFUNDED, 5000, 5000)
    assert_conserved(fake_stripe)


def test_our_refund_goes_to_stripe_by_payment_intent_and_its_events_add_no_second_row(
    client, fake_stripe, paid, django_capture_on_commit_callbacks
):
    order, payment, payment_events = paid
    with django_capture_on_commit_callbacks(execute=True):
        refund = request_refund(order=order, amount_minor=4000, reason="requested_by_customer", now=timezone.now())

    [sent] = fake_stripe.posts("/v1/refunds")
    assert sent.idempotency_key == f"tollgate-refund-{refund.pk}"
    assert sent.params == {
        "payment_intent": payment.provider_payment_ref,
        "amount": "4000",
        "metadata": {"refund_id": str(refund.pk), "order": str(order.token)},
        "reason": "requested_by_customer",
    }
    refund.refresh_from_db()
    [at_stripe] = fake_stripe.refunds_of(payment.provider_payment_ref)
    assert (refund.status, refund.provider_ref) == (RefundStatus.SUCCEEDED, at_stripe["id"])

    events = fake_stripe.refund_events(at_stripe)
    deliver_all(client, events + events[::-1] + payment_events, django_capture_on_commit_callbacks)
    drain_webhooks(django_capture_on_commit_callbacks)

    assert Refund.objects.count() == 1
    assert _refund_txs() == 1
    order.refresh_from_db()
    assert (order.status, order.refunded_minor) == (OrderStatus.PARTIALLY_REFUNDED, 4000)
    assert_conserved(fake_stripe)


def test_a_full_refund_then_nothing_more_can_be_refunded(client, fake_stripe, paid, django_capture_on_commit_callbacks):
    order, payment, _ = paid
    with django_capture_on_commit_callbacks(execute=True):
        request_refund(order=order, amount_minor=12900, reason="requested_by_customer", now=timezone.now())
    order.refresh_from_db()
    assert (order.status, order.refunded_minor) == (OrderStatus.REFUNDED, 12900)
    assert fake_stripe.charge_of(payment.provider_payment_ref)["refunded"] is True
    # A dashboard refund the charge cannot hold never reaches us: Stripe refuses it; the ledger stays put.
    assert _refund_txs() == 1
    assert_conserved(fake_stripe)


def test_our_refund_whose_answer_was_lost_is_completed_by_its_webhook_and_never_sent_again(
    client, fake_stripe, paid, django_capture_on_commit_callbacks
):
    order, payment, _ = paid
    fake_stripe.fail(r"/v1/refunds", "lost", times=1)  # applied at Stripe, the answer lost
    fake_stripe.fail(r"/v1/refunds", "timeout", times=2)  # and the SDK's retries never get through
    with django_capture_on_commit_callbacks() as queued:
        refund = request_refund(order=order, amount_minor=4000, reason="requested_by_customer", now=timezone.now())
    from payments.providers.base import ProviderOutcomeUnknown
    from refunds.services import execute_refund

    assert len(queued) == 1
    with pytest.raises(ProviderOutcomeUnknown):
        execute_refund(refund_id=refund.pk, now=timezone.now())
    refund.refresh_from_db()
    assert refund.status == RefundStatus.PROCESSING
    [at_stripe] = fake_stripe.refunds_of(payment.provider_payment_ref)

    # Stripe's events tell us what happened: our refund (by its metadata) is completed, no second row.
    deliver_all(client, fake_stripe.refund_events(at_stripe), django_capture_on_commit_callbacks)
    refund.refresh_from_db()
    assert (refund.status, refund.provider_ref) == (RefundStatus.SUCCEEDED, at_stripe["id"])
    assert Refund.objects.count() == 1

    # The task's retry then finds it done and sends nothing.
    posts = len(fake_stripe.posts("/v1/refunds"))
    execute_refund(refund_id=refund.pk, now=timezone.now())
    assert len(fake_stripe.posts("/v1/refunds")) == posts
    assert len(fake_stripe.refunds_of(payment.provider_payment_ref)) == 1
    assert _refund_txs() == 1
    assert_conserved(fake_stripe)
