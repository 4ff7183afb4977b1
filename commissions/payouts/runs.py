"""Payout runs (DESIGN.md §10): the beat (per payee schedule) or a staff user starts a run; every eligible payee
gets one payout per currency, taken from its available balance under its row lock and posted to the ledger
at once (so a racing second run finds nothing left); above `TOLLGATE_PAYOUT_APPROVAL_THRESHOLD` a second
staff user approves before anything is sent; then each payout is paid by its method (`execute_payout`):
Stripe transfer now, SEPA through the run's pain.001 file (`commissions.payouts.sepa`), PayPal later.

A payee in debt (available < 0) is not paid: the debt is netted against its next sales. Payees left out of a
run are recorded with their reason (`payout.skipped` audit entries, and `run.skipped` on the returned run).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from stdnum import bic as stdnum_bic
from stdnum import iban as stdnum_iban
from stdnum.exceptions import ValidationError as StdnumValidationError

from commissions.models import Payee, Payout, PayoutRun
from commissions.models.payees import PayoutMethod, PayoutSchedule
from commissions.payouts.core import fail_payout, post_new_payout, send_payout
from core.audit import record_audit
from core.errors import DomainError, ErrorCode
from ledger.models import Account
from ledger.money import Money

PAYING_METHODS = {PayoutMethod.STRIPE_TRANSFER, PayoutMethod.SEPA_CREDIT_TRANSFER}
OPEN_STATUSES = (Payout.Status.CREATED, Payout.Status.PROCESSING)


class PayoutMethodNotAvailable(DomainError):
    code = ErrorCode.PROVIDER_NOT_AVAILABLE
    status = 409


@dataclass(frozen=True)
class Skipped:
    payee_id: int
    currency: str
    reason: str


def approval_threshold(currency: str) -> int:
    limits = getattr(settings, "TOLLGATE_PAYOUT_APPROVAL_THRESHOLD", {}) or {}
    return int(limits.get(currency, limits.get("default", 1000000)))


def bank_details_problem(*, iban: str, bic: str) -> str:
    """Why these bank details cannot receive a SEPA credit transfer ("" when they can)."""
    try:
        stdnum_iban.validate(iban or "")
    except StdnumValidationError:
        return "The IBAN is missing or not valid."
    if bic:
        try:
            stdnum_bic.validate(bic)
        except StdnumValidationError:
            return "The BIC is not valid."
    return ""


def ineligibility(payee: Payee, currency: str, available: int) -> str:
    """Why `payee` gets no payout of `available` in `currency` ("" when it does)."""
    if not payee.is_active:
        return "The payee is suspended."
    if payee.payouts_held:
        return f"Payouts are held: {payee.hold_reason}".strip().rstrip(":")
    if not payee.payout_method_verified:
        return "The payout method is not verified."
    if available < 0:
        return f"The payee is in debt ({Money(-available, currency)}); it is netted against the next sales."
    if available == 0:
        return "Nothing available."
    if available < payee.payout_minimum_minor:
        return f"Available {Money(available, currency)} is below the payee's minimum."
    if payee.payout_method == PayoutMethod.STRIPE_TRANSFER:
        if not payee.stripe_account_id or not payee.stripe_payouts_enabled:
            return "The Stripe account is missing or cannot receive payouts."
    elif payee.payout_method == PayoutMethod.SEPA_CREDIT_TRANSFER:
        if currency != "EUR":
            return "SEPA credit transfers are in EUR only."
        if not payee.bank_account_holder:
            return "The bank account holder is missing."
        return bank_details_problem(iban=payee.iban, bic=payee.bic)
    elif payee.payout_method == PayoutMethod.PAYPAL and not payee.paypal_email:
        return "The PayPal e-mail is missing."
    return ""


def _candidates(schedule: str, payee_ids=None) -> list[tuple[int, str]]:
    """(payee id, currency) of every payee's available account with a balance, in a fixed order (by payee,
    then currency) so that two runs lock payees in the same order."""
    rows = Account.objects.filter(code__startswith="payee:", code__endswith=":available", payee__isnull=False)
    if schedule:
        rows = rows.filter(payee__payout_schedule=schedule)
    if payee_ids is not None:
        rows = rows.filter(payee_id__in=payee_ids)
    return list(rows.order_by("payee_id", "currency").values_list("payee_id", "currency"))


def _take_payout(*, run: PayoutRun, payee_id: int, currency: str, now: datetime) -> Payout | Skipped | None:
    """Under the payee's lock: the whole available balance as one payout of this run, or why not."""
    from ledger import accounts
    from ledger.selectors import account_balance

    with transaction.atomic():
        payee = Payee.objects.select_for_update().get(pk=payee_id)
        available = account_balance(accounts.payee_available(payee_id), currency).amount_minor
        reason = ineligibility(payee, currency, available)
        if reason:
            return None if available == 0 else Skipped(payee_id, currency, reason)
        fields = {"run": run, "method": payee.payout_method}
        if payee.payout_method == PayoutMethod.SEPA_CREDIT_TRANSFER:
            fields |= {
                "bank_account_holder": payee.bank_account_holder,
                "iban": stdnum_iban.compact(payee.iban),
                "bic": stdnum_bic.compact(payee.bic) if payee.bic else "",
            }
        elif payee.payout_method == PayoutMethod.PAYPAL:
            fields["paypal_email"] = payee.paypal_email
        return post_new_payout(
            payee=payee, amount=Money(available, currency), now=now, actor_label=f"payout run {run.pk}", **fields
        )


