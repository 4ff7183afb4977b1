"""Store credit: issued with a code and an expiry, spent at checkout through the `store_credit` provider,
released to breakage when it expires (DESIGN.md §8).

Decisions:
- Codes are bearer instruments, like gift cards: whoever holds the code may spend it, whatever e-mail the
  order carries (a buyer may pay for a friend's ticket). A code is 12 characters from a 31-letter alphabet
  without look-alikes (0/O, 1/I/L), about 59 bits from `secrets`: it cannot be guessed, and the checkout's
  POSTs are rate-limited per IP on top.
- A code that covers the whole order pays it at once (a `store_credit` payment settles the order). A code that
  covers only part is *applied*: a `StoreCreditReservation` (reserved → spent | released) holds what the
  credit can give, under the credit's row lock (what a credit can still give is `remaining_minor` less its
  reserved amounts, so one credit is never applied beyond what is left, whatever number of checkouts). The
  provider payment is then created for the rest (order total − applied credit) and is the one payment that
  settles the order (`payment_one_settling_payment_per_order` stays). When it succeeds, in the fulfilment
  transaction: the capture debits the provider's clearing with what it captured and
  `provider:store_credit:clearing` with the credit part, and the spend posting moves the credit part from
  `buyers:store_credit` to that clearing account; the reservation becomes spent. Expiry of the order or the
  buyer removing it releases it (nothing was posted). One applied code per order.
- Refunds of a split-paid order: first back to the card, up to what the card paid (method original); what
  is beyond that goes back as new store credit (method store_credit: a refund asked "to the original payment"
  once the card part is used up becomes store credit; one that would straddle both is refused with the
  amount the card can still take, so staff refund that first and the rest as store credit).
- Refunding an order paid with credit gives back credit: a new code for the refunded amount (the old one may
  have expired or be spent meanwhile), e-mailed like any other.

Ledger (each one `post_transaction`; `buyers:store_credit` always equals the sum of `remaining_minor`):
- issue from a refund: posted by the refund flow (credit `buyers:store_credit` instead of the provider);
- goodwill `store_credit_goodwill:<credit id>`: debit `platform:goodwill`, credit `buyers:store_credit`;
- spend `store_credit_spend:<spend id>`: debit `buyers:store_credit`, credit `provider:store_credit:clearing`
  (next to the usual capture `capture:payment:<id>`, which debits that clearing account);
- split payment: `store_credit_reservation:<reservation id>` (debit `buyers:store_credit`, credit
  `provider:store_credit:clearing`) in the fulfilment transaction of the provider payment for the rest, next to
  its `capture:payment:<id>` that debits the provider's clearing with the rest and
  `provider:store_credit:clearing` with the credit part; a reservation or its release posts nothing;
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
from refunds.models import (
    Refund,
    ReservationStatus,
    StoreCredit,
    StoreCreditReservation,
    StoreCreditSpend,
    StoreCreditStatus,
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


class StoreCreditRefused(DomainError):
    code = ErrorCode.STORE_CREDIT_INVALID
    status = 400


def available_minor(store_credit: StoreCredit) -> int:
    """What the credit can still give: what is left of it less what checkouts have reserved of it. Read under
    the credit's row lock when it matters."""
    reserved = (
        StoreCreditReservation.objects.filter(credit=store_credit, status=ReservationStatus.RESERVED).aggregate(
            s=Sum("amount_minor")
        )["s"]
        or 0
    )
    return max(0, store_credit.remaining_minor - reserved)


def live_reservation(order: Order) -> StoreCreditReservation | None:
    """The credit applied to this order and not released (reserved, or spent when the order was paid)."""
    return (
        StoreCreditReservation.objects.filter(
            order=order, status__in=[ReservationStatus.RESERVED, ReservationStatus.SPENT]
        )
        .select_related("credit")
        .first()
    )


