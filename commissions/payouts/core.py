"""Paying payees. First cut: one payout at a time by Stripe Connect transfer (payout runs, schedules,
approval and SEPA files come with the payouts work, on top of these functions).

Ledger: created -> `payee:<id>:available` to `payouts:in_transit` (`payout:<id>`); the provider has it ->
`payouts:in_transit` to `provider:stripe:clearing` (`payout_paid:<id>`); failed before sending -> back to
available (`reversal:<payout tx>`); reversed later at the provider -> clearing back to available, once per
reversal (`payout_reversal:<reversal id>`). Every provider call's idempotency key comes from the payout row.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction

from commissions.models import Payee, Payout
from core.audit import record_audit
from core.errors import DomainError, ErrorCode
from ledger import accounts
from ledger.models import LedgerTransaction
from ledger.money import Money
from ledger.selectors import account_balance
from ledger.services import credit, debit, post_transaction, reverse_transaction
from payments.providers.base import ProviderOutcomeUnknown, ProviderRequestRejected, ProviderTransferState

PROVIDER = "stripe"


def create_payout(*, payee: Payee, amount: Money, now: datetime, actor=None, actor_label: str = "") -> Payout:
    if amount.amount_minor <= 0:
        raise DomainError("A payout must be greater than zero.", code=ErrorCode.AMOUNT_NOT_POSITIVE)
    if not payee.stripe_account_id:
        raise DomainError("The payee has no Stripe account to pay to.", code=ErrorCode.REFUND_NOT_ALLOWED, status=409)
    with transaction.atomic():
        Payee.objects.select_for_update().get(pk=payee.pk)
        # Under the payee's lock, so two payouts cannot both spend the same balance (I5).
        available = account_balance(accounts.payee_available(payee.pk), amount.currency).amount_minor
        if amount.amount_minor > available:
            raise DomainError(
                f"The payee has {Money(max(available, 0), amount.currency)} available; a payout cannot be more.",
                code=ErrorCode.INSUFFICIENT_FUNDS,
                status=409,
            )
        payout = post_new_payout(payee=payee, amount=amount, now=now, actor=actor, actor_label=actor_label)
    return payout


def post_new_payout(
    *, payee: Payee, amount: Money, now: datetime, actor=None, actor_label: str = "", **fields
) -> Payout:
    """Insert the payout row and move its amount from the payee's available balance to in transit. The caller
    holds the payee's row lock and has checked the amount against the balance; `fields` are the row's
    other columns (run, method, the destination snapshot)."""
    payout = Payout.objects.create(
        payee=payee, amount_minor=amount.amount_minor, currency=amount.currency, created_at=now, **fields
    )
    post_transaction(
        idempotency_key=f"payout:{payout.pk}",
        kind="payout",
        entries=[debit(accounts.payee_available(payee.pk), amount), credit(accounts.PAYOUTS_IN_TRANSIT, amount)],
        occurred_at=now,
        memo=f"Payout {payout.pk} to payee {payee.pk}",
        metadata={"payout": payout.pk, **({"run": fields["run"].pk} if fields.get("run") else {})},
    )
    record_audit(
        action="payout.create",
        actor=actor,
        actor_label=actor_label,
        obj=payout,
        now=now,
        amount_minor=amount.amount_minor,
        currency=amount.currency,
    )
    return payout


def send_payout(*, payout_id: int, now: datetime) -> Payout:
    """Transfer the payout at the provider. Safe to call again after any failure: the transfer's idempotency
    key is the payout's id, and a retry looks the transfer up before creating one."""
    from payments.providers.registry import get_provider

    with transaction.atomic():
        payout = Payout.objects.select_for_update().select_related("payee").get(pk=payout_id)
        if payout.status not in (Payout.Status.CREATED, Payout.Status.PROCESSING):
            return payout
        Payout.objects.filter(pk=payout.pk).update(status=Payout.Status.PROCESSING, attempts=payout.attempts + 1)
    payout.refresh_from_db()
    try:
        result = get_provider(PROVIDER).transfer(payout=payout)
    except ProviderRequestRejected as exc:
        return fail_payout(payout_id=payout.pk, message=str(exc), now=now)
    except ProviderOutcomeUnknown:
        raise  # stays processing; the task retries and the lookup finds a transfer that did happen
    return confirm_payout(payout_id=payout.pk, provider_ref=result.provider_ref, now=now)


