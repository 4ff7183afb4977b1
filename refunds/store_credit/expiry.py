"""Store credit expiry (liability released to breakage), the buyer's list of codes by e-mail, and totals."""

from __future__ import annotations

import logging
from datetime import datetime

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Sum
from django.template.loader import render_to_string

from core.audit import record_audit
from ledger import accounts
from ledger.money import Money
from ledger.services import credit, debit, post_transaction
from refunds.models import (
    ReservationStatus,
    StoreCredit,
    StoreCreditStatus,
)

logger = logging.getLogger(__name__)


def expire_store_credits(*, now: datetime) -> int:
    """Credits past their expiry with something left: status expired, the rest released from the liability
    to breakage income. Safe to run twice. Returns how many expired."""
    expired = 0
    # A credit applied to an open checkout waits until that reservation is spent or released (next run).
    due = (
        StoreCredit.objects.filter(status=StoreCreditStatus.ACTIVE, expires_at__lte=now)
        .exclude(reservations__status=ReservationStatus.RESERVED)
        .values_list("pk", flat=True)
    )
    for credit_id in list(due):
        with transaction.atomic():
            store_credit = StoreCredit.objects.select_for_update().get(pk=credit_id)
            if store_credit.status != StoreCreditStatus.ACTIVE or store_credit.expires_at > now:
                continue
            if store_credit.reservations.filter(status=ReservationStatus.RESERVED).exists():
                continue
            left = Money(store_credit.remaining_minor, store_credit.currency)
            post_transaction(
                idempotency_key=f"store_credit_expiry:{store_credit.pk}",
                kind="store_credit_expiry",
                entries=[
                    debit(accounts.BUYERS_STORE_CREDIT, left),
                    credit(accounts.PLATFORM_STORE_CREDIT_BREAKAGE, left),
                ],
                occurred_at=now,
                memo=f"Store credit {store_credit.pk} expired unspent",
                metadata={"store_credit": store_credit.pk},
            )
            store_credit.expired_minor = left.amount_minor
            store_credit.remaining_minor = 0
            store_credit.status = StoreCreditStatus.EXPIRED
            store_credit.save(update_fields=["expired_minor", "remaining_minor", "status", "updated_at"])
            record_audit(
                action="store_credit.expired",
                actor_label="system",
                obj=store_credit,
                amount_minor=left.amount_minor,
                currency=left.currency,
                now=now,
            )
            expired += 1
    return expired


# --- reads -------------------------------------------------------------------------------------------------------


LIST_EMAIL_INTERVAL = 600  # seconds: one list e-mail per address per 10 minutes, however often it is asked


def email_credits_to(*, email: str, now: datetime) -> bool:
    """E-mail the buyer the codes of their active credits (the e-mail is enough, there are no buyer accounts).
    Sends nothing when the address has none, and at most one per address per interval: the page that calls
    this answers the same either way, so it tells nobody who has credit."""
    from django.core.cache import cache

    credits = list(
        StoreCredit.objects.filter(
            buyer_email__iexact=email.strip(), status=StoreCreditStatus.ACTIVE, expires_at__gt=now
        ).order_by("expires_at", "pk")
    )
    if not credits or not cache.add(f"store-credit-list:{email.strip().lower()}", 1, timeout=LIST_EMAIL_INTERVAL):
        return False
    context = {
        "credits": credits,
        "platform_name": settings.TOLLGATE_PLATFORM_NAME,
        "base_url": settings.PUBLIC_BASE_URL,
    }
    send_mail(
        subject=f"Your store credit — {settings.TOLLGATE_PLATFORM_NAME}",
        message=render_to_string("emails/store_credit_list.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[credits[0].buyer_email],
    )
    return True


def outstanding_minor(currency: str) -> int:
    """What buyers can still spend in `currency`: equals the balance of `buyers:store_credit`."""
    return StoreCredit.objects.filter(currency=currency).aggregate(s=Sum("remaining_minor"))["s"] or 0
