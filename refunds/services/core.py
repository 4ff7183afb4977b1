"""Refunds: creating them under the order lock (never more than was captured), sending them to the
provider with a key derived from the refund row, and posting the reversal to the ledger once."""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime

from django.db import transaction
from django.db.models import F, Sum

from core.audit import record_audit
from core.errors import DomainError, ErrorCode
from ledger import accounts
from ledger.money import Money, allocate
from ledger.selectors import account_balance
from ledger.services import Posting, credit, debit, post_transaction
from payments.models import Order, OrderStatus, Payment, ReviewReason
from payments.providers.base import (
    ProviderOutcomeUnknown,
    ProviderRequestRejected,
    ProviderUnavailable,
)
from payments.providers.registry import get_provider
from payments.state import transition_order
from refunds.models import Dispute, DisputeStatus, Refund, RefundLine, RefundReason, RefundStatus
from refunds.services.split import _card_first, store_credit_part_minor

logger = logging.getLogger(__name__)

# Refunds that hold part of the captured amount (everything except failed and canceled ones).
ACTIVE_STATUSES = [RefundStatus.REQUESTED, RefundStatus.APPROVED, RefundStatus.PROCESSING, RefundStatus.SUCCEEDED]


def _queue_execution(refund: Refund) -> None:
    from refunds.tasks import execute_refund as execute_refund_task

    transaction.on_commit(lambda: execute_refund_task.delay(refund_id=refund.pk))


def create_overpayment_refund(*, payment: Payment, amount: Money, reason: str, now: datetime) -> Refund:
    """Refund money the order could not keep. Called inside the fulfilment transaction (locks held)."""
    # `reason` is the payment's review reason; a double payment is called a duplicate payment among refunds.
    reason = RefundReason.DUPLICATE_PAYMENT if reason == ReviewReason.DOUBLE_PAYMENT else reason
    refund, created = Refund.objects.get_or_create(
        payment=payment,
        is_overpayment=True,
        defaults={
            "order_id": payment.order_id,
            "amount_minor": amount.amount_minor,
            "currency": amount.currency,
            "reason": reason if reason in RefundReason.values else RefundReason.OTHER,
            "status": RefundStatus.APPROVED,
            "requested_by_label": "system",
            "created_at": now,
        },
    )
    if created:
        _queue_execution(refund)
    return refund


def refundable_minor(payment: Payment) -> int:
    """What can still be refunded of what the provider captured. The release of an authorization's uncaptured
    rest is not part of the captured amount, so it does not count here (see `record_uncaptured_release`)."""
    held = (
        Refund.objects.filter(payment=payment, status__in=ACTIVE_STATUSES)
        .exclude(reason=RefundReason.AUTHORIZATION_RELEASED)
        .aggregate(s=Sum(F("amount_minor") + F("fee_minor") + F("commission_kept_minor")))["s"]
    )
    # A policy refund undoes more of the order (its gross part) than it pays back (the fee and, per policy,
    # the commission are kept): what is left is counted in gross parts, so it is never undone twice.
    # A lost dispute already gave the buyer its amount back (the chargeback): that part is gone too.
    lost = Dispute.objects.filter(payment=payment, status=DisputeStatus.LOST).aggregate(s=Sum("amount_minor"))["s"]
    # A split-paid order (store credit for part of it): the order's gross is what the card captured plus the
    # credit part spent with this payment; refunds beyond the card's part go back as store credit.
    return max(0, payment.captured_minor + store_credit_part_minor(payment) - (held or 0) - (lost or 0))


def _allocate_over_lines(order: Order, amount_minor: int) -> list[RefundLine]:
    """Spread `amount` over the lines' still-unrefunded commission, VAT and payee parts, in proportion.
    Each part taken is at most what remains of it, so the final refund takes back exactly the rest."""
    lines = list(order.lines.order_by("position"))
    taken = {
        row["order_line_id"]: row
        for row in RefundLine.objects.filter(order_line__order=order, refund__status__in=ACTIVE_STATUSES)
        .values("order_line_id")
        .annotate(c=Sum("commission_minor"), v=Sum("commission_vat_minor"), p=Sum("payee_share_minor"))
    }
    remaining: list[int] = []
    for line in lines:
        row = taken.get(line.pk, {"c": 0, "v": 0, "p": 0})
        remaining += [
            line.commission_minor - (row["c"] or 0),
            line.commission_vat_minor - (row["v"] or 0),
            line.payee_share_minor - (row["p"] or 0),
        ]
    parts = allocate(amount_minor, remaining)
    result = []
    for index, line in enumerate(lines):
        c, v, p = parts[3 * index : 3 * index + 3]
        if c + v + p:
            result.append(
                RefundLine(
                    order_line=line,
                    amount_minor=c + v + p,
                    commission_minor=c,
                    commission_vat_minor=v,
                    payee_share_minor=p,
                )
            )
    return result


