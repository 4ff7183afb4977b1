"""Stripe Checkout through the real SDK against the fake: the session we create, the buyer's redirect, one
fulfilment path for the return page and the webhooks, the fee from the balance transaction, expiry, and
amounts Stripe cannot take."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from core.errors import DomainError
from ledger.models import LedgerTransaction
from payments.models import Order, OrderStatus, PaymentStatus, WebhookEvent
from tests.payments.stripe.helpers import (
    assert_conserved,
    deliver_all,
    ledger_balances,
    pay_and_return,
    start_stripe_payment,
    stripe_order,
)

pytestmark = pytest.mark.django_db

FEE = 12900 * 150 // 10000 + 25  # the fake's 1.5 % + 0.25 of 129.00 EUR


def _tx_count(kind: str) -> int:
    return LedgerTransaction.objects.filter(kind=kind).count()


@pytest.mark.parametrize(
    ("order_ttl", "session_ttl"),
    [
        (timedelta(minutes=5), (timedelta(minutes=30), timedelta(minutes=32))),  # raised to Stripe's minimum
        (timedelta(hours=2), (timedelta(hours=2) - timedelta(seconds=1), timedelta(hours=2))),  # the order's own
        (timedelta(days=3), (timedelta(hours=23), timedelta(hours=24))),  # cut to Stripe's maximum
    ],
)
def test_checkout_page_creates_a_complete_session_and_redirects_the_buyer_to_it(
    client, payee, fake_stripe, order_ttl, session_ttl
):
    now = timezone.now().replace(microsecond=0)
    with time_machine.travel(now, tick=False):
        order = stripe_order(payee, lines=((2, 12900), (1, 4550)), expires_at=now + order_ttl)
        response = client.post(f"/checkout/{order.token}/", {"method": "stripe"})

    payment = order.payments.get()
    session = fake_stripe.objects[payment.provider_ref]
    assert response.status_code == 303
    assert response["Location"] == session["url"] == payment.checkout_url
    assert payment.status == PaymentStatus.PENDING

    [sent] = fake_stripe.posts("/v1/checkout/sessions")
    params = sent.params
    assert sent.status == 200
    assert sent.idempotency_key == f"tollgate-payment-{payment.pk}"
    assert params["mode"] == "payment"
    assert [
        (item["quantity"], item["price_data"]["unit_amount"], item["price_data"]["currency"])
        for item in params["line_items"]
    ] == [("2", "12900", "eur"), ("1", "4550", "eur")]  # integers (form-encoded), lowercase currency
    assert params["line_items"][0]["price_data"]["product_data"]["name"] == "Item 1"
    assert params["client_reference_id"] == str(payment.pk)
    ids = {"payment_id": str(payment.pk), "order": str(order.token)}
    assert params["metadata"] == ids
    assert params["payment_intent_data"]["metadata"] == ids
    assert params["payment_intent_data"]["transfer_group"] == f"order_{order.token}"
    assert params["customer_email"] == "buyer@example.com"
    assert (
        params["success_url"] == f"http://testserver/checkout/{order.token}/return/?session_id={{CHECKOUT_SESSION_ID}}"
    )
    assert params["cancel_url"] == f"http://testserver/checkout/{order.token}/?canceled=1"
    ttl = timedelta(seconds=int(params["expires_at"]) - int(now.timestamp()))
    low, high = session_ttl
    assert low <= ttl <= high
    assert timedelta(minutes=30) < ttl <= timedelta(hours=24)  # Stripe's window
    assert session["amount_total"] == 2 * 12900 + 4550


def test_a_second_click_reuses_the_open_session(client, payee, fake_stripe):
    order = stripe_order(payee)
    first = client.post(f"/checkout/{order.token}/", {"method": "stripe"})
    second = client.post(f"/checkout/{order.token}/", {"method": "stripe"})
    assert first["Location"] == second["Location"]
    assert len(fake_stripe.posts("/v1/checkout/sessions")) == 1
    assert order.payments.count() == 1


def test_return_page_fulfils_before_the_webhooks_which_then_change_nothing(
    client, payee, fake_stripe, django_capture_on_commit_callbacks, mailoutbox
):
    order = stripe_order(payee)
    payment = start_stripe_payment(order)

    with django_capture_on_commit_callbacks(execute=True):
        events, page = pay_and_return(client, fake_stripe, payment)

    # Paid from the return page alone: no webhook has arrived.
    assert not WebhookEvent.objects.exists()
    assert page.status_code == 200
    assert "payment received" in page.content.decode()
    order.refresh_from_db()
    payment.refresh_from_db()
    assert order.status == OrderStatus.PAID
    assert (payment.status, payment.captured_minor, payment.fee_minor) == (PaymentStatus.SUCCEEDED, 12900, FEE)
    assert payment.provider_payment_ref == fake_stripe.objects[payment.provider_ref]["payment_intent"]
    assert (_tx_count("capture"), _tx_count("provider_fee")) == (1, 1)
    assert len(mailoutbox) == 1
    before = ledger_balances("EUR")

    # Now the webhooks arrive, each twice, and the buyer reloads the page.
    codes = deliver_all(client, events + events, django_capture_on_commit_callbacks)
    assert codes == [200] * 4
    assert client.get(f"/checkout/{order.token}/return/").status_code == 200

    assert WebhookEvent.objects.count() == 2
    assert set(WebhookEvent.objects.values_list("status", flat=True)) == {WebhookEvent.Status.PROCESSED}
    assert (_tx_count("capture"), _tx_count("provider_fee")) == (1, 1)
    assert ledger_balances("EUR") == before
    assert before["provider:stripe:clearing"] == 12900 - FEE
    assert before["platform:provider_fees"] == FEE
    assert len(mailoutbox) == 1
    assert_conserved(fake_stripe)


@pytest.mark.parametrize("first", ["checkout.session.completed", "payment_intent.succeeded"])
def test_webhook_first_posts_the_fee_from_the_balance_transaction_once(
    client, payee, fake_stripe, django_capture_on_commit_callbacks, first
):
    order = stripe_order(payee)
    payment = start_stripe_payment(order)
    events = fake_stripe.pay(payment.provider_ref)
    events.sort(key=lambda event: event["type"] != first)

    deliver_all(client, events[:1], django_capture_on_commit_callbacks)
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert payment.fee_minor == FEE
    fee_tx = LedgerTransaction.objects.get(kind="provider_fee")
    assert fee_tx.idempotency_key == f"fee:payment:{payment.pk}"

    # The return page, the other event and duplicates add nothing.
    with django_capture_on_commit_callbacks(execute=True):
        assert "payment received" in client.get(f"/checkout/{order.token}/return/").content.decode()
    deliver_all(client, events + events, django_capture_on_commit_callbacks)
    assert (_tx_count("capture"), _tx_count("provider_fee")) == (1, 1)
    payment.refresh_from_db()
    assert payment.fee_minor == FEE
    assert_conserved(fake_stripe)


def test_an_expired_session_expires_our_payment(client, payee, fake_stripe, django_capture_on_commit_callbacks):
    order = stripe_order(payee)
    payment = start_stripe_payment(order)

    assert deliver_all(client, fake_stripe.expire(payment.provider_ref), django_capture_on_commit_callbacks) == [200]

    payment.refresh_from_db()
    order.refresh_from_db()
    assert payment.status == PaymentStatus.EXPIRED
    assert order.status == OrderStatus.OPEN  # the order itself may still be paid by another attempt
    assert not LedgerTransaction.objects.exists()
    page = client.get(f"/checkout/{order.token}/return/")
    assert "did not go through" in page.content.decode()
    # The buyer chooses Stripe again: a new attempt with its own session and key.
    second = start_stripe_payment(order)
    assert second.pk != payment.pk
    keys = [r.idempotency_key for r in fake_stripe.posts("/v1/checkout/sessions")]
    assert keys == [f"tollgate-payment-{payment.pk}", f"tollgate-payment-{second.pk}"]


@pytest.mark.parametrize("unit_amount", [12345, 12301])
def test_huf_amounts_not_in_whole_forints_are_refused_before_any_request(payee, fake_stripe, unit_amount):
    order = stripe_order(payee, currency="HUF", lines=((1, unit_amount),))
    with pytest.raises(DomainError):
        start_stripe_payment(order)
    assert fake_stripe.requests == []
    payment = order.payments.get()
    assert (payment.status, payment.failure_code) == (PaymentStatus.FAILED, "amount_precision")


def test_huf_in_whole_forints_is_sent_in_minor_units(payee, fake_stripe):
    order = stripe_order(payee, currency="HUF", lines=((3, 150000),))  # 3 x 1 500 Ft
    start_stripe_payment(order)
    [sent] = fake_stripe.posts("/v1/checkout/sessions")
    price = sent.params["line_items"][0]["price_data"]
    assert (price["currency"], price["unit_amount"], sent.params["line_items"][0]["quantity"]) == ("huf", "150000", "3")


def test_jpy_is_zero_decimal_and_sent_unscaled(client, payee, fake_stripe, django_capture_on_commit_callbacks):
    order = stripe_order(payee, currency="JPY", lines=((2, 1500),))  # 2 x ¥1,500
    payment = start_stripe_payment(order)
    [sent] = fake_stripe.posts("/v1/checkout/sessions")
    price = sent.params["line_items"][0]["price_data"]
    assert (price["currency"], price["unit_amount"]) == ("jpy", "1500")

    with django_capture_on_commit_callbacks(execute=True):
        pay_and_return(client, fake_stripe, payment)
    order = Order.objects.get(pk=order.pk)
    payment.refresh_from_db()
    assert order.status == OrderStatus.PAID
    assert payment.captured_minor == 3000
    assert payment.fee_minor == 3000 * 150 // 10000 + 25
    assert_conserved(fake_stripe, "JPY")


@pytest.mark.parametrize(
    "delivered",
    [lambda events: events, lambda events: events[::-1], lambda events: events[:1]],
    ids=["in_order", "reversed", "session_event_alone"],
)
def test_a_bank_debit_is_pending_until_async_payment_succeeded_then_paid_once(
    client, payee, fake_stripe, django_capture_on_commit_callbacks, delivered
):
    order = stripe_order(payee)
    payment = start_stripe_payment(order)
    completed = fake_stripe.pay_by_bank_debit(payment.provider_ref)

    deliver_all(client, completed, django_capture_on_commit_callbacks)
    payment.refresh_from_db()
    order.refresh_from_db()
    assert (payment.status, order.status) == (PaymentStatus.PENDING, OrderStatus.OPEN)
    assert not LedgerTransaction.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        page = client.get(f"/checkout/{order.token}/return/").content.decode()
    assert "payment received" not in page

    settled = fake_stripe.settle_bank_debit(payment.provider_ref, paid=True)
    deliver_all(client, delivered(settled), django_capture_on_commit_callbacks)
    deliver_all(client, completed, django_capture_on_commit_callbacks)  # a late duplicate of the first ones

    payment.refresh_from_db()
    order.refresh_from_db()
    assert (payment.status, payment.captured_minor, payment.fee_minor) == (PaymentStatus.SUCCEEDED, 12900, FEE)
    assert payment.provider_charge_ref.startswith("ch_")
    assert order.status == OrderStatus.PAID
    assert (_tx_count("capture"), _tx_count("provider_fee")) == (1, 1)
    assert_conserved(fake_stripe)


def test_a_refused_bank_debit_fails_the_payment_and_leaves_the_order_payable(
    client, payee, fake_stripe, django_capture_on_commit_callbacks
):
    order = stripe_order(payee)
    payment = start_stripe_payment(order)
    events = fake_stripe.pay_by_bank_debit(payment.provider_ref)
    events += fake_stripe.settle_bank_debit(payment.provider_ref, paid=False)

    assert deliver_all(client, events, django_capture_on_commit_callbacks) == [200] * 4

    payment.refresh_from_db()
    order.refresh_from_db()
    assert payment.status == PaymentStatus.FAILED
    assert payment.failure_code
    assert order.status == OrderStatus.OPEN
    assert not LedgerTransaction.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        page = client.get(f"/checkout/{order.token}/return/").content.decode()
    assert "did not go through" in page
    assert_conserved(fake_stripe)
