"""Stripe Connect: Express onboarding (one account, a fresh Account Link each time), the payee's status kept in
sync from account.updated, payouts as transfers keyed by the payout row (confirmed once, reversed once,
never duplicated even when retried after Stripe pruned the key: RELIABILITY §6 row 15) and connected
accounts' own bank payouts. Every money path ends balanced, with our Stripe accounts equal to the fake's
balance (I8)."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from commissions.models import ConnectedAccountPayout, Payee, Payout
from commissions.payouts import create_payout, reverse_payout, send_payout
from commissions.services import start_stripe_onboarding
from ledger import accounts
from ledger.models import LedgerTransaction
from ledger.money import Money
from ledger.selectors import account_balance
from ledger.services import credit, debit, post_transaction
from payments.providers.base import ProviderOutcomeUnknown
from payments.providers.stripe import client as stripe_client
from tests.payments.stripe.helpers import (
    assert_conserved,
    deliver_all,
    drain_webhooks,
    pay_and_return,
    start_stripe_payment,
    stripe_order,
)

pytestmark = pytest.mark.django_db

RETURN_URL = "http://testserver/portal/stripe/return/"
REFRESH_URL = "http://testserver/portal/stripe/refresh/"
SHARE = 11339  # the payee's share of a 129.00 EUR order


def onboard(payee):
    return start_stripe_onboarding(payee=payee, return_url=RETURN_URL, refresh_url=REFRESH_URL, now=timezone.now())


# --- onboarding and status ---------------------------------------------------------------------------------


def test_onboarding_creates_one_express_account_and_a_fresh_link_each_time(payee, fake_stripe):
    first, second = onboard(payee), onboard(payee)

    payee.refresh_from_db()
    [created] = fake_stripe.posts("/v1/accounts")
    assert created.idempotency_key == f"tollgate-payee-{payee.pk}-account"
    assert created.params["type"] == "express"
    assert created.params["country"] == "CZ"
    assert created.params["capabilities"] == {"transfers": {"requested": "true"}}
    assert created.params["metadata"] == {"payee_id": str(payee.pk)}
    [account] = fake_stripe.of_type("account")
    assert payee.stripe_account_id == account["id"]

    links = fake_stripe.posts("/v1/account_links")
    assert [r.idempotency_key for r in links] == [
        f"tollgate-payee-{payee.pk}-link-1",
        f"tollgate-payee-{payee.pk}-link-2",
    ]
    assert all(
        r.params
        == {
            "account": account["id"],
            "refresh_url": REFRESH_URL,
            "return_url": RETURN_URL,
            "type": "account_onboarding",
        }
        for r in links
    )
    assert first != second
    assert first.startswith("https://connect.stripe.com/")
    assert payee.stripe_onboarding_links == 2


def test_an_account_created_at_stripe_but_not_saved_by_us_is_found_again_by_its_key(payee, fake_stripe):
    onboard(payee)
    account_id = Payee.objects.get(pk=payee.pk).stripe_account_id
    Payee.objects.filter(pk=payee.pk).update(stripe_account_id=None)  # as if our write had been lost
    payee.refresh_from_db()

    onboard(payee)

    payee.refresh_from_db()
    assert payee.stripe_account_id == account_id
    assert len(fake_stripe.of_type("account")) == 1
    assert [r.idempotency_key for r in fake_stripe.posts("/v1/accounts")] == [f"tollgate-payee-{payee.pk}-account"] * 2


def test_account_updated_keeps_the_payees_connect_status_in_sync(
    client, payee, fake_stripe, django_capture_on_commit_callbacks
):
    onboard(payee)
    payee.refresh_from_db()
    assert (payee.stripe_charges_enabled, payee.stripe_payouts_enabled) == (False, False)

    enabled = fake_stripe.account_updated(payee.stripe_account_id)
    assert deliver_all(client, enabled + enabled, django_capture_on_commit_callbacks) == [200, 200]
    payee.refresh_from_db()
    assert (payee.stripe_charges_enabled, payee.stripe_payouts_enabled, payee.stripe_details_submitted) == (
        True,
        True,
        True,
    )
    assert payee.stripe_requirements == {"currently_due": [], "disabled_reason": None}
    assert payee.stripe_synced_at is not None

    deliver_all(
        client, fake_stripe.account_updated(payee.stripe_account_id, enabled=False), django_capture_on_commit_callbacks
    )
    payee.refresh_from_db()
    assert (payee.stripe_charges_enabled, payee.stripe_payouts_enabled) == (False, False)


def test_an_older_account_updated_arriving_late_does_not_undo_a_newer_one(
    client, payee, fake_stripe, django_capture_on_commit_callbacks
):
    onboard(payee)
    payee.refresh_from_db()
    now = timezone.now()
    with time_machine.travel(now - timedelta(minutes=5)):
        restricted = fake_stripe.account_updated(payee.stripe_account_id, enabled=False)
    with time_machine.travel(now):
        enabled = fake_stripe.account_updated(payee.stripe_account_id)

    assert restricted[0]["data"]["object"]["requirements"]["currently_due"]  # the snapshot before onboarding

    deliver_all(client, enabled + restricted, django_capture_on_commit_callbacks)

    payee.refresh_from_db()
    assert (payee.stripe_charges_enabled, payee.stripe_payouts_enabled) == (True, True)
    assert payee.stripe_requirements == {"currently_due": [], "disabled_reason": None}


def test_account_updated_for_an_account_that_is_not_ours_is_ignored(
    client, payee, fake_stripe, django_capture_on_commit_callbacks
):
    event = fake_stripe.event(
        "account.updated",
        {"id": "acct_someone_else", "object": "account", "charges_enabled": True, "payouts_enabled": True},
        account="acct_someone_else",
    )
    assert deliver_all(client, [event], django_capture_on_commit_callbacks) == [200]
    from payments.models import WebhookEvent

    assert WebhookEvent.objects.get().status == WebhookEvent.Status.IGNORED
    assert not Payee.objects.filter(stripe_account_id="acct_someone_else").exists()


# --- payouts -------------------------------------------------------------------------------------------------


@pytest.fixture
def funded(client, payee, fake_stripe, django_capture_on_commit_callbacks):
    """An onboarded payee whose share of a paid 129.00 EUR order is released to `available`."""
    onboard(payee)
    payee.refresh_from_db()
    order = stripe_order(payee)
    payment = start_stripe_payment(order)
    with django_capture_on_commit_callbacks(execute=True):
        pay_and_return(client, fake_stripe, payment)
    share = Money(SHARE, "EUR")
    post_transaction(  # the release (delivery window passed): pending -> available
        idempotency_key=f"release:test:{payee.pk}",
        kind="release",
        entries=[debit(accounts.payee_pending(payee.pk), share), credit(accounts.payee_available(payee.pk), share)],
        occurred_at=timezone.now(),
        memo="released for the test",
    )
    return payee


def _balance(spec) -> int:
    return account_balance(spec, "EUR").amount_minor


def test_a_payout_is_a_transfer_keyed_by_the_payout_and_moves_available_to_in_transit_to_clearing(
    client, fake_stripe, funded, django_capture_on_commit_callbacks
):
    payee = funded
    clearing_before = _balance(accounts.provider_clearing("stripe"))
    payout = create_payout(payee=payee, amount=Money(10000, "EUR"), now=timezone.now())
    assert (_balance(accounts.payee_available(payee.pk)), _balance(accounts.PAYOUTS_IN_TRANSIT)) == (
        SHARE - 10000,
        10000,
    )
    assert fake_stripe.posts("/v1/transfers") == []

    payout = send_payout(payout_id=payout.pk, now=timezone.now())

    [sent] = fake_stripe.posts("/v1/transfers")
    [transfer] = fake_stripe.of_type("transfer")
    assert sent.idempotency_key == f"tollgate-payout-{payout.pk}"
    assert sent.params == {
        "amount": "10000",
        "currency": "eur",
        "destination": payee.stripe_account_id,
        "transfer_group": f"payout_{payout.pk}",
        "metadata": {"payout_id": str(payout.pk), "payee_id": str(payee.pk)},
        "description": f"Payout {payout.pk}",
    }
    assert (payout.status, payout.provider_ref) == (Payout.Status.PAID, transfer["id"])
    assert _balance(accounts.PAYOUTS_IN_TRANSIT) == 0
    assert _balance(accounts.provider_clearing("stripe")) == clearing_before - 10000
    assert_conserved(fake_stripe)

    # Stripe's transfer.created, twice: the payout stays confirmed once.
    events = fake_stripe.transfer_events(transfer["id"])
    assert deliver_all(client, events + events, django_capture_on_commit_callbacks) == [200, 200]
    assert LedgerTransaction.objects.filter(kind="payout_paid").count() == 1
    assert_conserved(fake_stripe)


def test_a_transfer_created_event_confirms_a_payout_whose_answer_we_never_got(
    client, fake_stripe, funded, django_capture_on_commit_callbacks
):
    payout = create_payout(payee=funded, amount=Money(10000, "EUR"), now=timezone.now())
    fake_stripe.fail(r"/v1/transfers", "lost", times=1)
    fake_stripe.fail(r"/v1/transfers", "timeout", times=2)
    with pytest.raises(ProviderOutcomeUnknown):
        send_payout(payout_id=payout.pk, now=timezone.now())
    payout.refresh_from_db()
    assert payout.status == Payout.Status.PROCESSING
    [transfer] = fake_stripe.of_type("transfer")

    events = fake_stripe.transfer_events(transfer["id"])
    deliver_all(client, events + events, django_capture_on_commit_callbacks)

    payout.refresh_from_db()
    assert (payout.status, payout.provider_ref) == (Payout.Status.PAID, transfer["id"])
    assert LedgerTransaction.objects.filter(kind="payout_paid").count() == 1
    assert_conserved(fake_stripe)


def test_a_transfer_lost_then_retried_25_hours_later_is_looked_up_not_made_again(fake_stripe, funded):
    payout = create_payout(payee=funded, amount=Money(10000, "EUR"), now=timezone.now())
    fake_stripe.fail(r"/v1/transfers", "lost", times=1)  # made at Stripe, the answer lost ...
    fake_stripe.fail(r"/v1/transfers", "timeout", times=2)  # ... and the SDK's retries never get through
    with pytest.raises(ProviderOutcomeUnknown):
        send_payout(payout_id=payout.pk, now=timezone.now())
    assert len(fake_stripe.of_type("transfer")) == 1

    with time_machine.travel(timezone.now() + timedelta(hours=25)):
        assert fake_stripe.prune_idempotency_keys() >= 1  # Stripe forgot the key
        payout = send_payout(payout_id=payout.pk, now=timezone.now())

    [transfer] = fake_stripe.of_type("transfer")
    assert (payout.status, payout.provider_ref, payout.attempts) == (Payout.Status.PAID, transfer["id"], 2)
    assert len(fake_stripe.posts("/v1/transfers")) == 3  # the first attempt only; the retry looked it up
    [lookup] = [r for r in fake_stripe.requests if r.method == "GET" and r.path == "/v1/transfers"]
    assert lookup.status == 200
    assert_conserved(fake_stripe)


def test_without_the_lookup_the_late_retry_would_pay_twice(fake_stripe, funded, monkeypatch):
    """The guard above, patched out: proves that test can fail."""
    payout = create_payout(payee=funded, amount=Money(10000, "EUR"), now=timezone.now())
    fake_stripe.fail(r"/v1/transfers", "lost", times=1)
    fake_stripe.fail(r"/v1/transfers", "timeout", times=2)
    with pytest.raises(ProviderOutcomeUnknown):
        send_payout(payout_id=payout.pk, now=timezone.now())
    monkeypatch.setattr(stripe_client, "list_transfers", lambda group: [])
    with time_machine.travel(timezone.now() + timedelta(hours=25)):
        fake_stripe.prune_idempotency_keys()
        send_payout(payout_id=payout.pk, now=timezone.now())
    assert len(fake_stripe.of_type("transfer")) == 2


def test_a_reversal_puts_the_money_back_in_available_once(
    client, fake_stripe, funded, django_capture_on_commit_callbacks
):
    payee = funded
    payout = create_payout(payee=payee, amount=Money(10000, "EUR"), now=timezone.now())
    payout = send_payout(payout_id=payout.pk, now=timezone.now())
    available = _balance(accounts.payee_available(payee.pk))

    payout = reverse_payout(payout_id=payout.pk, amount=Money(4000, "EUR"), now=timezone.now())

    [sent] = fake_stripe.posts(f"/v1/transfers/{payout.provider_ref}/reversals")
    assert sent.idempotency_key == f"tollgate-payout-{payout.pk}-reversal-0"
    assert sent.params == {"amount": "4000", "metadata": {"payout_id": str(payout.pk)}}
    assert (payout.status, payout.reversed_minor) == (Payout.Status.PAID, 4000)
    assert _balance(accounts.payee_available(payee.pk)) == available + 4000
    assert_conserved(fake_stripe)

    # Stripe's transfer.reversed for it, twice: nothing more.
    events = fake_stripe.transfer_events(payout.provider_ref, "transfer.reversed")
    deliver_all(client, events + events, django_capture_on_commit_callbacks)
    assert LedgerTransaction.objects.filter(kind="payout_reversal").count() == 1
    assert _balance(accounts.payee_available(payee.pk)) == available + 4000

    # The rest reversed in the Stripe dashboard: learned from the event, once, however often it comes.
    events = fake_stripe.dashboard_reverse_transfer(payout.provider_ref, 6000)
    deliver_all(client, events + events, django_capture_on_commit_callbacks)
    drain_webhooks(django_capture_on_commit_callbacks)
    payout.refresh_from_db()
    assert (payout.status, payout.reversed_minor) == (Payout.Status.REVERSED, 10000)
    assert LedgerTransaction.objects.filter(kind="payout_reversal").count() == 2
    assert _balance(accounts.payee_available(payee.pk)) == available + 10000 == SHARE
    assert _balance(accounts.PAYOUTS_IN_TRANSIT) == 0
    assert_conserved(fake_stripe)


# --- the connected accounts' own payouts to their banks -------------------------------------------------------


def test_bank_payouts_of_a_connected_account_are_recorded_and_a_final_status_is_kept(
    client, payee, fake_stripe, django_capture_on_commit_callbacks
):
    onboard(payee)
    payee.refresh_from_db()
    account = payee.stripe_account_id
    [paid] = fake_stripe.bank_payout(account, 2700, "eur", "paid")
    payout_id = paid["data"]["object"]["id"]
    [older] = fake_stripe.bank_payout(account, 2700, "eur", "in_transit", payout_id=payout_id)
    [failed] = fake_stripe.bank_payout(account, 1500, "eur", "failed")

    assert deliver_all(client, [paid, older, paid, failed], django_capture_on_commit_callbacks) == [200] * 4

    rows = {row.provider_ref: row for row in ConnectedAccountPayout.objects.all()}
    assert len(rows) == 2
    row = rows[payout_id]
    assert (row.payee_id, row.account_ref, row.amount_minor, row.currency, row.status) == (
        payee.pk,
        account,
        2700,
        "EUR",
        "paid",
    )
    assert row.arrival_date is not None
    failed_row = rows[failed["data"]["object"]["id"]]
    assert (failed_row.status, failed_row.failure_message) == ("failed", "The bank account was closed.")
    assert not LedgerTransaction.objects.exists()  # the money left our books with the transfer