def _create_refund(
    *,
    order: Order,
    payment: Payment,
    amount_minor: int,
    reason: str,
    status: str,
    now: datetime,
    actor=None,
    actor_label: str = "",
    note: str = "",
    provider_ref: str = "",
    refund_lines: list[RefundLine] | None = None,
    **policy_fields,
) -> Refund:
    """A refund row and how it reverses each line. Callers hold the order and payment locks and have
    checked the amount against what is still refundable. A policy refund passes its own `refund_lines`
    (the gross part per line) and the policy fields (fee, commission kept, method, ...)."""
    if reason != RefundReason.AUTHORIZATION_RELEASED:
        policy_fields["method"] = _card_first(
            order=order, payment=payment, amount_minor=amount_minor, method=policy_fields.get("method", "original")
        )
    refund = Refund.objects.create(
        order=order,
        payment=payment,
        amount_minor=amount_minor,
        currency=order.currency,
        reason=reason,
        status=status,
        provider_ref=provider_ref,
        requested_by=actor if getattr(actor, "is_authenticated", False) else None,
        requested_by_label=actor_label,
        note=note,
        created_at=now,
        **policy_fields,
    )
    if refund_lines is None:
        refund_lines = _allocate_over_lines(order, amount_minor)
    for row in refund_lines:
        row.refund = refund
    RefundLine.objects.bulk_create(refund_lines)
    return refund


def request_refund(
    *,
    order: Order,
    amount_minor: int,
    reason: str,
    now: datetime,
    actor=None,
    actor_label: str = "",
    note: str = "",
    request=None,
) -> Refund:
    """Refund part or all of an order's settling payment (approved at once; policies and approval
    thresholds come with the refund-policy work). Raises `refund_exceeds_captured` past what is left."""
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order.pk)
        if order.status not in (OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED):
            raise DomainError(
                f"Only paid orders can be refunded; this one is {order.status}.",
                code=ErrorCode.REFUND_NOT_ALLOWED,
                status=409,
            )
        payment = Payment.objects.select_for_update().get(order=order, settles_order=True)
        if amount_minor <= 0:
            raise DomainError("The refund amount must be greater than zero.", code=ErrorCode.AMOUNT_NOT_POSITIVE)
        left = refundable_minor(payment)
        if amount_minor > left:
            raise DomainError(
                f"Only {Money(left, order.currency)} can still be refunded.",
                code=ErrorCode.REFUND_EXCEEDS_CAPTURED,
                status=409,
            )
        if payment.disputes.filter(status__in=[DisputeStatus.OPEN, DisputeStatus.UNDER_REVIEW]).exists():
            raise DomainError(
                "This payment is disputed; it cannot be refunded until the dispute is settled.",
                code=ErrorCode.REFUND_BLOCKED_BY_DISPUTE,
                status=409,
            )
        refund = _create_refund(
            order=order,
            payment=payment,
            amount_minor=amount_minor,
            reason=reason,
            status=RefundStatus.APPROVED,
            actor=actor,
            actor_label=actor_label,
            note=note,
            now=now,
        )
        record_audit(
            action="refund.request",
            actor=actor,
            actor_label=actor_label,
            obj=refund,
            request=request,
            amount_minor=amount_minor,
            currency=order.currency,
            message=reason,
            now=now,
        )
        _queue_execution(refund)
    return refund


def execute_refund(*, refund_id: int, now: datetime) -> Refund:
    """Send an approved refund to the provider (idempotency key from the refund id) and complete it.
    Safe to run twice: a refund already sent is only completed, never sent as a new one."""
    with transaction.atomic():
        refund = Refund.objects.select_for_update().get(pk=refund_id)
        if refund.status not in (RefundStatus.APPROVED, RefundStatus.PROCESSING):
            return refund
        Refund.objects.filter(pk=refund.pk).update(status=RefundStatus.PROCESSING)
    refund.refresh_from_db()
    if refund.method == "store_credit":  # no provider call: posted to buyers:store_credit, a new code issued
        from refunds.store_credit import create_store_credit_for_refund

        with transaction.atomic():
            refund = complete_refund(refund_id=refund.pk, provider_ref="", now=now)
            create_store_credit_for_refund(refund=refund, now=now)
        return refund
    provider = get_provider(refund.payment.provider)
    try:
        result = provider.refund(refund=refund)
    except ProviderRequestRejected as exc:
        return fail_refund(refund_id=refund.pk, message=str(exc), now=now)
    except (ProviderUnavailable, ProviderOutcomeUnknown):
        raise  # the task retries with the same key; the provider dedupes
    if result.status == "failed":
        return fail_refund(refund_id=refund.pk, message=result.failure_message, now=now)
    if result.status != "succeeded":
        Refund.objects.filter(pk=refund.pk).update(provider_ref=result.provider_ref)
        return refund
    return complete_refund(refund_id=refund.pk, provider_ref=result.provider_ref, now=now)


