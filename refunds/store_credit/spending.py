"""Store credit at checkout: paying a whole order, applying a code to part of one, spending or releasing
it; and the credit given back when such an order is refunded."""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction
from django.db.models import Sum

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
from refunds.store_credit.issuing import PROVIDER, create_store_credit_for_refund, normalize_code

logger = logging.getLogger(__name__)


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


def _ensure_credit_can_pay(order: Order) -> None:
    from payments.providers.registry import checkout_providers

    if PROVIDER not in {p.name for p in checkout_providers(order)}:
        raise DomainError("Store credit cannot pay this order.", code=ErrorCode.PROVIDER_NOT_AVAILABLE)
    if order.capture_method == CaptureMethod.MANUAL:
        raise DomainError(
            "This order is only to be authorized now and charged later: store credit cannot do that.",
            code=ErrorCode.CAPTURE_NOT_AVAILABLE,
        )


def pay_with_store_credit(*, order: Order, code: str, now: datetime, request=None) -> Payment:
    """Pay the whole order with a store credit code: a `store_credit` payment that succeeds at once through the
    normal fulfilment path (capture posting), plus the spend posting, all in one transaction under the credit's
    row lock (two checkouts with one code: the second sees what the first left)."""
    from payments.services.fulfilment import apply_payment_state
    from payments.services.orders import expire_order, has_authorized_payment

    _ensure_credit_can_pay(order)
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
    _ensure_credit_can_pay(order)
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