def reserved_credit_minor(order: Order) -> int:
    """The credit part still to be spent when the order is paid (0 without an applied credit)."""
    reservation = live_reservation(order)
    return reservation.amount_minor if reservation and reservation.status == ReservationStatus.RESERVED else 0


def spent_credit_minor(order: Order) -> int:
    """The part of the order paid with applied store credit (split payment), once paid."""
    reservation = live_reservation(order)
    return reservation.amount_minor if reservation and reservation.status == ReservationStatus.SPENT else 0


def _check_usable(store_credit: StoreCredit | None, order: Order, now: datetime) -> None:
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
    if available_minor(store_credit) <= 0:
        raise StoreCreditRefused("Everything left on this code is already applied to another checkout.")


def _check_spendable(store_credit: StoreCredit | None, order: Order, now: datetime) -> None:
    _check_usable(store_credit, order, now)
    if available_minor(store_credit) < order.total_minor:
        left = format_money(available_minor(store_credit), store_credit.currency)
        due = format_money(order.total_minor, order.currency)
        raise StoreCreditRefused(
            f"This code covers {left} of the {due} due: apply it and pay the rest another way.",
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
        if live_reservation(locked) is not None:
            raise StoreCreditRefused("A store credit is already applied to this order: remove it to use another.")
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


# --- store credit together with another method ---------------------------------------------------------------


def _lock_open_order(order: Order, now: datetime) -> Order:
    from payments.services.orders import has_authorized_payment

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
    return locked


def reserve_store_credit(*, order: Order, code: str, now: datetime, request=None) -> StoreCreditReservation:
    """Apply a code that covers part of the order: reserve what the credit can give (at most the order total
    less one minor unit: a code that covers it all pays it with `pay_with_store_credit`). Under the order's,
    then the credit's row lock, so two checkouts never reserve more than is left. Posts nothing."""
    from payments.providers.registry import checkout_providers

    if PROVIDER not in {p.name for p in checkout_providers(order)}:
        raise DomainError("Store credit cannot pay this order.", code=ErrorCode.PROVIDER_NOT_AVAILABLE)
    if order.capture_method == CaptureMethod.MANUAL:
        raise DomainError(
            "This order is only to be authorized now and charged later: store credit cannot do that.",
            code=ErrorCode.CAPTURE_NOT_AVAILABLE,
        )
    from payments.services.orders import expire_order

    if order.status == OrderStatus.OPEN and order.expires_at <= now:
        expire_order(order=order, now=now)  # on its own: the refusal below must not undo it
    normalized = normalize_code(code)
    with transaction.atomic():
        locked = _lock_open_order(order, now)
        if live_reservation(locked) is not None:
            raise StoreCreditRefused("A store credit is already applied to this order: remove it to use another.")
        store_credit = StoreCredit.objects.select_for_update().filter(code=normalized).first()
        _check_usable(store_credit, locked, now)
        amount_minor = available_minor(store_credit)
        if amount_minor >= locked.total_minor:
            raise StoreCreditRefused("This code covers the whole order: pay with it.")
        reservation = StoreCreditReservation.objects.create(
            credit=store_credit,
            order=locked,
            amount_minor=amount_minor,
            currency=locked.currency,
            created_at=now,
        )
        record_audit(
            action="store_credit.reserved",
            actor_label="buyer:checkout",
            obj=store_credit,
            request=request,
            amount_minor=amount_minor,
            currency=locked.currency,
            message=f"order {locked.token}, reservation {reservation.pk}",
            now=now,
        )
    return reservation


def apply_store_credit(*, order: Order, code: str, now: datetime, request=None) -> Payment | StoreCreditReservation:
    """The checkout's code box: a code covering the order pays it (a `Payment`); one covering part of it is
    applied (a `StoreCreditReservation`) and the rest is paid with another method."""
    try:
        return pay_with_store_credit(order=order, code=code, now=now, request=request)
    except StoreCreditRefused as exc:
        if exc.code != ErrorCode.STORE_CREDIT_INSUFFICIENT:
            raise
    return reserve_store_credit(order=order, code=code, now=now, request=request)


def release_store_credit(*, order: Order, now: datetime, reason: str) -> StoreCreditReservation | None:
    """Give the reserved credit back (the order expired or the buyer removed it): status released, nothing
    posted (nothing moved yet). Called with or without the order lock held; a spent reservation stays."""
    with transaction.atomic():
        Order.objects.select_for_update().filter(pk=order.pk).first()
        reservation = (
            StoreCreditReservation.objects.select_for_update()
            .filter(order_id=order.pk, status=ReservationStatus.RESERVED)
            .first()
        )
        if reservation is None:
            return None
        reservation.status = ReservationStatus.RELEASED
        reservation.resolved_at = now
        reservation.save(update_fields=["status", "resolved_at"])
        record_audit(
            action="store_credit.released",
            actor_label="system" if reason != "removed" else "buyer:checkout",
            object_type="refunds.storecredit",
            object_id=reservation.credit_id,
            amount_minor=reservation.amount_minor,
            currency=reservation.currency,
            message=f"order {order.pk}: {reason}",
            now=now,
        )
    return reservation


def remove_store_credit(*, order: Order, now: datetime) -> StoreCreditReservation | None:
    """The buyer removes the applied code from an open order. Refused once the order is paid."""
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        if locked.status != OrderStatus.OPEN:
            raise DomainError(
                f"This order is {locked.get_status_display().lower()}.", code=ErrorCode.ORDER_NOT_OPEN, status=409
            )
        return release_store_credit(order=locked, now=now, reason="removed")


def spend_reservation(*, order: Order, payment: Payment, now: datetime) -> StoreCreditReservation | None:
    """In the fulfilment transaction of the provider payment that settles a split-paid order (order and payment
    locked): the reservation becomes spent, the credit's `remaining_minor` goes down and the spend posting
    (debit `buyers:store_credit`, credit `provider:store_credit:clearing`) is made. The caller then posts the
    capture with the credit part debited to that clearing account. Lock order: (order, payment held) the
    reservation, the credit, then the ledger accounts by id, as `pay_with_store_credit` does."""
    reservation = (
        StoreCreditReservation.objects.select_for_update()
        .filter(order=order, status=ReservationStatus.RESERVED)
        .first()
    )
    if reservation is None:
        return None
    store_credit = StoreCredit.objects.select_for_update().get(pk=reservation.credit_id)
    _lock_ruled_accounts(order)  # before any posting: the capture's and the spend's ruled accounts, by id
    amount = Money(reservation.amount_minor, reservation.currency)
    store_credit.remaining_minor -= amount.amount_minor  # ≥ 0: what was reserved was never given elsewhere
    if store_credit.remaining_minor == 0:
        store_credit.status = StoreCreditStatus.SPENT
    store_credit.save(update_fields=["remaining_minor", "status", "updated_at"])
    reservation.status = ReservationStatus.SPENT
    reservation.payment = payment
    reservation.resolved_at = now
    reservation.save(update_fields=["status", "payment", "resolved_at"])
    post_transaction(
        idempotency_key=f"store_credit_reservation:{reservation.pk}",
        kind="store_credit_spend",
        entries=[debit(accounts.BUYERS_STORE_CREDIT, amount), credit(accounts.provider_clearing(PROVIDER), amount)],
        occurred_at=now,
        memo=f"Store credit {store_credit.pk} pays part of order {order.token} (with payment {payment.pk})",
        metadata={"store_credit": store_credit.pk, "reservation": reservation.pk, "order": str(order.token)},
    )
    record_audit(
        action="store_credit.spent",
        actor_label=f"{payment.provider}:fulfilment",
        obj=store_credit,
        amount_minor=amount.amount_minor,
        currency=amount.currency,
        message=f"order {order.token}, with payment {payment.pk}",
        now=now,
    )
    return reservation


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
