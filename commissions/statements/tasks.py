"""Statement tasks (the `documents` queue: they render PDFs). Each is safe to run twice: a statement is issued
once per payout or month and e-mailed automatically once."""

from celery import shared_task
from django.conf import settings
from django.utils import timezone

RETRY = {"acks_late": True, "autoretry_for": (Exception,), "retry_backoff": 10, "retry_backoff_max": 600}


def _deliver(statement) -> int | None:
    from commissions.statements.pdf import email_statement

    if statement is None:
        return None
    if settings.TOLLGATE_RENDER_DOCUMENTS:
        email_statement(statement_id=statement.pk, now=timezone.now())
    return statement.pk


@shared_task(max_retries=8, **RETRY)
def issue_payout_statement(*, payout_id: int, **kwargs) -> int | None:
    """After a payout's money has left (transfer made, SEPA file sent): its statement, e-mailed to the payee."""
    from commissions.statements.issuing import issue_payout_statement as issue

    return _deliver(issue(payout_id=payout_id, now=timezone.now()))


@shared_task(max_retries=8, **RETRY)
def issue_month_statement(*, payee_id: int, currency: str, month: str, **kwargs) -> int | None:
    from commissions.statements.issuing import issue_month_statement as issue

    return _deliver(issue(payee_id=payee_id, currency=currency, month=month, now=timezone.now()))


@shared_task(acks_late=True)
def issue_monthly_statements(*, month: str = "", **kwargs) -> int:
    """Beat (the 1st): one task per payee and currency for the month that just ended."""
    from commissions.statements.issuing import month_statement_candidates, previous_month

    month = month or previous_month(timezone.now())
    candidates = month_statement_candidates(month)
    for payee_id, currency in candidates:
        issue_month_statement.delay(payee_id=payee_id, currency=currency, month=month)
    return len(candidates)


@shared_task(acks_late=True)
def issue_missing_payout_statements(**kwargs) -> int:
    """Beat (hourly): a payout whose statement task was lost still gets its statement."""
    from commissions.statements.issuing import payouts_missing_statements

    missing = payouts_missing_statements()
    for payout_id in missing:
        issue_payout_statement.delay(payout_id=payout_id)
    return len(missing)
