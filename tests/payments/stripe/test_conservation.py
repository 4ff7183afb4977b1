"""Conservation on every Stripe money path, checked after each step of one long run with two payees: capture,
fee, our refund, a dashboard refund, a dispute won, a dispute lost, a payout, its reversal (ours and one made
in the dashboard). After every step the ledger balances (I1-I3), each capture splits exactly (I7), and our
Stripe accounts equal the balance the fake's objects add up to (I8, RELIABILITY §6 row 24)."""

import pytest
from django.utils import timezone

from commissions.payouts import create_payout, reverse_payout, send_payout
from commissions.services import start_stripe_onboarding
from ledger import accounts
from ledger.models import Entry, LedgerTransaction
from ledger.money import Money
from ledger.selectors import account_balance
from ledger.services import credit, debit, post_transaction
from payments.models import OrderStatus
from refunds.models import Dispute
from refunds.services import request_refund
from tests.factories import PayeeFactory
from tests.payments.stripe.helpers import (
    assert_conserved,
    deliver_all,
    drain_webhooks,
    start_stripe_payment,
    stripe_books,
)

pytestmark = pytest.mark.django_db


def _captures_split_exactly() -> None:
    for tx in LedgerTransaction.objects.filter(kind="capture"):
        entries = list(Entry.objects.filter(transaction=tx).select_related("account"))
        gross = sum(e.amount_minor for e in entries if e.account.code == "provider:stripe:clearing")
        parts = sum(e.amount_minor for e in entries if e.direction == "credit")
        assert parts == gross


def _two_payee_order(first, second):
    from payments.services.orders import LineInput, create_order

    return create_order(
        currency="EUR",
        buyer_email="buyer@example.com",
        buyer_country="CZ",
        now=timezone.now(),
        lines=[
            LineInput(payee_id=first.pk, description="Amplifier", quantity=2, unit_amount_minor=4999),
            LineInput(payee_id=second.pk, description="Cable", quantity=3, unit_amount_minor=333),
        ],
    )


def test_every_stripe_money_path_conserves_money(client, payee, fake_stripe, django_capture_on_commit_callbacks):
    capture = django_capture_on_commit_callbacks
    other = PayeeFactory(country="DE")
    steps = []

    def check(step: str) -> None:
        drain_webhooks(capture)
        assert_conserved(fake_stripe)
        _captures_split_exactly()
        steps.append((step, stripe_books("EUR")))

    def deliver(events) -> None:
        assert set(deliver_all(client, events, capture)) == {200}

    # Capture and fee, learned from the webhook alone (the fee from the charge's balance transaction).
    order = _two_payee_order(payee, other)
    payment = start_stripe_payment(order)
    deliver(fake_stripe.pay(payment.provider_ref))
    payment.refresh_from_db()
    assert payment.fee_minor == order.total_minor * 150 // 10000 + 25
    check("capture and fee")

    # Our partial refund, then one from the dashboard.
    order.refresh_from_db()
    with capture(execute=True):
        request_refund(order=order, amount_minor=2500, reason="requested_by_customer", now=timezone.now())
    check("our refund")
    deliver(fake_stripe.dashboard_refund(payment.provider_payment_ref, 1000))
    check("dashboard refund")
    order.refresh_from_db()
    assert (order.status, order.refunded_minor) == (OrderStatus.PARTIALLY_REFUNDED, 3500)

    # Disputes: one won, one lost (each checked while open too).
    for won in (True, False):
        disputed = _two_payee_order(payee, other)
        disputed_payment = start_stripe_payment(disputed)
        deliver(fake_stripe.pay(disputed_payment.provider_ref))
        opened = fake_stripe.open_dispute(fake_stripe.objects[disputed_payment.provider_ref]["payment_intent"])
        deliver(opened)
        check(f"dispute open ({'to be won' if won else 'to be lost'})")
        deliver(fake_stripe.close_dispute(opened[0]["data"]["object"]["id"], won=won))
        check("dispute won" if won else "dispute lost")
    assert sorted(Dispute.objects.values_list("status", flat=True)) == ["lost", "won"]

    # A payout to the first payee, reversed in part by us and in part in the dashboard.
    start_stripe_onboarding(
        payee=payee, return_url="http://testserver/r/", refresh_url="http://testserver/f/", now=timezone.now()
    )
    payee.refresh_from_db()
    release = account_balance(accounts.payee_pending(payee.pk), "EUR")  # all of it: lost disputes took some
    post_transaction(
        idempotency_key="release:test",
        kind="release",
        entries=[debit(accounts.payee_pending(payee.pk), release), credit(accounts.payee_available(payee.pk), release)],
        occurred_at=timezone.now(),
        memo="released for the test",
    )
    payout = create_payout(payee=payee, amount=Money(5000, "EUR"), now=timezone.now())
    payout = send_payout(payout_id=payout.pk, now=timezone.now())
    check("payout")
    deliver(fake_stripe.transfer_events(payout.provider_ref))
    check("transfer.created")
    reverse_payout(payout_id=payout.pk, amount=Money(1500, "EUR"), now=timezone.now())
    check("our reversal")
    deliver(fake_stripe.dashboard_reverse_transfer(payout.provider_ref, 500))
    check("dashboard reversal")

    # Every step but the duplicate confirmation moved our Stripe books, and they followed Stripe each time.
    moved = [name for (name, books), (_, before) in zip(steps[1:], steps, strict=False) if books != before]
    assert moved == [name for name, _ in steps[1:] if name != "transfer.created"]
