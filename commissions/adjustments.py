"""Staff adjustments of a payee's balance: a credit or a debit of `payee:<id>:available`, with a reason.

The other side is `platform:payee_adjustments` (an expense): a credit to the payee costs the platform, a debit
recovers it. A debit may take `available` below zero: that is a debt, netted against the payee's next payout
(as a refund after a payout is). Each adjustment is one ledger transaction of kind `payee_adjustment` (the
payee's statement counts it under "Adjustments" and shows the reason, the transaction's memo, to the payee),
posted once per one-time token (`payee_adjustment:<payee id>:<token>`: the admin form carries a fresh token,
so a double submit posts once), under the payee row lock (as payout runs take it), and audited.
"""

from __future__ import annotations

import re
from datetime import datetime

from django.db import transaction

from commissions.models import Payee
from core.audit import record_audit
from core.errors import DomainError, ErrorCode
from ledger import accounts
from ledger.models import LedgerTransaction
from ledger.money import MAX_AMOUNT_MINOR, CurrencyError, Money, exponent
from ledger.services import credit, debit, post_transaction

PERMISSION = "commissions.adjust_payee_balance"
KIND = "payee_adjustment"
REASON_MAX_LENGTH = 300  # LedgerTransaction.memo
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class AdjustmentNotAllowed(DomainError):
    code = ErrorCode.PERMISSION_DENIED
    status = 403
    default_message = "You may not adjust payee balances."


class AdjustmentInvalid(DomainError):
    code = ErrorCode.VALIDATION_ERROR
    default_message = "The adjustment is not valid."


class AdjustmentCurrencyInvalid(DomainError):
    code = ErrorCode.CURRENCY_NOT_ENABLED
    default_message = "The ledger does not accept this currency."


class AdjustmentTooLarge(DomainError):
    code = ErrorCode.AMOUNT_TOO_LARGE
    default_message = "The amount is too large."


def _field_error(field: str, code: str, message: str) -> dict:
    return {field: [{"code": code, "message": message}]}


def _check(*, amount: Money, reason: str | None, actor, token: str) -> str:
    """Refuse what may not be posted; returns the cleaned reason."""
    if actor is None or not getattr(actor, "is_authenticated", False) or not actor.has_perm(PERMISSION):
        raise AdjustmentNotAllowed()
    reason = (reason or "").strip()
    if not reason:
        raise AdjustmentInvalid(
            "Give a reason: the payee sees it on the statement, and it is audited.",
            fields=_field_error("reason", "required", "A reason is required."),
        )
    if len(reason) > REASON_MAX_LENGTH:
        raise AdjustmentInvalid(
            f"The reason is longer than {REASON_MAX_LENGTH} characters.",
            fields=_field_error("reason", "max_length", f"At most {REASON_MAX_LENGTH} characters."),
        )
    if not isinstance(amount, Money) or type(amount.amount_minor) is not int:
        raise AdjustmentInvalid(
            "The amount must be Money (integer minor units and a currency).",
            fields=_field_error("amount", "invalid", "Not an amount."),
        )
    try:
        exponent(amount.currency)  # what Money itself validates: an ISO 4217 code the ledger knows
    except (CurrencyError, TypeError):
        raise AdjustmentCurrencyInvalid(
            f"{amount.currency!r} is not a currency the ledger accepts.",
            fields=_field_error("currency", "invalid", "Unknown currency."),
        ) from None
    if amount.amount_minor == 0:
        raise AdjustmentInvalid(
            "The amount must not be zero: a positive amount credits the payee, a negative one debits it.",
            fields=_field_error("amount", "zero", "Must not be zero."),
        )
    if abs(amount.amount_minor) > MAX_AMOUNT_MINOR:
        raise AdjustmentTooLarge(fields=_field_error("amount", "too_large", "Too large."))
    if not isinstance(token, str) or not TOKEN_PATTERN.match(token):
        raise AdjustmentInvalid(
            "The adjustment needs a one-time token (1-64 letters, digits, '-' or '_').",
            fields=_field_error("token", "invalid", "Missing or not valid."),
        )
    return reason


def adjustment_key(payee_id: int, token: str) -> str:
    return f"payee_adjustment:{payee_id}:{token}"


def already_posted(payee: Payee, token: str) -> bool:
    """Whether the adjustment with this one-time token was posted (a resubmitted form)."""
    return LedgerTransaction.objects.filter(idempotency_key=adjustment_key(payee.pk, token)).exists()


def adjust_payee_balance(
    *,
    payee: Payee,
    amount: Money,
    reason: str,
    actor,
    now: datetime,
    token: str,
    request=None,
) -> LedgerTransaction:
    """Credit (`amount` > 0) or debit (`amount` < 0) the payee's available balance in `amount.currency`.

    Refused (DomainError, nothing written) without the `commissions.adjust_payee_balance` permission, a reason
    (at most 300 characters), a non-zero amount or a currency the ledger accepts. The same `token` again returns
    the first transaction and writes nothing (another amount under it raises `LedgerConflict`)."""
    reason = _check(amount=amount, reason=reason, actor=actor, token=token)
    magnitude = Money(abs(amount.amount_minor), amount.currency)
    available = accounts.payee_available(payee.pk)
    if amount.amount_minor > 0:
        entries = [debit(accounts.PLATFORM_PAYEE_ADJUSTMENTS, magnitude), credit(available, magnitude)]
    else:
        entries = [debit(available, magnitude), credit(accounts.PLATFORM_PAYEE_ADJUSTMENTS, magnitude)]
    key = adjustment_key(payee.pk, token)
    with transaction.atomic():
        # Serialized with payout runs (they read `available` under this lock) and with a double submit.
        payee = Payee.objects.select_for_update().get(pk=payee.pk)
        replay = LedgerTransaction.objects.filter(idempotency_key=key).exists()
        posted = post_transaction(
            idempotency_key=key,
            kind=KIND,
            entries=entries,
            occurred_at=now,
            memo=reason,
            metadata={"payee": payee.pk, "reason": reason, "actor": actor.pk},
        )
        if not replay:
            record_audit(
                action="payee.balance_adjusted",
                actor=actor,
                obj=payee,
                request=request,
                amount_minor=amount.amount_minor,
                currency=amount.currency,
                idempotency_key=key,
                message=reason,
                metadata={"ledger_transaction": str(posted.pk)},
                now=now,
            )
    return posted


__all__ = [
    "AdjustmentCurrencyInvalid",
    "AdjustmentInvalid",
    "AdjustmentNotAllowed",
    "AdjustmentTooLarge",
    "adjust_payee_balance",
    "adjustment_key",
    "already_posted",
]