def refund_postings(refund: Refund) -> list[Posting]:
    """The reversal of the capture for the refunded part. With R the gross part undone (the refund lines:
    commission c, VAT on commission v, payee share p per line), F the fee kept and A what the buyer gets:

    - credit `provider:<p>:clearing` A (method original), or `buyers:store_credit` A (method store credit);
    - commission returned: debit `platform:commission` Σc and `platform:vat_payable` Σv; not returned: these
      stay (A = R − F − Σ(c + v));
    - per payee: debit Σp less the fee lines' F when the fee goes to the payee (so the payee keeps it),
      taken from `pending` first, then `available` (which may go negative: a debt for the next payout);
    - fee to the platform: credit `platform:commission` F (booked whole as commission income; no VAT is split
      off a kept cancellation fee here — invoicing decides its VAT treatment).

    Balanced: debits Σp + [Σc + Σv] − F_payee = credits A + F_platform. A refund without a policy (F = 0,
    commission returned) is the plain reverse of the capture, as before."""
    currency = refund.currency
    clearing = accounts.provider_clearing(refund.payment.provider)
    amount = Money(refund.amount_minor, currency)
    if refund.is_overpayment:
        return [debit(accounts.BUYERS_OVERPAYMENTS, amount), credit(clearing, amount)]
    from refunds.models import FeeTo, RefundMethod

    per_payee: dict[int, int] = defaultdict(int)
    commission = vat = fee_to_platform = 0
    for row in refund.lines.select_related("order_line"):
        share = row.payee_share_minor
        if row.fee_minor and refund.fee_to == FeeTo.PAYEE:
            share -= row.fee_minor
        else:
            fee_to_platform += row.fee_minor
        per_payee[row.order_line.payee_id] += share
        commission += row.commission_minor
        vat += row.commission_vat_minor
    if not refund.commission_returned:
        commission = vat = 0
    paid_to = accounts.BUYERS_STORE_CREDIT if refund.method == RefundMethod.STORE_CREDIT else clearing
    postings = [
        credit(paid_to, amount),
        debit(accounts.PLATFORM_COMMISSION, Money(commission, currency)),
        debit(accounts.PLATFORM_VAT_PAYABLE, Money(vat, currency)),
        credit(accounts.PLATFORM_COMMISSION, Money(fee_to_platform, currency)),
    ]
    for payee_id, share in sorted(per_payee.items()):
        # Take it back from what is still pending; once released (or paid out) from available, which may
        # then go negative and is carried into the next payout.
        pending = account_balance(accounts.payee_pending(payee_id), currency).amount_minor
        from_pending = max(0, min(share, pending))
        postings.append(debit(accounts.payee_pending(payee_id), Money(from_pending, currency)))
        postings.append(debit(accounts.payee_available(payee_id), Money(share - from_pending, currency)))
    return postings


def refund_payee_breakdown(refund: Refund) -> dict[str, dict[str, int]]:
    """What each payee's debit in the refund is made of, in the statement's terms, kept in the transaction's
    metadata (commissions.statements): the payee gives back its share of the refunded lines less the fee it
    keeps. With the commission returned the payee's statement shows the sale refunded (less the fee) and the
    commission and VAT on it taken off again; with the commission kept by the platform (the buyer bears it) the
    refund line is the payee's share only and the commission stays charged, as on the commission invoice.
    An uncaptured rest (authorization released) undoes sales rather than refunding them."""
    if refund.is_overpayment:
        return {}
    from refunds.models import FeeTo

    figure = "sales" if refund.reason == RefundReason.AUTHORIZATION_RELEASED else "refunds"
    sign = -1 if figure == "sales" else 1
    parts: dict[str, dict[str, int]] = {}
    for row in refund.lines.select_related("order_line"):
        part = parts.setdefault(str(row.order_line.payee_id), {figure: 0, "commission": 0, "commission_vat": 0})
        kept = row.fee_minor if refund.fee_to == FeeTo.PAYEE else 0
        if refund.commission_returned:
            part[figure] += sign * (row.amount_minor - kept)
            part["commission"] -= row.commission_minor
            part["commission_vat"] -= row.commission_vat_minor
        else:
            part[figure] += sign * (row.payee_share_minor - kept)
    return parts


def _queue_credit_notes(refund_id: int) -> None:
    from invoicing.tasks import issue_refund_documents

    transaction.on_commit(lambda: issue_refund_documents.delay(refund_id=refund_id), robust=True)