def start_run(*, trigger: str, schedule: str = "", actor=None, now: datetime, payee_ids=None) -> PayoutRun:
    """Start a run for the payees on `schedule` ("" = every schedule, manual included: staff only)."""
    if trigger == PayoutRun.Trigger.SCHEDULE and schedule in ("", PayoutSchedule.MANUAL):
        raise DomainError("The beat runs weekly or monthly schedules only; manual payees are paid by staff.")
    if actor is not None and not actor.has_perm("commissions.start_payout_run"):
        raise DomainError("You may not start payout runs.", code=ErrorCode.PERMISSION_DENIED, status=403)
    run = PayoutRun.objects.create(
        trigger=trigger, schedule=schedule, status=PayoutRun.Status.APPROVED, created_by=actor, created_at=now
    )
    payouts: list[Payout] = []
    skipped: list[Skipped] = []
    for payee_id, currency in _candidates(schedule, payee_ids):
        result = _take_payout(run=run, payee_id=payee_id, currency=currency, now=now)
        if isinstance(result, Payout):
            payouts.append(result)
        elif result is not None:
            skipped.append(result)
            record_audit(
                action="payout.skipped",
                actor_label=f"payout run {run.pk}",
                object_type="commissions.payee",
                object_id=payee_id,
                currency=currency,
                outcome="failure",
                message=result.reason,
                metadata={"run": run.pk},
                now=now,
            )
    totals: dict[str, int] = {}
    for payout in payouts:
        totals[payout.currency] = totals.get(payout.currency, 0) + payout.amount_minor
    needs_approval = any(total > approval_threshold(currency) for currency, total in totals.items())
    with transaction.atomic():
        run = PayoutRun.objects.select_for_update().get(pk=run.pk)
        run.totals, run.payout_count = totals, len(payouts)
        if not payouts:
            run.status, run.completed_at = PayoutRun.Status.COMPLETED, now
        elif needs_approval:
            run.status = PayoutRun.Status.AWAITING_APPROVAL
        else:
            run.approved_at = now
        run.save(update_fields=["totals", "payout_count", "status", "completed_at", "approved_at"])
        record_audit(
            action="payout_run.start",
            actor=actor,
            actor_label="" if actor else "beat",
            obj=run,
            now=now,
            metadata={"totals": totals, "payouts": len(payouts), "skipped": len(skipped)},
        )
        if run.status == PayoutRun.Status.APPROVED:
            _release(run, now)
    run.skipped = skipped
    return run


def _release(run: PayoutRun, now: datetime) -> None:
    """The run may pay: its SEPA file is generated and its other payouts queued (after the commit)."""
    from commissions import tasks
    from commissions.payouts.sepa import generate_sepa_file

    if run.payouts.filter(method=PayoutMethod.SEPA_CREDIT_TRANSFER, status=Payout.Status.CREATED).exists():
        generate_sepa_file(run_id=run.pk, now=now)
    for payout_id in (
        run.payouts.filter(status=Payout.Status.CREATED)
        .exclude(method=PayoutMethod.SEPA_CREDIT_TRANSFER)
        .values_list("pk", flat=True)
    ):
        transaction.on_commit(lambda pk=payout_id: tasks.execute_payout.delay(payout_id=pk))


def _locked_for_decision(run_id: int, actor) -> PayoutRun:
    run = PayoutRun.objects.select_for_update().get(pk=run_id)
    if not actor.has_perm("commissions.approve_payout_run"):
        raise DomainError("You may not approve payout runs.", code=ErrorCode.PERMISSION_DENIED, status=403)
    if run.created_by_id is not None and run.created_by_id == actor.pk:
        raise DomainError(
            "A payout run must be approved by someone other than the person who started it.",
            code=ErrorCode.APPROVER_IS_REQUESTER,
            status=409,
        )
    if run.status != PayoutRun.Status.AWAITING_APPROVAL:
        raise DomainError(f"This run is {run.get_status_display().lower()}, not awaiting approval.", status=409)
    return run


