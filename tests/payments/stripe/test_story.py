"""The whole story at Stripe — payment, our partial refund, a refund of the rest from the Stripe dashboard, a
dispute opened and lost or won — with every event Stripe would send delivered to /webhooks/stripe/ in several
orders (chronological, reversed, seeded shuffles, each event twice), each order in its own fresh database.
Events that arrive before what they depend on fail and are retried until nothing is left. Every order must
end in the same state and the same ledger (RELIABILITY §6 row 4; I9), with the ledger balanced and our
Stripe accounts equal to the balance the fake's objects add up to (I8)."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from typing import Any

import pytest
from django.utils import timezone

from payments.models import Order, OrderStatus, Payment, PaymentStatus, WebhookEvent
from refunds.models import Dispute, Refund
from refunds.services import request_refund
from tests.payments.stripe.fake import FakeStripe
from tests.payments.stripe.helpers import (
    assert_conserved,
    deliver_all,
    drain_webhooks,
    ledger_balances,
    start_stripe_payment,
    stripe_order,
    transaction_kinds,
)

pytestmark = pytest.mark.django_db

GROSS = 12900
FEE = GROSS * 150 // 10000 + 25  # 218
DISPUTE_FEE = 2000


# --- the stories, built at the fake ---------------------------------------------------------------------


def _our_refund(fake: FakeStripe, order: Order, payment: Payment, amount: int, capture) -> list[dict[str, Any]]:
    """A refund made through our API: the row, then the Stripe call when its task runs (on commit)."""
    with capture(execute=True):
        refund = request_refund(order=order, amount_minor=amount, reason="requested_by_customer", now=timezone.now())
    [made] = [
        r for r in fake.refunds_of(payment.provider_payment_ref) if r["metadata"].get("refund_id") == str(refund.pk)
    ]
    return fake.refund_events(made)


def _story(fake, client, payee, capture, *, dashboard_part: int | None, won: bool, return_page: bool = True):
    """Build the story; returns (payment, every event Stripe sends, in the order it sent them)."""
    order = stripe_order(payee)
    payment = start_stripe_payment(order)
    events = fake.pay(payment.provider_ref)
    if return_page:
        with capture(execute=True):  # the buyer comes back before any webhook
            client.get(f"/checkout/{order.token}/return/")
        payment.refresh_from_db()
        events += _our_refund(fake, order, payment, 4000, capture)
        left = GROSS - 4000
    else:
        left = GROSS
    pi = fake.objects[payment.provider_ref]["payment_intent"]
    events += fake.dashboard_refund(pi, left if dashboard_part is None else dashboard_part)
    charge = fake.charge_of(pi)
    opened = fake.open_dispute(pi, amount=charge["amount"] - charge["amount_refunded"] or None, fee=DISPUTE_FEE)
    events += opened
    events += fake.close_dispute(opened[0]["data"]["object"]["id"], won=won)
    return payment, events


STORIES: dict[str, Callable] = {
    # pay; refund 40.00 through us; refund the other 89.00 in the dashboard; a chargeback of the whole 129.00
    "refunded_then_dispute_lost": lambda *a: _story(*a, dashboard_part=None, won=False),
    "refunded_then_dispute_won": lambda *a: _story(*a, dashboard_part=None, won=True),
    # pay; refund 40.00 through us and 30.00 in the dashboard; a chargeback of the remaining 59.00
    "partly_refunded_then_dispute_lost": lambda *a: _story(*a, dashboard_part=3000, won=False),
    # the buyer never comes back: we learn of the payment only from events (which may come last)
    "dashboard_refund_then_dispute_won_no_return": lambda *a: _story(
        *a, dashboard_part=5000, won=True, return_page=False
    ),
}


# --- the delivery orders --------------------------------------------------------------------------------


def _shuffled(events: list, seed: int) -> list:
    events = list(events)
    random.Random(seed).shuffle(events)
    return events


ORDERS: dict[str, Callable[[list], list]] = {
    "chronological": lambda events: list(events),
    "reversed": lambda events: events[::-1],
    "shuffle_7": lambda events: _shuffled(events, 7),
    "shuffle_1234": lambda events: _shuffled(events, 1234),
    "shuffle_99": lambda events: _shuffled(events, 99),
    "each_twice_shuffled": lambda events: _shuffled(events + events, 2026),
    # Stripe's refund listing answers 500 while the events arrive: every event that must ask Stripe for the
    # payment's refunds (charge.refunded, the dispute events) fails and is retried once Stripe is back.
    "shuffle_7_while_stripe_fails": lambda events: _shuffled(events, 7),
    "reversed_while_stripe_fails": lambda events: events[::-1],
}

# --- what every order must end in ------------------------------------------------------------------------
# Balances are debits - credits. 129.00 EUR splits into commission 12.90, VAT on it 2.71 and the payee's 113.39;
# refunds take back each part in proportion. The fake's fee is 2.18, its dispute fee 20.00.

EXPECTED: dict[str, dict[str, Any]] = {
    "refunded_then_dispute_lost": {
        "order": (OrderStatus.REFUNDED, GROSS),
        "payment": (PaymentStatus.SUCCEEDED, GROSS, GROSS, FEE),
        "refunds": [(4000, "succeeded", "requested_by_customer"), (8900, "succeeded", "made_at_provider")],
        "disputes": [("lost", 0)],  # everything was refunded before: no payee money left to hold
        "ledger": {
            "platform:dispute_losses": GROSS,
            "platform:provider_fees": FEE + DISPUTE_FEE,
            "provider:stripe:clearing": -(FEE + DISPUTE_FEE + GROSS),
        },
        "kinds": {"capture": 1, "provider_fee": 1, "refund": 2, "dispute_balance": 1, "dispute_loss": 1},
    },
    "refunded_then_dispute_won": {
        "order": (OrderStatus.REFUNDED, GROSS),
        "payment": (PaymentStatus.SUCCEEDED, GROSS, GROSS, FEE),
        "refunds": [(4000, "succeeded", "requested_by_customer"), (8900, "succeeded", "made_at_provider")],
        "disputes": [("won", 0)],
        "ledger": {"platform:provider_fees": FEE + DISPUTE_FEE, "provider:stripe:clearing": -(FEE + DISPUTE_FEE)},
        "kinds": {"capture": 1, "provider_fee": 1, "refund": 2, "dispute_balance": 2},
    },
    "partly_refunded_then_dispute_lost": {
        "order": (OrderStatus.PARTIALLY_REFUNDED, 7000),
        "payment": (PaymentStatus.SUCCEEDED, GROSS, 7000, FEE),
        "refunds": [(3000, "succeeded", "made_at_provider"), (4000, "succeeded", "requested_by_customer")],
        # held: the payee's share of the disputed 59.00 = 113.39 * 59 / 129 = 51.86
        "disputes": [("lost", 5186)],
        "ledger": {
            "payee:1:pending": -5186,  # what the refunds left the payee, still owed (not released yet)
            "payee:1:available": 5186,  # the hold came from available and was lost: the payee owes it
            "platform:commission": -590,
            "platform:vat_payable": -124,
            "platform:dispute_losses": 5900 - 5186,  # the platform's part of the loss
            "platform:provider_fees": FEE + DISPUTE_FEE,
            "provider:stripe:clearing": GROSS - FEE - 7000 - 5900 - DISPUTE_FEE,
        },
        "kinds": {
            "capture": 1,
            "provider_fee": 1,
            "refund": 2,
            "dispute_hold": 1,
            "dispute_balance": 1,
            "dispute_loss": 1,
        },
    },
    "dashboard_refund_then_dispute_won_no_return": {
        "order": (OrderStatus.PARTIALLY_REFUNDED, 5000),
        "payment": (PaymentStatus.SUCCEEDED, GROSS, 5000, FEE),
        "refunds": [(5000, "succeeded", "made_at_provider")],
        "disputes": [("won", 6944)],  # 113.39 * 79 / 129, released again
        "ledger": {
            "payee:1:pending": -6944,
            "platform:commission": -790,
            "platform:vat_payable": -166,
            "platform:provider_fees": FEE + DISPUTE_FEE,
            "provider:stripe:clearing": GROSS - FEE - 5000 - DISPUTE_FEE,
        },
        "kinds": {
            "capture": 1,
            "provider_fee": 1,
            "refund": 1,
            "dispute_hold": 1,
            "dispute_balance": 2,
            "dispute_release": 1,
        },
    },
}


def snapshot(payment: Payment) -> dict[str, Any]:
    """The final state, with ids normalized so that two databases compare."""
    order = Order.objects.get(pk=payment.order_id)
    payment = Payment.objects.get(pk=payment.pk)
    return {
        "order": (order.status, order.refunded_minor),
        "payment": (payment.status, payment.captured_minor, payment.refunded_minor, payment.fee_minor),
        "refunds": sorted(Refund.objects.filter(payment=payment).values_list("amount_minor", "status", "reason")),
        "disputes": sorted(Dispute.objects.filter(payment=payment).values_list("status", "held_minor")),
        "ledger": ledger_balances("EUR"),
        "kinds": dict(transaction_kinds()),
    }


def _never_regressed(model_history, ranks: list[str]) -> bool:
    statuses = [status for (status,) in model_history.order_by("history_date", "history_id").values_list("status")]
    positions = [ranks.index(status) for status in statuses if status in ranks]
    return positions == sorted(positions)


@pytest.mark.parametrize("order_name", list(ORDERS))
@pytest.mark.parametrize("story_name", list(STORIES))
def test_every_delivery_order_ends_in_the_same_state_and_ledger(
    client, payee, fake_stripe, django_capture_on_commit_callbacks, story_name, order_name
):
    capture = django_capture_on_commit_callbacks
    payment, events = STORIES[story_name](fake_stripe, client, payee, capture)
    delivered = ORDERS[order_name](events)

    stripe_fails = order_name.endswith("_while_stripe_fails")
    if stripe_fails:
        fake_stripe.fail(r"/v1/refunds", "500", times=10_000)
    codes = deliver_all(client, delivered, capture)
    if stripe_fails:
        # What could not be settled failed and waits for a retry; then Stripe answers again.
        assert WebhookEvent.objects.filter(status=WebhookEvent.Status.FAILED).exists()
        fake_stripe.faults.clear()
    drain_webhooks(capture)

    assert codes == [200] * len(delivered)
    assert WebhookEvent.objects.count() == len(events)
    assert not WebhookEvent.objects.exclude(status=WebhookEvent.Status.PROCESSED).exists()

    assert snapshot(payment) == EXPECTED[story_name]

    # No state ever went backwards on the way (I9), whatever the order.
    order = Order.objects.get(pk=payment.order_id)
    assert _never_regressed(order.history, ["open", "paid", "partially_refunded", "refunded"])
    assert _never_regressed(Payment.objects.get(pk=payment.pk).history, ["created", "pending", "succeeded"])
    assert_conserved(fake_stripe)


# --- RELIABILITY §6 row 4: every one of the 24 orders of processing, succeeded, refunded, dispute ----------


def _four_steps(fake: FakeStripe, payee) -> tuple[Payment, list[list[dict[str, Any]]]]:
    """A bank debit: processing, then succeeded; 30.00 refunded in the dashboard; the rest disputed (open)."""
    order = stripe_order(payee)
    payment = start_stripe_payment(order)
    processing = fake.pay_by_bank_debit(payment.provider_ref)
    succeeded = fake.settle_bank_debit(payment.provider_ref, paid=True)
    pi = fake.objects[payment.provider_ref]["payment_intent"]
    refunded = fake.dashboard_refund(pi, 3000)
    disputed = fake.open_dispute(pi, amount=GROSS - 3000, fee=DISPUTE_FEE)
    return payment, [processing, succeeded, refunded, disputed]


FOUR_STEPS_END = {
    "order": (OrderStatus.PARTIALLY_REFUNDED, 3000),
    "payment": (PaymentStatus.SUCCEEDED, GROSS, 3000, FEE),
    "refunds": [(3000, "succeeded", "made_at_provider")],
    "disputes": [("open", 8702)],  # the payee's 113.39 * 99 / 129, held
    "ledger": {
        "payee:1:pending": -8702,
        "payee:1:available": 8702,
        "payee:1:reserved": -8702,
        "platform:commission": -990,
        "platform:vat_payable": -208,
        "platform:provider_fees": FEE + DISPUTE_FEE,
        "provider:stripe:clearing": GROSS - FEE - 3000 - 9900 - DISPUTE_FEE,
        "provider:stripe:disputed": 9900,
    },
    "kinds": {"capture": 1, "provider_fee": 1, "refund": 1, "dispute_hold": 1, "dispute_balance": 1},
}


@pytest.mark.parametrize("permutation", list(itertools.permutations(range(4))), ids=lambda p: "".join(map(str, p)))
def test_all_24_orders_of_processing_succeeded_refunded_disputed_end_alike(
    client, payee, fake_stripe, django_capture_on_commit_callbacks, permutation
):
    capture = django_capture_on_commit_callbacks
    payment, steps = _four_steps(fake_stripe, payee)
    delivered = [event for index in permutation for event in steps[index]]

    assert deliver_all(client, delivered, capture) == [200] * len(delivered)
    drain_webhooks(capture)

    assert snapshot(payment) == FOUR_STEPS_END
    order = Order.objects.get(pk=payment.order_id)
    assert _never_regressed(order.history, ["open", "paid", "partially_refunded", "refunded"])
    assert _never_regressed(Payment.objects.get(pk=payment.pk).history, ["created", "pending", "succeeded"])
    assert_conserved(fake_stripe)
