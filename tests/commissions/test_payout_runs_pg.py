"""PostgreSQL (RELIABILITY §6 rows 22, 25): the beat and staff start runs for the same payee at the same
instant, round after round (100 starts in all) -> one payout per round, one transfer at the fake Stripe,
available never below zero, the ledger balanced; a payout's task run by many workers at once (acks_late
redelivery) -> one transfer."""

import pytest
from django.utils import timezone

from commissions.models import Payout, PayoutRun
from commissions.payouts import runs
from ledger.selectors import check_ledger
from tests.commissions.payout_helpers import available, fund, staff, stripe_payee
from tests.payments.concurrency import run_concurrently

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROUNDS = 5
CONCURRENT = 20  # 5 rounds x 20 = 100 starts; 20 connections at a time leaves room on a shared server


def test_beat_and_staff_racing_for_one_payee_make_one_payout_each_time(fake_stripe):
    payee = stripe_payee(payout_schedule="weekly")
    user = staff("commissions.start_payout_run")
    monday = timezone.now().replace(year=2026, month=11, day=23)  # runs never look at the date but the beat's

    for round_number in range(ROUNDS):
        fund(payee, 10000 + round_number)

        def start(index):
            if index % 2:
                return runs.start_run(trigger=PayoutRun.Trigger.SCHEDULE, schedule="weekly", now=monday).pk
            return runs.start_run(trigger=PayoutRun.Trigger.STAFF, actor=user, now=timezone.now()).pk

        run_ids = run_concurrently(CONCURRENT, start)

        payouts = Payout.objects.filter(run_id__in=run_ids)
        assert payouts.count() == 1, f"round {round_number}"
        payout = payouts.get()
        assert payout.amount_minor == 10000 + round_number
        assert available(payee) == 0
        assert PayoutRun.objects.filter(pk__in=run_ids, payout_count=1).count() == 1
        assert PayoutRun.objects.filter(pk__in=run_ids, payout_count=0, status="completed").count() == CONCURRENT - 1

    # Each payout's task ran on the commit (eager): one transfer per payout, never more.
    transfers = fake_stripe.of_type("transfer")
    assert len(transfers) == ROUNDS
    assert sorted(t["amount"] for t in transfers) == [10000 + n for n in range(ROUNDS)]
    assert set(Payout.objects.values_list("status", flat=True)) == {Payout.Status.PAID}
    assert not Payout.objects.filter(amount_minor__lte=0).exists()
    assert check_ledger().ok


def test_one_payout_executed_by_many_workers_at_once_is_one_transfer(fake_stripe, monkeypatch):
    from commissions import tasks

    monkeypatch.setattr(tasks.execute_payout, "delay", lambda **kwargs: None)  # the task redelivered, below
    payee = stripe_payee()
    fund(payee, 10000)
    run = runs.start_run(trigger=PayoutRun.Trigger.STAFF, now=timezone.now(), payee_ids=[payee.pk])
    payout = run.payouts.get()
    assert payout.status == Payout.Status.CREATED

    results = run_concurrently(CONCURRENT, lambda i: runs.execute_payout(payout_id=payout.pk, now=timezone.now()))

    assert len(fake_stripe.of_type("transfer")) == 1
    payout.refresh_from_db()
    assert payout.status == Payout.Status.PAID
    assert {r.status for r in results} <= {Payout.Status.PAID, Payout.Status.PROCESSING}
    assert check_ledger().ok