def complete_refund(*, refund_id: int, provider_ref: str, now: datetime) -> Refund:
    refund = Refund.objects.select_related("payment").get(pk=refund_id)
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=refund.order_id)
        payment = Payment.objects.select_for_update().get(pk=refund.payment_id)
        refund = Refund.objects.select_for_update().select_related("payment").get(pk=refund_id)
        if refund.status == RefundStatus.SUCCEEDED:
            return refund
        released = refund.reason == RefundReason.AUTHORIZATION_RELEASED
        post_transaction(
            idempotency_key=f"authorization-release:payment:{payment.pk}" if released else f"refund:{refund.pk}",
            kind="authorization_release" if released else "refund",
            entries=refund_postings(refund),
            occurred_at=now,
            memo=f"{'Uncaptured rest' if released else 'Refund'} {refund.pk} of order {order.token}",
            metadata={
                "order": str(order.token),
                "payment": payment.pk,
                "refund": refund.pk,
                "payees": refund_payee_breakdown(refund),
            },
        )
        Refund.objects.filter(pk=refund.pk).update(
            status=RefundStatus.SUCCEEDED, succeeded_at=now, provider_ref=provider_ref or refund.provider_ref
        )
        # Never captured (released), or not paid back through the provider (store credit): not part of the
        # payment's refunded amount.
        if not released and refund.method == "original":
            Payment.objects.filter(pk=payment.pk).update(refunded_minor=payment.refunded_minor + refund.amount_minor)
        if not refund.is_overpayment:
            # The order counts the whole part undone, including what the policy kept.
            refunded = order.refunded_minor + refund.amount_minor + refund.fee_minor + refund.commission_kept_minor
            target = OrderStatus.REFUNDED if refunded >= order.total_minor else OrderStatus.PARTIALLY_REFUNDED
            transition_order(order=order, to=target, now=now, refunded_minor=refunded)
        if not refund.is_overpayment:
            _queue_credit_notes(refund.pk)
        record_audit(
            action="refund.succeeded",
            actor_label=f"{payment.provider}",
            obj=refund,
            now=now,
            amount_minor=refund.amount_minor,
            currency=refund.currency,
        )
    refund.refresh_from_db()
    return refund


def record_uncaptured_release(*, order: Order, payment: Payment, amount_minor: int, now: datetime) -> Refund | None:
    """Book the part of a card hold that was not captured (a partial capture of an authorized payment).

    The order is captured in full in the ledger (`capture:payment:<id>`); the uncaptured rest is then taken
    back from each party exactly as a refund would take it (payee pending, commission, VAT on commission, in
    proportion to what is left of each line), crediting the provider's clearing account, so that clearing
    ends at the captured amount. It is a `Refund` row (reason `authorization_released`), succeeded at once,
    with no provider call: the provider released the rest when it captured. Called inside the fulfilment
    transaction (order and payment locked); idempotent: one such refund per payment, its ledger key
    `authorization-release:payment:<id>`.

    Counting, with A authorized and C captured: `payment.captured_minor` = C (what the provider captured),
    `payment.refunded_minor` counts only refunds of that money (so refunded ≤ captured holds and
    `refundable_minor` leaves exactly C for later refunds); `order.refunded_minor` = A − C (the order kept
    only C of its total, and the order becomes partially refunded; the refund's reason says why)."""
    if amount_minor <= 0:
        return None
    refund = Refund.objects.filter(payment=payment, reason=RefundReason.AUTHORIZATION_RELEASED).first()
    if refund is None:
        refund = _create_refund(
            order=order,
            payment=payment,
            amount_minor=amount_minor,
            reason=RefundReason.AUTHORIZATION_RELEASED,
            status=RefundStatus.PROCESSING,
            actor_label=f"{payment.provider}:capture",
            note=f"Captured {Money(payment.captured_minor, order.currency)} of the authorized amount; "
            "the rest was released on the buyer's card.",
            now=now,
        )
    return complete_refund(refund_id=refund.pk, provider_ref="", now=now)


def fail_refund(*, refund_id: int, message: str, now: datetime) -> Refund:
    with transaction.atomic():
        refund = Refund.objects.select_for_update().get(pk=refund_id)
        if refund.status in (RefundStatus.SUCCEEDED, RefundStatus.FAILED):
            return refund
        Refund.objects.filter(pk=refund.pk).update(status=RefundStatus.FAILED, failure_message=message[:300])
        Payment.objects.filter(pk=refund.payment_id).update(needs_review=True)
        record_audit(
            action="refund.failed",
            actor_label="system",
            obj=refund,
            amount_minor=refund.amount_minor,
            currency=refund.currency,
            outcome="failure",
            message=message,
            now=now,
        )
    refund.refresh_from_db()
    logger.error("refund %s failed: %s", refund.pk, message)
    return refund
