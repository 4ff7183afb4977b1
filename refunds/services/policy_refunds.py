"""Refunds through the refund policy: quotes per line, staff overrides (audited), maker-checker approval
above a threshold, store credit, and force majeure (an organizer cancels an event).

Guards, all under the order row lock (then the payment's): the order must be paid or partially refunded
(`order_not_refundable`), no open dispute on the payment (`refund_blocked_by_dispute`), and the gross part
undone never more than what is left of the capture (`refund_exceeds_captured`).

A refund's gross part R per line is split against what is still unrefunded of the line's commission, VAT on
commission and payee share (so the last refund takes the exact rest). The policy keeps a fee F and, when it
does not return commission, the commission part; the buyer gets the rest (see `refund_postings` for the
ledger). Lines of one refund must share `commission_returned` and `fee_to` (refund mixed lines separately).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Sum

from core.audit import record_audit
from core.errors import DomainError, ErrorCode
from ledger.money import Money, allocate
from payments.models import Order, OrderLine, OrderStatus, Payment
from refunds.models import (
    DisputeStatus,
    FeeTo,
    Refund,
    RefundLine,
    RefundMethod,
    RefundPolicy,
    RefundReason,
    RefundStatus,
)
from refunds.policy import RefundQuote, evaluate_refund, policy_for_line
from refunds.services.core import ACTIVE_STATUSES, _create_refund, _queue_execution, complete_refund, refundable_minor

logger = logging.getLogger(__name__)

REFUNDABLE_ORDER_STATUSES = (OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED)


@dataclass
class LineQuote:
    line: OrderLine
    split: tuple[int, int, int]  # commission, VAT on commission, payee share of the part refunded
    quote: RefundQuote

    @property
    def amount_minor(self) -> int:
        return sum(self.split)


@dataclass
class OrderQuote:
    currency: str
    lines: list[LineQuote] = field(default_factory=list)

    @property
    def allowed(self) -> bool:
        return bool(self.lines) and all(item.quote.allowed for item in self.lines)

    @property
    def gross_minor(self) -> int:
        return sum(item.amount_minor for item in self.lines)

    @property
    def fee_minor(self) -> int:
        return sum(item.quote.fee_minor for item in self.lines if item.quote.allowed)

    @property
    def refundable_minor(self) -> int:
        return sum(item.quote.refundable_minor for item in self.lines if item.quote.allowed)

    @property
    def methods(self) -> tuple[str, ...]:
        allowed = [set(item.quote.methods) for item in self.lines]
        common = set.intersection(*allowed) if allowed else set()
        return tuple(m for m in RefundMethod.values if m in common)

    @property
    def reason(self) -> str:
        return " ".join(f"{item.line.description}: {item.quote.reason}" for item in self.lines)


def _remaining_splits(order: Order) -> dict[int, tuple[int, int, int]]:
    taken = {
        row["order_line_id"]: row
        for row in RefundLine.objects.filter(order_line__order=order, refund__status__in=ACTIVE_STATUSES)
        .values("order_line_id")
        .annotate(c=Sum("commission_minor"), v=Sum("commission_vat_minor"), p=Sum("payee_share_minor"))
    }
    result = {}
    for line in order.lines.all():
        row = taken.get(line.pk, {})
        result[line.pk] = (
            line.commission_minor - (row.get("c") or 0),
            line.commission_vat_minor - (row.get("v") or 0),
            line.payee_share_minor - (row.get("p") or 0),
        )
    return result


def _requested_amounts(order: Order, lines: dict | None, amount_minor: int | None) -> dict[int, int]:
    """Gross amount to undo per line id: by lines ({id: quantity} or {id: {"amount_minor": x}} or
    {id: {"quantity": n}}), by amount (spread over what is left of the lines), or everything left."""
    remaining = {pk: sum(split) for pk, split in _remaining_splits(order).items()}
    by_id = {line.pk: line for line in order.lines.all()}
    if lines:
        wanted: dict[int, int] = {}
        for raw_id, value in lines.items():
            line = by_id.get(int(raw_id))
            if line is None:
                raise DomainError(
                    f"Order line {raw_id} is not part of this order.", code=ErrorCode.UNKNOWN_ORDER_LINE, status=400
                )
            if isinstance(value, dict):
                if value.get("amount_minor") is not None:
                    gross = int(value["amount_minor"])
                else:
                    gross = int(value.get("quantity") or 0) * line.unit_amount_minor
            else:
                gross = int(value) * line.unit_amount_minor
            if gross <= 0:
                raise DomainError("The refund amount must be greater than zero.", code=ErrorCode.AMOUNT_NOT_POSITIVE)
            if gross > remaining[line.pk]:
                raise DomainError(
                    f"Only {Money(remaining[line.pk], order.currency)} of “{line.description}” can still be refunded.",
                    code=ErrorCode.REFUND_EXCEEDS_CAPTURED,
                    status=409,
                )
            wanted[line.pk] = gross
        return wanted
    ids = [pk for pk in sorted(by_id, key=lambda pk: by_id[pk].position) if remaining[pk] > 0]
    if amount_minor is None:
        return {pk: remaining[pk] for pk in ids}
    if amount_minor <= 0:
        raise DomainError("The refund amount must be greater than zero.", code=ErrorCode.AMOUNT_NOT_POSITIVE)
    total_left = sum(remaining[pk] for pk in ids)
    if amount_minor > total_left:
        raise DomainError(
            f"Only {Money(total_left, order.currency)} can still be refunded.",
            code=ErrorCode.REFUND_EXCEEDS_CAPTURED,
            status=409,
        )
    parts = allocate(amount_minor, [remaining[pk] for pk in ids])
    return {pk: part for pk, part in zip(ids, parts, strict=True) if part}


def quote_refund(
    *,
    order: Order,
    now: datetime,
    lines: dict | None = None,
    amount_minor: int | None = None,
    force_majeure: bool = False,
) -> OrderQuote:
    """What the policies allow for this request, line by line (read only; the refund re-quotes under lock)."""
    wanted = _requested_amounts(order, lines, amount_minor)
    splits = _remaining_splits(order)
    policies = list(RefundPolicy.objects.filter(active=True).prefetch_related("tiers").order_by("pk"))
    result = OrderQuote(currency=order.currency)
    for line in order.lines.select_related("refund_policy").order_by("position"):
        gross = wanted.get(line.pk)
        if not gross:
            continue
        left = splits[line.pk]
        split = tuple(allocate(gross, list(left))) if any(left) else (0, 0, gross)
        quote = evaluate_refund(
            policy=policy_for_line(line, policies),
            line=line,
            amount_minor=gross,
            currency=order.currency,
            now=now,
            force_majeure=force_majeure,
            paid_at=order.paid_at,
            split=split,
        )
        result.lines.append(LineQuote(line=line, split=split, quote=quote))
    return result


def approval_threshold(currency: str) -> int:
    limits = getattr(settings, "TOLLGATE_REFUND_APPROVAL_THRESHOLD", {}) or {}
    return int(limits.get(currency, limits.get("default", 50000)))


def needs_approval(*, amount_minor: int, currency: str) -> bool:
    return amount_minor > approval_threshold(currency)


def _is_staff(actor) -> bool:
    return bool(getattr(actor, "is_authenticated", False) and getattr(actor, "is_staff", False))


def request_policy_refund(
    *,
    order: Order,
    lines: dict | None = None,
    amount_minor: int | None = None,
    reason: str = RefundReason.REQUESTED_BY_CUSTOMER,
    method: str = RefundMethod.ORIGINAL,
    actor=None,
    actor_label: str = "",
    now: datetime,
    override_reason: str = "",
    force_majeure: bool = False,
    self_service: bool = False,
    skip_approval: bool = False,
    note: str = "",
    request=None,
    for_transfer: bool = False,
) -> Refund:
    """Refund by lines or by amount (or everything left) under the refund policy.

    - Inside the policy: approved and queued (store credit: completed at once), unless it returns more than
      the approval threshold and was asked by staff or an API client: then `requested` until a second staff
      user approves (`approve_refund`).
    - Outside the policy (or a fee to waive): staff and API clients pass `override_reason`, and the
      refund is the whole part asked for (no fee, commission returned), audited as `refund.override`;
      without a reason, 409 `refund_outside_policy`. A buyer's self-service request outside the policy is
      recorded as `requested` for staff (with the full part, to approve or reject).
    - Force majeure: everything back, commission returned, no fee (see `cancel_event`).
    """
    if method not in RefundMethod.values:
        raise DomainError(f"Unknown refund method {method!r}.", code=ErrorCode.VALIDATION_ERROR)
    if method == RefundMethod.TRANSFER:
        raise DomainError(
            "A transfer to another event needs the new tickets: use the transfer (API: method transfer with "
            "new_lines; admin: the refund page's transfer option).",
            code=ErrorCode.REFUND_METHOD_NOT_ALLOWED,
            status=409,
        )
    override_reason = (override_reason or "").strip()
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order.pk)
        if order.status not in REFUNDABLE_ORDER_STATUSES:
            raise DomainError(
                f"Only paid orders can be refunded; this one is {order.get_status_display().lower()}.",
                code=ErrorCode.ORDER_NOT_REFUNDABLE,
                status=409,
            )
        payment = Payment.objects.select_for_update().filter(order=order, settles_order=True).first()
        if payment is None:
            raise DomainError("This order has no payment to refund.", code=ErrorCode.ORDER_NOT_REFUNDABLE, status=409)
        if payment.disputes.filter(status__in=[DisputeStatus.OPEN, DisputeStatus.UNDER_REVIEW]).exists():
            raise DomainError(
                "This payment is disputed; it cannot be refunded until the dispute is settled.",
                code=ErrorCode.REFUND_BLOCKED_BY_DISPUTE,
                status=409,
            )
        quote = quote_refund(order=order, now=now, lines=lines, amount_minor=amount_minor, force_majeure=force_majeure)
        if not quote.lines:
            raise DomainError(
                "Nothing is left to refund on this order.", code=ErrorCode.REFUND_EXCEEDS_CAPTURED, status=409
            )
        if quote.gross_minor > refundable_minor(payment):
            raise DomainError(
                f"Only {Money(refundable_minor(payment), order.currency)} can still be refunded.",
                code=ErrorCode.REFUND_EXCEEDS_CAPTURED,
                status=409,
            )
        # The store-credit leg of a transfer to another event is allowed by the policy's transfer permission.
        permitted = set(quote.methods) | (
            {RefundMethod.STORE_CREDIT} if for_transfer and RefundMethod.TRANSFER in quote.methods else set()
        )
        outside = not quote.allowed or (method not in permitted)
        overridden = bool(override_reason) and not force_majeure
        if outside and not overridden and not self_service:
            raise DomainError(
                "The refund policy does not allow this refund"
                + ("" if quote.allowed else f" ({quote.reason})")
                + (f"; allowed methods: {', '.join(quote.methods) or 'none'}" if quote.allowed else "")
                + ". Staff can override it with a reason.",
                code=ErrorCode.REFUND_OUTSIDE_POLICY,
                status=409,
            )
        full = outside or overridden  # the whole part asked for: no fee, commission returned
        terms = {(item.quote.commission_returned, item.quote.fee_to) for item in quote.lines}
        if not full and len(terms) > 1:
            raise DomainError(
                "These lines fall under refund policies that treat commission or fees differently; "
                "refund them separately.",
                code=ErrorCode.VALIDATION_ERROR,
            )
        commission_returned, fee_to = (True, FeeTo.PAYEE) if full else next(iter(terms))
        refund_lines = []
        fee_total = kept_total = 0
        for item in quote.lines:
            c, v, p = item.split
            fee = 0 if full else item.quote.fee_minor
            kept = 0 if full else item.quote.commission_kept_minor
            if fee_to == FeeTo.PAYEE:
                fee = min(fee, p)  # the payee keeps the fee out of its own share: never below zero
            fee_total += fee
            kept_total += kept
            refund_lines.append(
                RefundLine(
                    order_line=item.line,
                    amount_minor=c + v + p,
                    commission_minor=c,
                    commission_vat_minor=v,
                    payee_share_minor=p,
                    fee_minor=fee,
                )
            )
        back = quote.gross_minor - fee_total - kept_total
        if back <= 0:
            raise DomainError(
                "Under the refund policy nothing would be paid back.", code=ErrorCode.REFUND_OUTSIDE_POLICY, status=409
            )
        policy_ids = {item.quote.policy_id for item in quote.lines if item.quote.policy_id}
        # A buyer's request outside the policy waits for staff; staff and API refunds above the threshold wait
        # for a second staff user.
        staff_needs_checker = (
            not skip_approval and not self_service and needs_approval(amount_minor=back, currency=order.currency)
        )
        status = RefundStatus.REQUESTED if (outside and self_service) or staff_needs_checker else RefundStatus.APPROVED
        snapshot: dict[str, Any] = {
            "lines": [
                {"order_line": item.line.pk, "split": list(item.split), **item.quote.as_dict()} for item in quote.lines
            ],
            "outside_policy": outside,
            "overridden": overridden,
            "requested_method": method,
        }
        refund = _create_refund(
            order=order,
            payment=payment,
            amount_minor=back,
            reason=reason if reason in RefundReason.values else RefundReason.OTHER,
            status=status,
            actor=actor,
            actor_label=actor_label,
            note=note,
            now=now,
            refund_lines=refund_lines,
            method=method,
            fee_minor=fee_total,
            fee_to=fee_to,
            commission_returned=commission_returned,
            commission_kept_minor=kept_total,
            policy_id=next(iter(policy_ids)) if len(policy_ids) == 1 else None,
            policy_snapshot=snapshot,
            force_majeure=force_majeure,
            override_reason=override_reason if overridden else "",
        )
        record_audit(
            action="refund.request",
            actor=actor,
            actor_label=actor_label,
            obj=refund,
            request=request,
            amount_minor=back,
            currency=order.currency,
            idempotency_key=getattr(request, "idempotency_key", "") if request is not None else "",
            message=f"{reason}; {status}; fee {fee_total}; method {method}",
            metadata={"quote": quote.reason[:2000], "outside_policy": outside, "force_majeure": force_majeure},
            now=now,
        )
        if overridden:
            record_audit(
                action="refund.override",
                actor=actor,
                actor_label=actor_label,
                obj=refund,
                request=request,
                amount_minor=back,
                currency=order.currency,
                message=override_reason,
                metadata={"policy_would_allow": quote.refundable_minor if quote.allowed else 0},
                now=now,
            )
        if status == RefundStatus.APPROVED:
            _start(refund, now=now)
    refund.refresh_from_db()
    return refund


def _start(refund: Refund, *, now: datetime) -> None:
    """Approved: store credit completes at once (no provider call); otherwise the provider task is queued."""
    if refund.method == RefundMethod.STORE_CREDIT:
        complete_refund(refund_id=refund.pk, provider_ref="", now=now)
        _issue_store_credit(refund, now=now)
    else:
        _queue_execution(refund)


def _issue_store_credit(refund: Refund, *, now: datetime) -> None:
    """The store-credit row, code and e-mail come from `refunds.store_credit` when it is installed; the ledger
    side (credit `buyers:store_credit`) is already posted by the refund."""
    try:
        from refunds import store_credit
    except ImportError:
        return
    create = getattr(store_credit, "create_store_credit_for_refund", None)
    if create is not None:
        create(refund=Refund.objects.get(pk=refund.pk), now=now)