def confirm_payout(*, payout_id: int, provider_ref: str, now: datetime) -> Payout:
    with transaction.atomic():
        payout = Payout.objects.select_for_update().get(pk=payout_id)
        if payout.status in (Payout.Status.PAID, Payout.Status.REVERSED):
            return payout
        if payout.status == Payout.Status.FAILED:
            raise DomainError(f"Payout {payout.pk} failed but the provider reports transfer {provider_ref}.")
        amount = Money(payout.amount_minor, payout.currency)
        post_transaction(
            idempotency_key=f"payout_paid:{payout.pk}",
            kind="payout_paid",
            entries=[debit(accounts.PAYOUTS_IN_TRANSIT, amount), credit(accounts.provider_clearing(PROVIDER), amount)],
            occurred_at=now,
            memo=f"Payout {payout.pk} transferred ({provider_ref})",
            metadata={"payout": payout.pk},
        )
        Payout.objects.filter(pk=payout.pk).update(status=Payout.Status.PAID, provider_ref=provider_ref, paid_at=now)
        queue_payout_statement(payout.pk)
    payout.refresh_from_db()
    return payout


def queue_payout_statement(payout_id: int) -> None:
    """The payout's money has left: its statement is issued and e-mailed once this commits."""
    from commissions.statements.tasks import issue_payout_statement

    transaction.on_commit(lambda: issue_payout_statement.delay(payout_id=payout_id), robust=True)


def fail_payout(*, payout_id: int, message: str, now: datetime) -> Payout:
    """The provider refused the transfer: the money goes back to the payee's available balance."""
    with transaction.atomic():
        payout = Payout.objects.select_for_update().get(pk=payout_id)
        if payout.status in (Payout.Status.PAID, Payout.Status.FAILED, Payout.Status.REVERSED):
            return payout
        original = LedgerTransaction.objects.get(idempotency_key=f"payout:{payout.pk}")
        reverse_transaction(original=original, occurred_at=now, memo=f"Payout {payout.pk} failed: {message}"[:300])
        Payout.objects.filter(pk=payout.pk).update(status=Payout.Status.FAILED, failure_message=message[:300])
        record_audit(
            action="payout.failed",
            actor_label="system",
            obj=payout,
            outcome="failure",
            message=message,
            amount_minor=payout.amount_minor,
            currency=payout.currency,
            now=now,
        )
    payout.refresh_from_db()
    return payout


def apply_transfer_state(*, state: ProviderTransferState, now: datetime) -> bool:
    """transfer.created/updated/reversed: confirm the payout, and put each reversal's money back in
    `available` once (keyed by the reversal's id, so every delivery order posts the same). False if the
    transfer is not ours."""
    payout = None
    if state.our_payout_id is not None:
        payout = Payout.objects.filter(pk=state.our_payout_id).first()
    if payout is None:
        payout = Payout.objects.filter(provider_ref=state.provider_ref).first()
    if payout is None:
        return False
    payout = confirm_payout(payout_id=payout.pk, provider_ref=state.provider_ref, now=now)
    for reversal_ref, amount in state.reversals:
        apply_transfer_reversal(payout_id=payout.pk, reversal_ref=reversal_ref, amount=amount, now=now)
    return True


def apply_transfer_reversal(*, payout_id: int, reversal_ref: str, amount: Money, now: datetime) -> Payout:
    with transaction.atomic():
        payout = Payout.objects.select_for_update().get(pk=payout_id)
        key = f"payout_reversal:{reversal_ref}"
        if not LedgerTransaction.objects.filter(idempotency_key=key).exists():
            post_transaction(
                idempotency_key=key,
                kind="payout_reversal",
                entries=[
                    debit(accounts.provider_clearing(PROVIDER), amount),
                    credit(accounts.payee_available(payout.payee_id), amount),
                ],
                occurred_at=now,
                memo=f"Transfer {payout.provider_ref} reversed ({reversal_ref})",
                metadata={"payout": payout.pk},
            )
            reversed_total = payout.reversed_minor + amount.amount_minor
            status = Payout.Status.REVERSED if reversed_total >= payout.amount_minor else payout.status
            Payout.objects.filter(pk=payout.pk).update(reversed_minor=reversed_total, status=status)
    payout.refresh_from_db()
    return payout


def reverse_payout(*, payout_id: int, amount: Money, now: datetime, actor=None) -> Payout:
    """Pull (part of) a paid payout back from the payee's connected account."""
    from payments.providers.registry import get_provider

    payout = Payout.objects.select_related("payee").get(pk=payout_id)
    if payout.status != Payout.Status.PAID or amount.amount_minor > payout.amount_minor - payout.reversed_minor:
        raise DomainError(
            "Only a paid payout can be reversed, by at most what is left of it.",
            code=ErrorCode.REFUND_EXCEEDS_CAPTURED,
            status=409,
        )
    result = get_provider(PROVIDER).reverse_transfer(payout=payout, amount=amount)
    payout = apply_transfer_reversal(
        payout_id=payout.pk, reversal_ref=result.provider_ref, amount=result.amount, now=now
    )
    record_audit(
        action="payout.reverse",
        actor=actor,
        obj=payout,
        amount_minor=amount.amount_minor,
        currency=amount.currency,
        now=now,
    )
    return payout
