"""Celery tasks of releasing and paying out (thin: the work is in `commissions.release` and
`commissions.payouts`)."""

from celery import shared_task
from django.utils import timezone

from payments.providers.base import ProviderOutcomeUnknown, ProviderUnavailable


@shared_task(acks_late=True)
def release_due_funds(**kwargs) -> int:
    """Beat: move each payee's share whose release time has come from pending to available."""
    from commissions.release import release_due_funds as release

    return release(now=timezone.now())


@shared_task(acks_late=True)
def start_scheduled_payout_runs(**kwargs) -> list[int]:
    """Beat: a payout run for the payees whose schedule is due today (weekly on Mondays, monthly on the 1st)."""
    from commissions.payouts.runs import start_scheduled_runs

    return start_scheduled_runs(now=timezone.now())


@shared_task(
    bind=True,
    acks_late=True,
    autoretry_for=(ProviderUnavailable, ProviderOutcomeUnknown),
    retry_backoff=10,
    retry_backoff_max=3600,
    max_retries=10,
    # A pool child killed mid-payout (OOM, kill -9): sent again in 5 s like a retry, so max_retries caps the
    # redeliveries (reject_on_worker_lost alone requeues it forever, celery#6178); then it fails, acked.
    retry_on_worker_lost=True,
    default_retry_delay=5,
)
def execute_payout(self, *, payout_id: int, **kwargs):
    """Pay one payout of an approved run by its method (safe to run twice: keys come from the payout row)."""
    from commissions.payouts.runs import execute_payout as execute

    execute(payout_id=payout_id, now=timezone.now())
