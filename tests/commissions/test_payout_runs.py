"""Payout runs (issue 8): who is paid (eligibility, debt netted), approval above the threshold (no provider
call before a second user approves; the starter cannot approve; rejection puts the money back), the beat's
schedules, paying by method, and a worker dying mid-payout (one transfer at the fake Stripe after a retry).
Every path ends with the ledger balanced (`check_ledger().ok`)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from commissions.models import Payout, PayoutRun
from commissions.models.payees import PayoutMethod, PayoutSchedule
from commissions.payouts import core, runs
from core.audit import AuditEntry
from core.errors import DomainError
from ledger import accounts
from ledger.selectors import account_balance, check_ledger
from payments.providers.base import ProviderRequestRejected
from payments.providers.stripe.adapter import StripeProvider
from tests.commissions.payout_helpers import available, charge, fund, sepa_payee, staff, stripe_payee

pytestmark = pytest.mark.django_db

STAFF = PayoutRun.Trigger.STAFF


def in_transit(currency="EUR") -> int:
    return account_balance(accounts.PAYOUTS_IN_TRANSIT, currency).amount_minor


def start(actor=None, **kwargs):
    return runs.start_run(trigger=STAFF, actor=actor, now=timezone.now(), **kwargs)


# --- eligibility -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payee_kwargs", "funds", "reason"),
    [
        ({"payouts_held": True, "hold_reason": "KYC review"}, 10000, "Payouts are held: KYC review"),
        ({"status": "suspended"}, 10000, "The payee is suspended."),
        ({"payout_method_verified": False}, 10000, "The payout method is not verified."),
        ({"payout_minimum_minor": 5000}, 4999, "below the payee's minimum"),
        ({"stripe_payouts_enabled": False}, 10000, "cannot receive payouts"),
        ({}, -3000, "in debt"),
    ],
    ids=["held", "suspended", "unverified", "below-minimum", "stripe-not-enabled", "in-debt"],
)
def test_an_ineligible_payee_gets_no_payout_and_the_reason_is_recorded(payee_kwargs, funds, reason):
    payee = stripe_payee(**payee_kwargs)
    fund(payee, 10000)
    charge(payee, 10000 - funds) if funds < 10000 else None

    run = start(payee_ids=[payee.pk])

    assert not Payout.objects.exists()
    assert available(payee) == funds
    [skipped] = run.skipped
    assert reason in skipped.reason
    entry = AuditEntry.objects.get(action="payout.skipped", object_id=str(payee.pk))
    assert reason in entry.message
    assert entry.metadata == {"run": run.pk}
    run.refresh_from_db()
    assert (run.status, run.payout_count, run.totals) == (PayoutRun.Status.COMPLETED, 0, {})
    assert check_ledger().ok


def test_a_payee_at_its_minimum_is_paid_its_whole_available_balance():
    payee = stripe_payee(payout_minimum_minor=5000)
    fund(payee, 3000)
    fund(payee, 2000)

    run = start(payee_ids=[payee.pk])

    [payout] = run.payouts.all()
    assert (payout.amount_minor, payout.currency, payout.method, payout.status) == (
        5000,
        "EUR",
        PayoutMethod.STRIPE_TRANSFER,
        Payout.Status.CREATED,
    )
    assert (available(payee), in_transit()) == (0, 5000)
    assert (run.status, run.totals, run.payout_count) == (PayoutRun.Status.APPROVED, {"EUR": 5000}, 1)
    assert check_ledger().ok


def test_a_debt_is_netted_against_the_next_payout():
    payee = stripe_payee()
    charge(payee, 3000)  # a refund after the last payout: -30.00
    fund(payee, 10000)  # then +100.00 of new sales

    run = start(payee_ids=[payee.pk])

    assert run.payouts.get().amount_minor == 7000
    assert available(payee) == 0
    assert check_ledger().ok


def test_one_payout_per_currency_and_a_second_run_finds_nothing_left():
    payee = stripe_payee()
    fund(payee, 10000, "EUR")
    fund(payee, 250000, "CZK")

    first = start(payee_ids=[payee.pk])
    second = start(payee_ids=[payee.pk])

    assert sorted(first.payouts.values_list("currency", "amount_minor")) == [("CZK", 250000), ("EUR", 10000)]
    assert first.totals == {"CZK": 250000, "EUR": 10000}
    assert (second.payout_count, second.status, second.skipped) == (0, PayoutRun.Status.COMPLETED, [])
    assert check_ledger().ok


def test_a_sepa_payee_with_an_invalid_iban_is_excluded_with_a_reason():
    good, bad = sepa_payee(), sepa_payee(iban="DE89370400440532013001")
    fund(good, 10000)
    fund(bad, 10000)

    run = start()

    assert list(run.payouts.values_list("payee_id", flat=True)) == [good.pk]
    assert [(s.payee_id, s.reason) for s in run.skipped] == [(bad.pk, "The IBAN is missing or not valid.")]
    assert available(bad) == 10000
    assert check_ledger().ok


def test_only_staff_with_the_permission_start_a_run():
    with pytest.raises(DomainError) as exc:
        start(actor=staff())
    assert exc.value.status == 403
    assert not PayoutRun.objects.exists()


# --- approval ----------------------------------------------------------------------------------------------


@pytest.fixture
def low_threshold(settings):
    settings.TOLLGATE_PAYOUT_APPROVAL_THRESHOLD = {"EUR": 50000}


def test_above_the_threshold_nothing_is_sent_until_a_second_user_approves(
    low_threshold, fake_stripe, django_capture_on_commit_callbacks
):
    payee = stripe_payee()
    fund(payee, 60000)
    maker = staff("commissions.start_payout_run", "commissions.approve_payout_run")
    checker = staff("commissions.approve_payout_run")

    with django_capture_on_commit_callbacks(execute=True):
        run = start(actor=maker, payee_ids=[payee.pk])
    payout = run.payouts.get()
    assert run.status == PayoutRun.Status.AWAITING_APPROVAL
    assert (available(payee), in_transit()) == (0, 60000)  # set aside, not sent
    runs.execute_payout(payout_id=payout.pk, now=timezone.now())  # a stray task does nothing
    assert fake_stripe.posts("/v1/transfers") == []

    with pytest.raises(DomainError) as exc:
        runs.approve_run(run_id=run.pk, actor=maker, now=timezone.now())
    assert exc.value.code == "approver_is_requester"
    with pytest.raises(DomainError) as exc:
        runs.approve_run(run_id=run.pk, actor=staff(), now=timezone.now())
    assert exc.value.status == 403
    assert fake_stripe.posts("/v1/transfers") == []

    with django_capture_on_commit_callbacks(execute=True):
        run = runs.approve_run(run_id=run.pk, actor=checker, now=timezone.now())

    [sent] = fake_stripe.posts("/v1/transfers")
    assert sent.idempotency_key == f"tollgate-payout-{payout.pk}"
    payout.refresh_from_db()
    run.refresh_from_db()
    assert (payout.status, run.status, run.approved_by_id) == (
        Payout.Status.PAID,
        PayoutRun.Status.COMPLETED,
        checker.pk,
    )
    assert in_transit() == 0
    assert check_ledger().ok


def test_a_rejected_run_puts_the_money_back_and_sends_nothing(low_threshold, fake_stripe):
    payee = stripe_payee()
    fund(payee, 60000)
    run = start(payee_ids=[payee.pk])  # the beat or a user: any other approver may decide
    with pytest.raises(DomainError):
        runs.reject_run(run_id=run.pk, actor=staff("commissions.approve_payout_run"), reason=" ", now=timezone.now())

    run = runs.reject_run(
        run_id=run.pk, actor=staff("commissions.approve_payout_run"), reason="Bank holiday", now=timezone.now()
    )

    payout = run.payouts.get()
    assert (run.status, payout.status) == (PayoutRun.Status.REJECTED, Payout.Status.FAILED)
    assert "Bank holiday" in payout.failure_message
    assert (available(payee), in_transit()) == (60000, 0)
    assert fake_stripe.posts("/v1/transfers") == []
    assert check_ledger().ok


# --- the beat ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "paid"),
    [
        (datetime(2026, 11, 23, 6, tzinfo=UTC), {"weekly"}),  # a Monday
        (datetime(2026, 12, 1, 6, tzinfo=UTC), {"monthly"}),  # a Tuesday, the 1st
        (datetime(2027, 2, 1, 6, tzinfo=UTC), {"weekly", "monthly"}),  # a Monday, the 1st
        (datetime(2026, 11, 25, 6, tzinfo=UTC), set()),
    ],
)
def test_the_beat_pays_payees_by_their_schedule_and_never_manual_ones(day, paid):
    payees = {schedule: stripe_payee(payout_schedule=schedule) for schedule in PayoutSchedule.values}
    for payee in payees.values():
        fund(payee, 10000)

    run_ids = runs.start_scheduled_runs(now=day)

    assert all(PayoutRun.objects.get(pk=pk).trigger == PayoutRun.Trigger.SCHEDULE for pk in run_ids)
    paid_ids = set(Payout.objects.values_list("payee_id", flat=True))
    assert paid_ids == {payees[schedule].pk for schedule in paid}
    assert payees["manual"].pk not in paid_ids
    assert check_ledger().ok


def test_the_beat_cannot_start_a_run_for_manual_payees():
    with pytest.raises(DomainError):
        runs.start_run(trigger=PayoutRun.Trigger.SCHEDULE, schedule="manual", now=timezone.now())


# --- paying by method --------------------------------------------------------------------------------------


def test_an_approved_run_pays_stripe_payees_by_transfer(fake_stripe, django_capture_on_commit_callbacks):
    payee = stripe_payee()
    fund(payee, 10000)

    with django_capture_on_commit_callbacks(execute=True):
        run = start(payee_ids=[payee.pk])

    payout = run.payouts.get()
    [transfer] = fake_stripe.of_type("transfer")
    assert (payout.status, payout.provider_ref, transfer["amount"]) == (Payout.Status.PAID, transfer["id"], 10000)
    run.refresh_from_db()
    assert run.status == PayoutRun.Status.COMPLETED
    assert check_ledger().ok


def test_a_refused_transfer_reverses_the_posting_and_shows_why(
    fake_stripe, monkeypatch, django_capture_on_commit_callbacks
):
    payee = stripe_payee()
    fund(payee, 10000)

    def refused(self, *, payout):
        raise ProviderRequestRejected("Insufficient funds in Stripe balance.", code="balance_insufficient")

    monkeypatch.setattr(StripeProvider, "transfer", refused)

    with django_capture_on_commit_callbacks(execute=True):
        run = start(payee_ids=[payee.pk])

    payout = run.payouts.get()
    assert (payout.status, payout.failure_message) == (Payout.Status.FAILED, "Insufficient funds in Stripe balance.")
    assert (available(payee), in_transit()) == (10000, 0)
    assert check_ledger().ok


def test_paypal_is_not_available_yet_and_the_payout_stays_created():
    payee = stripe_payee(payout_method=PayoutMethod.PAYPAL, paypal_email="shop@example.com")
    fund(payee, 10000)
    run = start(payee_ids=[payee.pk])
    payout = run.payouts.get()
    assert payout.paypal_email == "shop@example.com"

    with pytest.raises(runs.PayoutMethodNotAvailable, match="PayPal payouts are not available yet"):
        runs.execute_payout(payout_id=payout.pk, now=timezone.now())

    payout.refresh_from_db()
    assert payout.status == Payout.Status.CREATED
    assert check_ledger().ok


# --- a worker dying mid-payout -----------------------------------------------------------------------------


class WorkerKilled(BaseException):
    """Stands for the worker process dying: not an Exception, so nothing on the way catches it."""


def _approved_payout(payee):
    fund(payee, 10000)
    return start(payee_ids=[payee.pk]).payouts.get()  # approved; its task not run (no on_commit here)


def test_killed_after_the_ledger_post_before_the_provider_call_pays_once_on_retry(fake_stripe, monkeypatch):
    payout = _approved_payout(stripe_payee())
    real_transfer = StripeProvider.transfer
    calls = []

    def dies_first(self, *, payout):
        calls.append(payout.pk)
        if len(calls) == 1:
            raise WorkerKilled
        return real_transfer(self, payout=payout)

    monkeypatch.setattr(StripeProvider, "transfer", dies_first)
    with pytest.raises(WorkerKilled):
        runs.execute_payout(payout_id=payout.pk, now=timezone.now())
    assert fake_stripe.of_type("transfer") == []
    payout.refresh_from_db()
    assert payout.status == Payout.Status.PROCESSING  # posted, marked as sending, nothing sent

    payout = runs.execute_payout(payout_id=payout.pk, now=timezone.now())  # acks_late: the task runs again

    [transfer] = fake_stripe.of_type("transfer")
    assert (payout.status, payout.provider_ref, payout.attempts) == (Payout.Status.PAID, transfer["id"], 2)
    assert in_transit() == 0
    assert check_ledger().ok


def test_killed_after_the_provider_call_before_recording_pays_once_on_retry(fake_stripe, monkeypatch):
    payout = _approved_payout(stripe_payee())
    real_confirm = core.confirm_payout
    calls = []

    def dies_first(**kwargs):
        calls.append(kwargs)
        if len(calls) == 1:
            raise WorkerKilled
        return real_confirm(**kwargs)

    monkeypatch.setattr(core, "confirm_payout", dies_first)
    with pytest.raises(WorkerKilled):
        runs.execute_payout(payout_id=payout.pk, now=timezone.now())
    assert len(fake_stripe.of_type("transfer")) == 1  # made at Stripe, never recorded here
    payout.refresh_from_db()
    assert (payout.status, payout.provider_ref) == (Payout.Status.PROCESSING, "")

    with monkeypatch.context() as m:  # even with Stripe's key pruned, the lookup by group finds it
        m.setattr(fake_stripe, "idempotency", {})
        payout = runs.execute_payout(payout_id=payout.pk, now=timezone.now() + timedelta(hours=25))

    [transfer] = fake_stripe.of_type("transfer")
    assert (payout.status, payout.provider_ref) == (Payout.Status.PAID, transfer["id"])
    assert len(fake_stripe.posts("/v1/transfers")) == 1
    assert check_ledger().ok


def test_killed_after_recording_the_last_payout_the_retry_completes_the_run(fake_stripe, monkeypatch):
    payout = _approved_payout(stripe_payee())
    real_complete = runs.complete_run_if_done
    calls = []

    def dies_first(run_id, now):
        calls.append(run_id)
        if len(calls) == 1:
            raise WorkerKilled
        return real_complete(run_id, now)

    monkeypatch.setattr(runs, "complete_run_if_done", dies_first)
    with pytest.raises(WorkerKilled):
        runs.execute_payout(payout_id=payout.pk, now=timezone.now())
    payout.refresh_from_db()
    assert payout.status == Payout.Status.PAID
    assert payout.run.status == PayoutRun.Status.APPROVED  # paid, the run not completed yet

    runs.execute_payout(payout_id=payout.pk, now=timezone.now())  # the redelivered task

    payout.run.refresh_from_db()
    assert payout.run.status == PayoutRun.Status.COMPLETED
    assert len(fake_stripe.of_type("transfer")) == 1