def approve_run(*, run_id: int, actor, now: datetime) -> PayoutRun:
    with transaction.atomic():
        run = _locked_for_decision(run_id, actor)
        run.status, run.approved_by, run.approved_at = PayoutRun.Status.APPROVED, actor, now
        run.save(update_fields=["status", "approved_by", "approved_at"])
        record_audit(action="payout_run.approve", actor=actor, obj=run, now=now, metadata={"totals": run.totals})
        _release(run, now)
    return run


def reject_run(*, run_id: int, actor, reason: str, now: datetime) -> PayoutRun:
    """Nothing was sent: every payout's ledger posting is reversed (the money is available again)."""
    if not reason.strip():
        raise DomainError("Give a reason for rejecting the run.")
    with transaction.atomic():
        run = _locked_for_decision(run_id, actor)
        for payout_id in run.payouts.filter(status__in=OPEN_STATUSES).values_list("pk", flat=True):
            fail_payout(payout_id=payout_id, message=f"Run {run.pk} rejected: {reason}", now=now)
        run.status, run.approved_by, run.approved_at = PayoutRun.Status.REJECTED, actor, now
        run.rejection_reason, run.completed_at = reason, now
        run.save(update_fields=["status", "approved_by", "approved_at", "rejection_reason", "completed_at"])
        record_audit(action="payout_run.reject", actor=actor, obj=run, now=now, message=reason)
    return run


def start_scheduled_runs(*, now: datetime) -> list[int]:
    """Beat (daily): weekly payees on Mondays, monthly payees on the 1st; manual payees never."""
    from django.utils import timezone

    today = timezone.localdate(now)
    due = []
    if today.weekday() == 0:
        due.append(PayoutSchedule.WEEKLY)
    if today.day == 1:
        due.append(PayoutSchedule.MONTHLY)
    return [start_run(trigger=PayoutRun.Trigger.SCHEDULE, schedule=schedule, now=now).pk for schedule in due]


def execute_payout(*, payout_id: int, now: datetime) -> Payout:
    """Pay one payout of an approved run by its method. Safe to run again after a crash at any point: the
    Stripe transfer's idempotency key is the payout's, and a retry looks the transfer up before sending."""
    payout = Payout.objects.select_related("run").get(pk=payout_id)
    if payout.run_id is not None and payout.run.status != PayoutRun.Status.APPROVED:
        return payout  # awaiting approval or rejected: nothing moves
    if payout.status not in OPEN_STATUSES:
        # Paid (or failed) already: a worker may have died between recording it and completing the run.
        complete_run_if_done(payout.run_id, now)
        return payout
    if payout.method == PayoutMethod.STRIPE_TRANSFER:
        payout = send_payout(payout_id=payout.pk, now=now)
    elif payout.method == PayoutMethod.PAYPAL:
        raise PayoutMethodNotAvailable("PayPal payouts are not available yet; the payout stays created.")
    # SEPA: nothing to send here; the run's pain.001 file carries it (commissions.payouts.sepa).
    complete_run_if_done(payout.run_id, now)
    return payout


def complete_run_if_done(run_id: int | None, now: datetime) -> None:
    if run_id is None:
        return
    with transaction.atomic():
        run = PayoutRun.objects.select_for_update().get(pk=run_id)
        if run.status == PayoutRun.Status.APPROVED and not run.payouts.filter(status__in=OPEN_STATUSES).exists():
            run.status, run.completed_at = PayoutRun.Status.COMPLETED, now
            run.save(update_fields=["status", "completed_at"])


def retry_open_payouts(*, run_id: int) -> int:
    """Queue again the payouts of an approved run that are not finished (a provider outage outlasted the
    task's retries); SEPA payouts wait for their file and are left alone."""
    from commissions import tasks

    run = PayoutRun.objects.get(pk=run_id)
    if run.status != PayoutRun.Status.APPROVED:
        return 0
    ids = list(
        run.payouts.filter(status__in=OPEN_STATUSES)
        .exclude(method=PayoutMethod.SEPA_CREDIT_TRANSFER)
        .values_list("pk", flat=True)
    )
    for payout_id in ids:
        transaction.on_commit(lambda pk=payout_id: tasks.execute_payout.delay(payout_id=pk))
    return len(ids)
