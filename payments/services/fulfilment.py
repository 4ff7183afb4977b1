"""The one fulfilment path: every provider state we learn (webhook, return page, janitor) goes through
`apply_payment_state`. It is idempotent and order-independent: applying the same state twice, or states in
any order, ends in the same rows and the same ledger.

Pre-authorization (manual capture): a payment that becomes `authorized` posts the card hold
(`authorization:payment:<id>`: debit `provider:<p>:authorized`, credit `buyers:authorizations`) and records
`authorized_minor` and when the hold lapses; when it leaves `authorized` (captured, voided, lapsed, failed)
the hold is reversed once (`authorization-end:payment:<id>`). `authorized_minor` > 0 exactly while the hold
is posted and not ended. A capture of less than the authorized order total is a partial capture: the order is
captured in full and the uncaptured rest released like a refund (`refunds.services.record_uncaptured_release`).

Lock order: the order row, then the payment row, then (inside post_transaction) ledger accounts by id.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta

from django.db import transaction

from core.audit import record_audit
from core.errors import DomainError, ErrorCode
from ledger import accounts
from ledger.money import Money
from ledger.services import Posting, credit, debit, post_transaction
from payments.models import CaptureMethod, Order, OrderStatus, Payment, PaymentStatus, ReviewReason
from payments.providers.base import ProviderConfigurationError, ProviderPaymentState
from payments.state import PAYMENT_TRANSITIONS, transition_order, transition_payment

logger = logging.getLogger(__name__)

# How long a card hold lasts where the provider does not say (card schemes keep most holds about 7 days).
DEFAULT_AUTHORIZATION_LIFETIME = timedelta(days=7)
AUTHORIZATION_EXPIRED = "authorization_expired"
AUTHORIZATION_VOIDED = "authorization_voided"


class UnknownPayment(DomainError):
    code = ErrorCode.NOT_FOUND
    status = 404


def capture_postings(*, order: Order, provider: str, store_credit_minor: int = 0) -> list[Posting]:
    """Debit the provider's clearing account with the gross; credit each payee's pending share, the
    commission and the VAT on it. Shares + commission + VAT = gross exactly (I7).

    Split payment (store credit for part of the order, `store_credit_minor`): the provider's clearing is
    debited with the rest it captured and `provider:store_credit:clearing` with the credit part (which the
    spend posting in the same transaction credits back from `buyers:store_credit`)."""
    currency = order.currency
    shares: dict[int, int] = defaultdict(int)
    commission = commission_vat = gross = 0
    for line in order.lines.all():
        shares[line.payee_id] += line.payee_share_minor
        commission += line.commission_minor
        commission_vat += line.commission_vat_minor
        gross += line.amount_minor
    postings = [debit(accounts.provider_clearing(provider), Money(gross - store_credit_minor, currency))]
    if store_credit_minor:
        postings.append(debit(accounts.provider_clearing("store_credit"), Money(store_credit_minor, currency)))
    postings += [
        credit(accounts.payee_pending(payee_id), Money(amount, currency)) for payee_id, amount in sorted(shares.items())
    ]
    postings.append(credit(accounts.PLATFORM_COMMISSION, Money(commission, currency)))
    postings.append(credit(accounts.PLATFORM_VAT_PAYABLE, Money(commission_vat, currency)))
    return postings


def capture_payee_breakdown(order: Order) -> dict[str, dict[str, int]]:
    """What each payee's pending credit in the capture is made of (sales − commission − VAT on it = the
    share), kept in the transaction's metadata: the payee accounts only see the share, and the payee's
    statement shows the sale and the commission taken from it (commissions.statements)."""
    parts: dict[str, dict[str, int]] = {}
    for line in order.lines.all():
        row = parts.setdefault(str(line.payee_id), {"sales": 0, "commission": 0, "commission_vat": 0})
        row["sales"] += line.amount_minor
        row["commission"] += line.commission_minor
        row["commission_vat"] += line.commission_vat_minor
    return parts


def apply_payment_state(*, payment_id: int, state: ProviderPaymentState, now: datetime, source: str) -> bool:
    """Apply what the provider says about a payment. Returns True if anything changed."""
    order_id = Payment.objects.filter(pk=payment_id).values_list("order_id", flat=True).first()
    if order_id is None:
        raise UnknownPayment(f"No payment {payment_id}")
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_id)
        payment = Payment.objects.select_for_update().get(pk=payment_id)
        if payment.provider_ref and state.provider_ref and payment.provider_ref != state.provider_ref:
            raise DomainError(f"Provider object {state.provider_ref} does not belong to payment {payment.pk}")
        if state.status == PaymentStatus.SUCCEEDED:
            return _apply_success(order=order, payment=payment, state=state, now=now, source=source)
        if state.status not in PAYMENT_TRANSITIONS:
            return False
        if state.status == PaymentStatus.AUTHORIZED:
            return _apply_authorized(payment=payment, state=state, now=now, source=source)
        held = payment.authorized_minor if payment.status == PaymentStatus.AUTHORIZED else 0
        fields = {}
        if state.status == PaymentStatus.FAILED:
            fields = {"failure_code": state.failure_code[:80], "failure_message": state.failure_message[:300]}
        if payment.status == PaymentStatus.AUTHORIZED:
            fields = {**fields, **_authorization_end_reason(payment=payment, state=state, now=now, source=source)}
            fields["authorized_minor"] = 0
        changed = transition_payment(payment=payment, to=state.status, now=now, **fields)
        if changed and held:
            _end_authorization(payment=payment, amount_minor=held, now=now)
        if changed:
            record_audit(
                action=f"payment.{state.status}",
                actor_label=f"{payment.provider}:{source}",
                obj=payment,
                amount_minor=payment.amount_minor,
                currency=payment.currency,
                now=now,
                message=state.failure_code,
            )
        return changed


def authorization_lifetime(provider_name: str) -> timedelta:
    """How long the provider keeps a card hold (its adapter's `authorization_lifetime`, else the default)."""
    from payments.providers.registry import get_provider

    try:
        provider = get_provider(provider_name)
    except ProviderConfigurationError:
        return DEFAULT_AUTHORIZATION_LIFETIME
    return getattr(provider, "authorization_lifetime", None) or DEFAULT_AUTHORIZATION_LIFETIME


def _apply_authorized(*, payment: Payment, state: ProviderPaymentState, now: datetime, source: str) -> bool:
    """The buyer's card is authorized (held) for the amount; nothing is captured yet. The hold is posted once,
    whichever of notification, return page or janitor brings it first; a late `authorized` after the payment
    moved on (captured, voided) changes nothing."""
    amount = state.amount if state.amount and state.amount.currency == payment.currency else None
    amount_minor = amount.amount_minor if amount else payment.amount_minor
    changed = transition_payment(
        payment=payment,
        to=PaymentStatus.AUTHORIZED,
        now=now,
        authorized_minor=amount_minor,
        authorization_expires_at=now + authorization_lifetime(payment.provider),
        provider_payment_ref=state.provider_payment_ref or payment.provider_payment_ref,
    )
    if not changed:
        return False
    post_transaction(
        idempotency_key=f"authorization:payment:{payment.pk}",
        kind="authorization",
        entries=[
            debit(accounts.provider_authorized(payment.provider), Money(amount_minor, payment.currency)),
            credit(accounts.BUYERS_AUTHORIZATIONS, Money(amount_minor, payment.currency)),
        ],
        occurred_at=now,
        memo=f"Card hold for payment {payment.pk} via {payment.provider}",
        metadata={"order": payment.order_id, "payment": payment.pk},
    )
    record_audit(
        action="payment.authorized",
        actor_label=f"{payment.provider}:{source}",
        obj=payment,
        amount_minor=amount_minor,
        currency=payment.currency,
        now=now,
        message=f"expires {payment.authorization_expires_at:%Y-%m-%d %H:%M %Z}",
    )
    return True


def _authorization_end_reason(*, payment: Payment, state: ProviderPaymentState, now: datetime, source: str) -> dict:
    """Failure code and message for an authorization that ends without a capture."""
    if state.status != PaymentStatus.CANCELED:
        return {}
    if source == "void":
        return {
            "failure_code": AUTHORIZATION_VOIDED,
            "failure_message": "The authorization was voided; nothing was charged.",
        }
    lapsed = payment.authorization_expires_at is not None and now >= payment.authorization_expires_at
    if state.failure_code == AUTHORIZATION_EXPIRED or lapsed:
        return {
            "failure_code": AUTHORIZATION_EXPIRED,
            "failure_message": "The card authorization lapsed before it was captured; nothing was charged.",
        }
    return {
        "failure_code": (state.failure_code or "authorization_canceled")[:80],
        "failure_message": (state.failure_message or "The authorization was canceled; nothing was charged.")[:300],
    }


def _end_authorization(*, payment: Payment, amount_minor: int, now: datetime) -> None:
    """Reverse the card hold once (captured, voided, lapsed or failed), and close its expiry review."""
    amount = Money(amount_minor, payment.currency)
    post_transaction(
        idempotency_key=f"authorization-end:payment:{payment.pk}",
        kind="authorization_end",
        entries=[
            debit(accounts.BUYERS_AUTHORIZATIONS, amount),
            credit(accounts.provider_authorized(payment.provider), amount),
        ],
        occurred_at=now,
        memo=f"Card hold for payment {payment.pk} ended ({payment.status})",
        metadata={"order": payment.order_id, "payment": payment.pk, "status": payment.status},
    )
    Payment.objects.filter(pk=payment.pk, review_reason=ReviewReason.AUTHORIZATION_EXPIRING).update(
        needs_review=False, review_reason=""
    )


def _is_partial_capture(*, order: Order, payment: Payment, captured: Money, held: int) -> bool:
    """A capture of part of a hold for the whole order (manual capture). `held` is the posted hold, or, when
    we never saw the authorization (only the capture's outcome reached us), the payment's amount."""
    if order.capture_method != CaptureMethod.MANUAL or captured.currency != order.currency:
        return False
    authorized = held or payment.amount_minor
    return authorized == order.total_minor and 0 < captured.amount_minor < authorized


def _apply_success(*, order: Order, payment: Payment, state: ProviderPaymentState, now: datetime, source: str) -> bool:
    captured = state.captured or state.amount or Money(payment.amount_minor, payment.currency)
    held = payment.authorized_minor if payment.status == PaymentStatus.AUTHORIZED else 0
    first_time = transition_payment(
        payment=payment,
        to=PaymentStatus.SUCCEEDED,
        now=now,
        captured_minor=captured.amount_minor,
        authorized_minor=0,
        succeeded_at=now,
        provider_payment_ref=state.provider_payment_ref or payment.provider_payment_ref,
        failure_code="",
        failure_message="",
    )
    if state.provider_charge_ref:
        # Learnt with the success or on a later look at it (a session event carries no charge).
        Payment.objects.filter(pk=payment.pk, provider_charge_ref="").update(
            provider_charge_ref=state.provider_charge_ref
        )
    if not first_time:
        return _post_fee(payment=payment, fee=state.fee, now=now)
    if held:
        _end_authorization(payment=payment, amount_minor=held, now=now)

    partial = _is_partial_capture(order=order, payment=payment, captured=captured, held=held)
    credit_part = _reserved_credit(order=order, payment=payment, captured=captured, now=now)
    expected = order.total_minor - credit_part
    if not partial and (captured.currency != order.currency or captured.amount_minor != expected):
        _hold_overpayment(order=order, payment=payment, captured=captured, reason=ReviewReason.AMOUNT_MISMATCH, now=now)
    elif (
        order.status in (OrderStatus.OPEN, OrderStatus.EXPIRED)
        and not order.payments.filter(settles_order=True).exists()
    ):
        Payment.objects.filter(pk=payment.pk).update(settles_order=True)
        transition_order(order=order, to=OrderStatus.PAID, now=now, paid_at=now)
        from commissions.release import set_release_times  # commissions imports payments: not at the top

        set_release_times(order, now)
        _queue_confirmation(order.pk)
        _queue_invoices(order.pk)
        if credit_part:
            # The credit row, then both postings' balance-checked accounts in one go by id (lock order), then
            # the spend posting; the capture below debits the credit part to the store credit clearing.
            from refunds.store_credit import spend_reservation

            spend_reservation(order=order, payment=payment, now=now)
        post_transaction(
            idempotency_key=f"capture:payment:{payment.pk}",
            kind="capture",
            entries=capture_postings(order=order, provider=payment.provider, store_credit_minor=credit_part),
            occurred_at=now,
            memo=f"Order {order.token} paid via {payment.provider}"
            + (f" and store credit ({Money(credit_part, order.currency)})" if credit_part else ""),
            metadata={
                "order": str(order.token),
                "payment": payment.pk,
                "store_credit_minor": credit_part,
                "payees": capture_payee_breakdown(order),
            },
        )
        if partial:
            from refunds.services import record_uncaptured_release

            record_uncaptured_release(
                order=order, payment=payment, amount_minor=order.total_minor - captured.amount_minor, now=now
            )
    else:
        reason = ReviewReason.ORDER_CLOSED if order.status == OrderStatus.CANCELED else ReviewReason.DOUBLE_PAYMENT
        _hold_overpayment(order=order, payment=payment, captured=captured, reason=reason, now=now)
    if state.fee is None and _reports_fees(payment.provider):
        _queue_fee_sync(payment.pk)
    else:
        _post_fee(payment=payment, fee=state.fee, now=now)
    record_audit(
        action="payment.succeeded",
        actor_label=f"{payment.provider}:{source}",
        obj=payment,
        amount_minor=captured.amount_minor,
        currency=captured.currency,
        now=now,
    )
    return True


def _reserved_credit(*, order: Order, payment: Payment, captured: Money, now: datetime) -> int:
    """The store credit applied to this order (split payment) that this payment's success is to spend: only
    while the order is open and unsettled. A provider payment that captured the whole total anyway (started
    before the credit was applied) settles the order alone, and the reservation is released instead."""
    if payment.provider == "store_credit" or order.status != OrderStatus.OPEN:
        return 0
    if order.payments.filter(settles_order=True).exists():
        return 0
    from refunds.store_credit import release_store_credit, reserved_credit_minor

    reserved = reserved_credit_minor(order)
    if reserved and captured.currency == order.currency and captured.amount_minor == order.total_minor:
        release_store_credit(order=order, now=now, reason="the order was paid in full another way")
        return 0
    return reserved


def _reports_fees(provider_name: str) -> bool:
    # GoPay bills its fees apart (monthly statement): asking it for a payment's fee finds nothing.
    from payments.providers.registry import get_provider

    return getattr(get_provider(provider_name), "reports_fees", True)


def _queue_fee_sync(payment_id: int) -> None:
    from payments.tasks import sync_payment_fee

    transaction.on_commit(lambda: sync_payment_fee.delay(payment_id=payment_id))


def sync_payment_fee(*, payment_id: int, now: datetime) -> bool:
    """Post the provider's fee for a succeeded payment whose success event did not carry it (Stripe reports
    it on the charge's balance transaction, which we fetch). True once the fee is in the ledger."""
    from payments.providers.registry import get_provider

    payment = Payment.objects.get(pk=payment_id)
    if payment.status != PaymentStatus.SUCCEEDED or payment.fee_minor:
        return bool(payment.fee_minor)
    state = get_provider(payment.provider).fetch_payment(payment=payment)
    if state.status != PaymentStatus.SUCCEEDED or state.fee is None:
        return False
    with transaction.atomic():
        Payment.objects.select_for_update().get(pk=payment_id)
        _record_charge_ref(payment=payment, state=state)
        _post_fee(payment=payment, fee=state.fee, now=now)
    return True


def _record_charge_ref(*, payment: Payment, state: ProviderPaymentState) -> None:
    # Learnt with the success or on a later look at the payment (a session event carries no charge).
    if state.provider_charge_ref:
        Payment.objects.filter(pk=payment.pk, provider_charge_ref="").update(
            provider_charge_ref=state.provider_charge_ref
        )


def _queue_confirmation(order_id: int) -> None:
    from payments.tasks import send_payment_confirmation

    transaction.on_commit(lambda: send_payment_confirmation.delay(order_id=order_id))


def _queue_invoices(order_id: int) -> None:
    from invoicing.tasks import issue_order_documents

    transaction.on_commit(lambda: issue_order_documents.delay(order_id=order_id), robust=True)


def _hold_overpayment(*, order: Order, payment: Payment, captured: Money, reason: str, now: datetime) -> None:
    """Money the order cannot keep: owed back to the buyer, refunded automatically, flagged for staff."""
    from refunds.services import create_overpayment_refund

    logger.warning("payment %s for order %s cannot settle it (%s): refunding", payment.pk, order.token, reason)
    post_transaction(
        idempotency_key=f"overpayment:payment:{payment.pk}",
        kind="overpayment",
        entries=[
            debit(accounts.provider_clearing(payment.provider), captured),
            credit(accounts.BUYERS_OVERPAYMENTS, captured),
        ],
        occurred_at=now,
        memo=f"Payment {payment.pk} cannot settle order {order.token}: {reason}",
        metadata={"order": str(order.token), "payment": payment.pk, "reason": reason},
    )
    Payment.objects.filter(pk=payment.pk).update(needs_review=True, review_reason=reason)
    record_audit(
        action="payment.flagged",
        actor_label="system",
        obj=payment,
        amount_minor=captured.amount_minor,
        currency=captured.currency,
        message=reason,
        now=now,
    )
    create_overpayment_refund(payment=payment, amount=captured, reason=reason, now=now)


def _post_fee(*, payment: Payment, fee: Money | None, now: datetime) -> bool:
    if fee is None or fee.amount_minor <= 0:
        return False
    post_transaction(
        idempotency_key=f"fee:payment:{payment.pk}",
        kind="provider_fee",
        entries=[
            debit(accounts.PLATFORM_PROVIDER_FEES, fee),
            credit(accounts.provider_clearing(payment.provider), fee),
        ],
        occurred_at=now,
        memo=f"{payment.provider} fee for payment {payment.pk}",
        metadata={"payment": payment.pk},
    )
    updated = Payment.objects.filter(pk=payment.pk, fee_minor=0).update(fee_minor=fee.amount_minor)
    return bool(updated)
