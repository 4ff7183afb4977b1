"""Store credit: codes, issuing (from a refund, goodwill) and the e-mail to the buyer."""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string

from core.audit import record_audit
from core.errors import DomainError, ErrorCode
from ledger import accounts
from ledger.money import Money, format_money
from ledger.services import credit, debit, post_transaction
from refunds.models import (
    Refund,
    StoreCredit,
)

logger = logging.getLogger(__name__)

PROVIDER = "store_credit"
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"  # no 0/O, 1/I/L
CODE_LENGTH = 12
CODE_GROUP = 4
DEFAULT_VALIDITY = timedelta(days=365)


# --- codes -----------------------------------------------------------------------------------------------


def generate_code() -> str:
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return "-".join(raw[i : i + CODE_GROUP] for i in range(0, CODE_LENGTH, CODE_GROUP))


def normalize_code(text: str) -> str:
    """What the buyer typed -> the stored form: case, spaces and dashes do not matter ("abcd efgh-jkmn")."""
    raw = "".join(ch for ch in str(text or "").upper() if ch.isalnum())
    if len(raw) != CODE_LENGTH:
        return raw
    return "-".join(raw[i : i + CODE_GROUP] for i in range(0, CODE_LENGTH, CODE_GROUP))


def _new_credit(**fields) -> StoreCredit:
    for _ in range(5):
        code = generate_code()
        if not StoreCredit.objects.filter(code=code).exists():
            return StoreCredit.objects.create(code=code, **fields)
    raise RuntimeError("could not draw an unused store credit code")  # pragma: no cover - 31^12 codes


def _validity(refund: Refund | None) -> timedelta:
    """The refund's policy says how long its credit lasts (`store_credit_validity_days`), else the setting."""
    policy = getattr(refund, "policy", None) if refund is not None else None
    days = getattr(policy, "store_credit_validity_days", None)
    if isinstance(days, timedelta):
        return days
    if isinstance(days, int) and days > 0:
        return timedelta(days=days)
    return getattr(settings, "TOLLGATE_STORE_CREDIT_VALIDITY", DEFAULT_VALIDITY)


def _queue_email(credit_id: int) -> None:
    from refunds.tasks import send_store_credit_email

    transaction.on_commit(lambda: send_store_credit_email.delay(credit_id=credit_id))


# --- issuing -----------------------------------------------------------------------------------------------


def create_store_credit_for_refund(*, refund: Refund, now: datetime, amount_minor: int | None = None) -> StoreCredit:
    """The credit a refund gives back, once per refund (`source_refund` is unique). Posts nothing: the refund
    flow has credited `buyers:store_credit` with the same amount. The buyer is e-mailed the code."""
    amount = refund.amount_minor if amount_minor is None else amount_minor
    with transaction.atomic():
        Refund.objects.select_for_update().filter(pk=refund.pk).first()  # one credit per refund, also concurrently
        existing = StoreCredit.objects.filter(source_refund=refund).first()
        if existing is not None:
            return existing
        order = refund.order
        store_credit = _new_credit(
            buyer_email=order.buyer_email,
            currency=refund.currency,
            amount_minor=amount,
            remaining_minor=amount,
            expires_at=now + _validity(refund),
            source_refund=refund,
            created_at=now,
        )
        record_audit(
            action="store_credit.issued",
            actor_label="system",
            obj=store_credit,
            amount_minor=amount,
            currency=refund.currency,
            message=f"refund {refund.pk} of order {order.token}",
            now=now,
        )
        _queue_email(store_credit.pk)
    return store_credit


def issue_goodwill_credit(
    *,
    buyer_email: str,
    amount: Money,
    expires_at: datetime,
    actor,
    reason: str,
    now: datetime,
    request=None,
) -> StoreCredit:
    """Staff give a buyer credit the platform pays for (debit `platform:goodwill`). Audited, e-mailed."""
    if amount.amount_minor <= 0:
        raise DomainError("The amount must be greater than zero.", code=ErrorCode.AMOUNT_NOT_POSITIVE)
    if expires_at <= now:
        raise DomainError("The expiry must be in the future.", code=ErrorCode.VALIDATION_ERROR)
    if not reason.strip():
        raise DomainError("Say why the credit is given.", code=ErrorCode.VALIDATION_ERROR)
    with transaction.atomic():
        store_credit = _new_credit(
            buyer_email=buyer_email,
            currency=amount.currency,
            amount_minor=amount.amount_minor,
            remaining_minor=amount.amount_minor,
            expires_at=expires_at,
            issued_by=actor if getattr(actor, "is_authenticated", False) else None,
            reason=reason.strip()[:300],
            created_at=now,
        )
        post_transaction(
            idempotency_key=f"store_credit_goodwill:{store_credit.pk}",
            kind="store_credit_goodwill",
            entries=[debit(accounts.PLATFORM_GOODWILL, amount), credit(accounts.BUYERS_STORE_CREDIT, amount)],
            occurred_at=now,
            memo=f"Goodwill store credit {store_credit.pk} for {buyer_email}",
            metadata={"store_credit": store_credit.pk},
        )
        record_audit(
            action="store_credit.goodwill",
            actor=actor,
            obj=store_credit,
            request=request,
            amount_minor=amount.amount_minor,
            currency=amount.currency,
            message=reason,
            now=now,
        )
        _queue_email(store_credit.pk)
    return store_credit


def send_store_credit_email(*, credit_id: int, now: datetime) -> bool:
    """E-mail the buyer the code, amount, expiry and how to use it. At most once (claimed first)."""
    claimed = StoreCredit.objects.filter(pk=credit_id, notified_at__isnull=True).update(notified_at=now)
    if not claimed:
        return False
    store_credit = StoreCredit.objects.select_related("source_refund__order").get(pk=credit_id)
    context = {
        "credit": store_credit,
        "amount": format_money(store_credit.amount_minor, store_credit.currency),
        "order": store_credit.source_refund.order if store_credit.source_refund_id else None,
        "platform_name": settings.TOLLGATE_PLATFORM_NAME,
        "base_url": settings.PUBLIC_BASE_URL,
    }
    send_mail(
        subject=f"Your store credit of {context['amount']} — {settings.TOLLGATE_PLATFORM_NAME}",
        message=render_to_string("emails/store_credit_issued.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[store_credit.buyer_email],
    )
    return True


# --- spending ------------------------------------------------------------------------------------------------
