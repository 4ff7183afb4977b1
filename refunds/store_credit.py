"""Store credit: issued with a code and an expiry, spent at checkout through the `store_credit` provider,
released to breakage when it expires (DESIGN.md §8).

Decisions:
- Codes are bearer instruments, like gift cards: whoever holds the code may spend it, whatever e-mail the
  order carries (a buyer may pay for a friend's ticket). A code is 12 characters from a 31-letter alphabet
  without look-alikes (0/O, 1/I/L), about 59 bits from `secrets`: it cannot be guessed, and the checkout's
  POSTs are rate-limited per IP on top.
- One code pays one whole order (any number of orders while something is left). A code that covers only part
  of an order is refused with a plain message: an order has one settling payment (the constraint
  `payment_one_settling_payment_per_order`), so a split payment needs its own design (later).
- Refunding an order paid with credit gives back credit: a new code for the refunded amount (the old one may
  have expired or be spent meanwhile), e-mailed like any other.

Ledger (each one `post_transaction`; `buyers:store_credit` always equals the sum of `remaining_minor`):
- issue from a refund: posted by the refund flow (credit `buyers:store_credit` instead of the provider);
- goodwill `store_credit_goodwill:<credit id>`: debit `platform:goodwill`, credit `buyers:store_credit`;
- spend `store_credit_spend:<spend id>`: debit `buyers:store_credit`, credit `provider:store_credit:clearing`
  (next to the usual capture `capture:payment:<id>`, which debits that clearing account);
- refund of a credit payment `store_credit_refund:<refund id>`: debit `provider:store_credit:clearing`,
  credit `buyers:store_credit` (next to the usual `refund:<id>`, which credits that clearing account);
- expiry `store_credit_expiry:<credit id>`: debit `buyers:store_credit`, credit `platform:store_credit_breakage`.

Lock order: the order row, then the credit row, then the payment row, then ledger accounts by id.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Sum
from django.template.loader import render_to_string

from core.audit import record_audit
from core.errors import DomainError, ErrorCode
from ledger import accounts
from ledger.models import Account
from ledger.money import Money, format_money
from ledger.services import credit, debit, post_transaction
from payments.models import CaptureMethod, Order, OrderStatus, Payment
from payments.providers.base import ProviderPaymentState
from refunds.models import Refund, StoreCredit, StoreCreditSpend, StoreCreditStatus

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


class StoreCreditRefused(DomainError):
    code = ErrorCode.STORE_CREDIT_INVALID
    status = 400


def _check_spendable(store_credit: StoreCredit | None, order: Order, now: datetime) -> None:
    if store_credit is None:
        raise StoreCreditRefused("We do not know this code. Check it and try again (it looks like ABCD-EFGH-JKMN).")
    if store_credit.status == StoreCreditStatus.SPENT:
        raise StoreCreditRefused("This code has already been used up.")
    if store_credit.status == StoreCreditStatus.EXPIRED or store_credit.expires_at <= now:
        raise StoreCreditRefused(f"This code expired on {store_credit.expires_at:%-d %b %Y}.")
    if store_credit.currency != order.currency:
        raise StoreCreditRefused(
            f"This code is in {store_credit.currency} and this order is in {order.currency}: it can only pay "
            f"orders in {store_credit.currency}."
        )
    if store_credit.remaining_minor < order.total_minor:
        left = format_money(store_credit.remaining_minor, store_credit.currency)
        due = format_money(order.total_minor, order.currency)
        raise StoreCreditRefused(
            f"This code covers {left} of the {due} due. Paying part of an order with store credit is not "
            "available yet: choose another way to pay, or use the code on an order it covers in full.",
            code=ErrorCode.STORE_CREDIT_INSUFFICIENT,
        )


def _lock_ruled_accounts(order: Order) -> None:
    """Take the balance-checked accounts both postings touch (payees' pending, buyers' store credit) in one
    go in id order, as a single posting would: two postings in one transaction would otherwise lock them in
    two steps, out of the global order."""
    codes = [accounts.BUYERS_STORE_CREDIT.code]
    codes += [accounts.payee_pending(pid).code for pid in order.lines.values_list("payee_id", flat=True)]
    list(
        Account.objects.select_for_update()
        .filter(code__in=codes, currency=order.currency)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def pay_with_store_credit(*, order: Order, code: str, now: datetime, request=None) -> Payment:
    """Pay the whole order with a store credit code: a `store_credit` payment that succeeds at once through the
    normal fulfilment path (capture posting), plus the spend posting, all in one transaction under the credit's
    row lock (two checkouts with one code: the second sees what the first left)."""
    from payments.providers.registry import checkout_providers
    from payments.services.fulfilment import apply_payment_state
    from payments.services.orders import expire_order, has_authorized_payment

    if PROVIDER not in {p.name for p in checkout_providers(order)}:
        raise DomainError("Store credit cannot pay this order.", code=ErrorCode.PROVIDER_NOT_AVAILABLE)
    if order.capture_method == CaptureMethod.MANUAL:
        raise DomainError(
            "This order is only to be authorized now and charged later: store credit cannot do that.",
            code=ErrorCode.CAPTURE_NOT_AVAILABLE,
        )
    if order.status == OrderStatus.OPEN and order.expires_at <= now:
        expire_order(order=order, now=now)
        order.refresh_from_db()
    normalized = normalize_code(code)
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        if locked.status != OrderStatus.OPEN:
            error = ErrorCode.ORDER_EXPIRED if locked.status == OrderStatus.EXPIRED else ErrorCode.ORDER_NOT_OPEN
            raise DomainError(f"This order is {locked.get_status_display().lower()}.", code=error, status=409)
        if has_authorized_payment(locked):
            raise DomainError(
                "A payment for this order is already authorized; the seller will charge it.",
                code=ErrorCode.PAYMENT_AUTHORIZED,
                status=409,
            )
        store_credit = StoreCredit.objects.select_for_update().filter(code=normalized).first()
        _check_spendable(store_credit, locked, now)
        amount = Money(locked.total_minor, locked.currency)
        payment = Payment.objects.create(
            order=locked,
            provider=PROVIDER,
            amount_minor=amount.amount_minor,
            currency=amount.currency,
            created_at=now,
            status_changed_at=now,
        )
        spend = StoreCreditSpend.objects.create(
            credit=store_credit, payment=payment, amount_minor=amount.amount_minor, created_at=now
        )
        provider_ref = f"spend_{spend.pk}"
        Payment.objects.filter(pk=payment.pk).update(provider_ref=provider_ref)
        store_credit.remaining_minor -= amount.amount_minor
        if store_credit.remaining_minor == 0:
            store_credit.status = StoreCreditStatus.SPENT
        store_credit.save(update_fields=["remaining_minor", "status", "updated_at"])

        _lock_ruled_accounts(locked)
        post_transaction(
            idempotency_key=f"store_credit_spend:{spend.pk}",
            kind="store_credit_spend",
            entries=[debit(accounts.BUYERS_STORE_CREDIT, amount), credit(accounts.provider_clearing(PROVIDER), amount)],
            occurred_at=now,
            memo=f"Store credit {store_credit.pk} pays order {locked.token}",
            metadata={"store_credit": store_credit.pk, "payment": payment.pk, "order": str(locked.token)},
        )
        apply_payment_state(
            payment_id=payment.pk,
            state=ProviderPaymentState(
                provider_ref=provider_ref, status="succeeded", amount=amount, captured=amount, raw_status="spent"
            ),
            now=now,
            source="checkout",
        )
        locked.refresh_from_db()
        if locked.status != OrderStatus.PAID:  # pragma: no cover - checked above under the same lock
            raise DomainError("The order could not be paid with this code.", code=ErrorCode.ORDER_NOT_OPEN, status=409)
        record_audit(
            action="store_credit.spent",
            actor_label="buyer:checkout",
            obj=store_credit,
            request=request,
            amount_minor=amount.amount_minor,
            currency=amount.currency,
            message=f"order {locked.token}, payment {payment.pk}",
            now=now,
        )
    payment.refresh_from_db()
    return payment


def return_credit_for_refund(*, refund: Refund, now: datetime) -> StoreCredit:
    """A refund of a payment made with store credit: the money goes back as a new credit (and a new code).
    The refund flow credits `provider:store_credit:clearing`; this moves it on to `buyers:store_credit`."""
    amount = Money(refund.amount_minor, refund.currency)
    with transaction.atomic():
        store_credit = create_store_credit_for_refund(refund=refund, now=now)
        if str(getattr(refund, "method", "")) != "store_credit":  # that method credits buyers:store_credit itself
            post_transaction(
                idempotency_key=f"store_credit_refund:{refund.pk}",
                kind="store_credit_refund",
                entries=[
                    debit(accounts.provider_clearing(PROVIDER), amount),
                    credit(accounts.BUYERS_STORE_CREDIT, amount),
                ],
                occurred_at=now,
                memo=f"Refund {refund.pk} returned as store credit {store_credit.pk}",
                metadata={"refund": refund.pk, "store_credit": store_credit.pk},
            )
    return store_credit


# --- expiry ----------------------------------------------------------------------------------------------------


def expire_store_credits(*, now: datetime) -> int:
    """Credits past their expiry with something left: status expired, the rest released from the liability
    to breakage income. Safe to run twice. Returns how many expired."""
    expired = 0
    due = StoreCredit.objects.filter(status=StoreCreditStatus.ACTIVE, expires_at__lte=now).values_list("pk", flat=True)
    for credit_id in list(due):
        with transaction.atomic():
            store_credit = StoreCredit.objects.select_for_update().get(pk=credit_id)
            if store_credit.status != StoreCreditStatus.ACTIVE or store_credit.expires_at > now:
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
