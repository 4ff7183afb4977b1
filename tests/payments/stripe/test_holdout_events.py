"""Real-shaped Stripe events (tests/fixtures/stripe/, copied from ../shared/holdout/stripe_events: built from
Stripe's OpenAPI fixtures, see MANIFEST.md there) parse with our event mapping and mean what they should."""

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ledger.money import Money
from payments.providers.stripe.events import interpret

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "stripe"
FILES = sorted(FIXTURES.glob("*.json"))

PI = "pi_1PgafyB7WZ01zgkWSjxsAJo3"
ACCOUNT = "acct_1PgafTB7WZ01zgkW"


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def test_all_eight_fixtures_are_there():
    assert [f.name for f in FILES] == [
        "account.updated.json",
        "charge.dispute.created.json",
        "charge.refunded.full.json",
        "charge.refunded.partial.json",
        "checkout.session.completed.json",
        "payment_intent.payment_failed.json",
        "payment_intent.succeeded.json",
        "payout.paid.json",
    ]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_holdout_event_parses(path):
    payload = json.loads(path.read_text())
    event = interpret(payload)
    assert (event.event_id, event.event_type) == (payload["id"], payload["type"])
    assert event.kind != "ignored"
    assert event.occurred_at == datetime.fromtimestamp(payload["created"], tz=UTC)


def test_checkout_session_completed_is_a_succeeded_payment():
    event = interpret(load("checkout.session.completed.json"))
    state = event.payment_state
    assert event.kind == "payment"
    assert (state.status, state.amount, state.captured) == ("succeeded", Money(3000, "EUR"), Money(3000, "EUR"))
    assert state.provider_ref.startswith("cs_test_")
    assert state.provider_payment_ref == PI
    assert state.fee is None  # not in the session: fetched from the charge's balance transaction


def test_payment_intent_succeeded_is_a_succeeded_payment():
    event = interpret(load("payment_intent.succeeded.json"))
    assert event.kind == "payment"
    assert (event.payment_state.status, event.payment_ref) == ("succeeded", PI)
    assert event.payment_state.captured == Money(3000, "EUR")


def test_payment_failed_carries_the_decline_code():
    event = interpret(load("payment_intent.payment_failed.json"))
    state = event.payment_state
    assert event.kind == "payment"
    assert (state.status, state.failure_code) == ("failed", "insufficient_funds")
    assert state.failure_message


@pytest.mark.parametrize("name", ["charge.refunded.partial.json", "charge.refunded.full.json"])
def test_charge_refunded_asks_for_the_refunds(name):
    event = interpret(load(name))
    assert (event.kind, event.payment_ref) == ("refunds_changed", PI)


def test_dispute_created_is_open_with_its_balance_move():
    event = interpret(load("charge.dispute.created.json"))
    state = event.dispute_state
    assert event.kind == "dispute"
    assert (state.status, state.provider_status, state.reason) == ("open", "needs_response", "fraudulent")
    assert (state.payment_ref, state.amount) == (PI, Money(3000, "EUR"))
    [move] = state.balance_moves
    assert (move.provider_ref, move.amount, move.fee) == (
        "txn_1PqDispWithdrawal0001AbC",
        Money(-3000, "EUR"),
        Money(2000, "EUR"),
    )
    assert state.evidence_due_by == datetime.fromtimestamp(1788352799, tz=UTC)


def test_account_updated_is_the_payees_connect_status():
    event = interpret(load("account.updated.json"))
    state = event.account_state
    assert event.kind == "account"
    assert (state.account_ref, state.our_payee_id) == (ACCOUNT, 17)
    assert (state.charges_enabled, state.payouts_enabled, state.details_submitted) == (True, True, True)
    assert state.requirements["currently_due"] == []


def test_payout_paid_is_a_connected_accounts_bank_payout():
    event = interpret(load("payout.paid.json"))
    state = event.bank_payout_state
    assert event.kind == "bank_payout"
    assert (state.account_ref, state.amount, state.status) == (ACCOUNT, Money(2700, "EUR"), "paid")
    assert state.provider_ref.startswith("po_")
    assert state.arrival_date is not None
