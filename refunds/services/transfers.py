"""Transfer to another event (DESIGN.md §8): credit for the old lines + a new order for the new event paid
with that credit, the difference charged or left as credit.

`transfer_to_event` does it in one DB transaction:

1. The old lines are refunded under the refund policy as store credit (`request_policy_refund` with method
   `store_credit`: the policy's fee is kept, commission per policy; ledger `refund:<id>` credits
   `buyers:store_credit`), which issues a credit with a code (e-mailed to the buyer).
2. A new order for the new lines is created for the same buyer (e-mail, country, currency).
3. The credit is applied to it: if it covers the new order, the order is paid with it at once
   (`pay_with_store_credit`: `store_credit_spend:<id>` + `capture:payment:<id>` through
   `provider:store_credit:clearing`) and what is left stays on the code (the buyer has its e-mail); if the new
   order costs more, the credit is reserved for it (`reserve_store_credit`) and the buyer pays the difference
   on the new order's checkout page (the split payment: when the provider payment succeeds, the capture and
   the spend are posted together).

Rules: the old lines' policy must allow transfers (`allow_transfer`; the refund leg is a store-credit refund,
allowed by that permission alone), unless staff override with a reason (then the whole part, no fee, as any override).
A refund that needs a second staff user's approval (maker-checker) stops the transfer after step 1: the
refund waits in `requested`; once approved its credit is issued and e-mailed, and the buyer can use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction

from core.errors import DomainError, ErrorCode
from payments.models import Order, Payment
from payments.services.orders import LineInput, create_order
from refunds.models import (
    Refund,
    RefundMethod,
    RefundReason,
    RefundStatus,
    StoreCredit,
    StoreCreditReservation,
)


@dataclass
class TransferResult:
    refund: Refund
    credit: StoreCredit | None = None
    new_order: Order | None = None
    payment: Payment | None = None  # the new order paid with the credit alone
    reservation: StoreCreditReservation | None = None  # the credit applied; the difference is to pay

    @property
    def difference_due_minor(self) -> int:
        """What the buyer still pays on the new order's checkout page (0 when the credit covered it)."""
        if self.new_order is None or self.payment is not None:
            return 0
        return self.new_order.total_minor - (self.reservation.amount_minor if self.reservation else 0)

    @property
    def credit_left_minor(self) -> int:
        """What the buyer can still spend of the credit (not counting what is applied to the new order)."""
        from refunds.store_credit import available_minor

        if self.credit is None:
            return 0
        self.credit.refresh_from_db()
        return available_minor(self.credit)


def transfer_to_event(
    *,
    order: Order,
    new_lines: Sequence[LineInput],
    now: datetime,
    lines: dict | None = None,
    amount_minor: int | None = None,
    actor=None,
    actor_label: str = "",
    override_reason: str = "",
    note: str = "",
    request=None,
) -> TransferResult:
    """Refund `lines` of `order` as store credit under the policy and buy `new_lines` with it (see above)."""
    from refunds.services.policy_refunds import quote_refund, request_policy_refund
    from refunds.store_credit import pay_with_store_credit, reserve_store_credit

    if not new_lines:
        raise DomainError("Say which tickets to transfer to.", code=ErrorCode.VALIDATION_ERROR)
    override_reason = (override_reason or "").strip()
    quote = quote_refund(order=order, now=now, lines=lines, amount_minor=amount_minor)
    if not override_reason and quote.lines and RefundMethod.TRANSFER not in quote.methods:
        raise DomainError(
            "The refund policy does not allow transfers to another event for these tickets. "
            "Staff can override it with a reason.",
            code=ErrorCode.REFUND_METHOD_NOT_ALLOWED,
            status=409,
        )
    with transaction.atomic():
        refund = request_policy_refund(
            order=order,
            lines=lines,
            amount_minor=amount_minor,
            reason=RefundReason.REQUESTED_BY_CUSTOMER,
            method=RefundMethod.STORE_CREDIT,
            for_transfer=True,
            actor=actor,
            actor_label=actor_label,
            now=now,
            override_reason=override_reason,
            note=(note or "Transfer to another event").strip(),
            request=request,
        )
        result = TransferResult(refund=refund)
        if refund.status != RefundStatus.SUCCEEDED:
            return result  # waits for a second staff user's approval; its credit is issued then
        result.credit = StoreCredit.objects.get(source_refund=refund)
        result.new_order = create_order(
            currency=order.currency,
            lines=new_lines,
            buyer_email=order.buyer_email,
            buyer_country=order.buyer_country,
            buyer_vat_id=order.buyer_vat_id,
            api_client=order.api_client,
            description=f"Transfer from order {order.short_token}",
            metadata={"transferred_from": str(order.token), "refund": refund.pk},
            now=now,
            actor_label=actor_label or "transfer",
        )
        if result.credit.remaining_minor >= result.new_order.total_minor:
            result.payment = pay_with_store_credit(order=result.new_order, code=result.credit.code, now=now)
        else:
            result.reservation = reserve_store_credit(order=result.new_order, code=result.credit.code, now=now)
        result.new_order.refresh_from_db()
    return result
