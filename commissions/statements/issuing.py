"""Issuing payee statements: one per payout (when its money leaves: the Stripe transfer is made or the SEPA file
is sent) and one per month (beat on the 1st, `manage.py issue_statements`). A statement row is written once,
with its PDF when documents are rendered; the figures come from `figures.statement_figures` (the ledger only)
and the database refuses a row whose opening + movements ≠ closing.

A payout statement covers what happened since the payee's previous payout statement in that currency up to and
including the payout's own ledger posting; a monthly statement covers the calendar month (UTC)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q

from commissions.models import Payout, PayoutStatement, SepaFile
from commissions.statements.figures import StatementFigures, first_activity, statement_figures
from ledger.models import Account, LedgerTransaction

# Posting times are microsecond-precise: the payout's own posting is the last thing its statement includes.
JUST_AFTER = timedelta(microseconds=1)


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """'2026-10' → [2026-10-01 00:00 UTC, 2026-11-01 00:00 UTC)."""
    start = datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)
    end = (start + timedelta(days=32)).replace(day=1)
    return start, end


def previous_month(now: datetime) -> str:
    first = now.astimezone(UTC).replace(day=1)
    return (first - timedelta(days=1)).strftime("%Y-%m")


def _write(*, kind: str, figures: StatementFigures, payout: Payout | None, now: datetime) -> PayoutStatement:
    from commissions.statements.pdf import render_statement_pdf

    statement = PayoutStatement(
        kind=kind,
        payee_id=figures.payee_id,
        payout=payout,
        currency=figures.currency,
        period_start=figures.start,
        period_end=figures.end,
        opening_minor=figures.opening,
        closing_minor=figures.closing,
        issued_at=now,
        **{f"{name}_minor": amount for name, amount in figures.figures.items()},
    )
    if settings.TOLLGATE_RENDER_DOCUMENTS:
        # Rendered before the insert: the row is append-only and is written once, with its document.
        statement.pdf = render_statement_pdf(statement, figures=figures)
        statement.sha256 = hashlib.sha256(statement.pdf).hexdigest()
    try:
        with transaction.atomic():
            statement.save(force_insert=True)
    except IntegrityError:  # issued by another worker meanwhile: theirs is the statement
        existing = _existing(kind=kind, figures=figures, payout=payout)
        if existing is None:
            raise
        return existing
    return statement


def _existing(*, kind: str, figures: StatementFigures, payout: Payout | None) -> PayoutStatement | None:
    if payout is not None:
        return PayoutStatement.objects.filter(payout=payout).first()
    return PayoutStatement.objects.filter(
        kind=kind, payee_id=figures.payee_id, currency=figures.currency, period_start=figures.start
    ).first()


def issue_payout_statement(*, payout_id: int, now: datetime) -> PayoutStatement | None:
    """The statement of one payout (once). None for a payout whose money never left (failed, not yet sent)."""
    # The file's pain.001 content (megabytes for a large run) is not needed here.
    payout = Payout.objects.select_related("sepa_file").defer("sepa_file__content").get(pk=payout_id)
    existing = PayoutStatement.objects.filter(payout=payout).first()
    if existing is not None:
        return existing
    if not payout_has_left(payout):
        return None
    posted = LedgerTransaction.objects.get(idempotency_key=f"payout:{payout.pk}").posted_at
    end = posted + JUST_AFTER
    previous_end = (
        PayoutStatement.objects.filter(
            payee_id=payout.payee_id, currency=payout.currency, kind=PayoutStatement.Kind.PAYOUT, period_end__lte=end
        )
        .order_by("-period_end")
        .values_list("period_end", flat=True)
        .first()
    )
    start = previous_end or first_activity(payout.payee_id, payout.currency) or posted
    figures = statement_figures(payee_id=payout.payee_id, currency=payout.currency, start=start, end=end)
    return _write(kind=PayoutStatement.Kind.PAYOUT, figures=figures, payout=payout, now=now)


def payout_has_left(payout: Payout) -> bool:
    if payout.status in (Payout.Status.PAID, Payout.Status.REVERSED):
        return True
    sepa_file = payout.sepa_file
    return (
        payout.status == Payout.Status.PROCESSING
        and sepa_file is not None
        and sepa_file.status in (SepaFile.Status.SENT, SepaFile.Status.CONFIRMED)
    )


def payouts_missing_statements() -> list[int]:
    """Payouts whose money has left and that have no statement yet (their task was lost)."""
    left = Q(status__in=[Payout.Status.PAID, Payout.Status.REVERSED]) | Q(
        status=Payout.Status.PROCESSING, sepa_file__status__in=[SepaFile.Status.SENT, SepaFile.Status.CONFIRMED]
    )
    return list(Payout.objects.filter(left, statement__isnull=True).order_by("pk").values_list("pk", flat=True))


def issue_month_statement(*, payee_id: int, currency: str, month: str, now: datetime) -> PayoutStatement | None:
    """The payee's statement of the month in the currency (once), or None when there is nothing to state (no
    balance at the start and no movement in the month)."""
    start, end = month_bounds(month)
    if end > now:
        raise ValueError(f"{month} has not ended yet.")
    existing = PayoutStatement.objects.filter(
        kind=PayoutStatement.Kind.MONTH, payee_id=payee_id, currency=currency, period_start=start
    ).first()
    if existing is not None:
        return existing
    figures = statement_figures(payee_id=payee_id, currency=currency, start=start, end=end)
    if not figures.has_activity:
        return None
    return _write(kind=PayoutStatement.Kind.MONTH, figures=figures, payout=None, now=now)


def month_statement_candidates(month: str) -> list[tuple[int, str]]:
    """(payee id, currency) of every payee balance account opened before the month ended."""
    _, end = month_bounds(month)
    rows = (
        Account.objects.filter(payee__isnull=False, created_at__lt=end)
        .values_list("payee_id", "currency")
        .distinct()
        .order_by("payee_id", "currency")
    )
    return list(rows)
