"""Reconciling refunds the provider reports (ours completing or failing, refunds made in the provider's
dashboard or portal ingested once) and the janitor for refunds whose task was lost."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import transaction

from core.audit import record_audit
from core.errors import DomainError, ErrorCode
from payments.models import Order, Payment
from payments.providers.base import (
    ProviderRefundState,
)
from refunds.models import Refund, RefundReason, RefundStatus
from refunds.services.core import (
    _create_refund,
    _queue_execution,
    complete_refund,
    fail_refund,
    refundable_minor,
)
from refunds.services.split import card_refundable_minor

logger = logging.getLogger(__name__)


def apply_provider_refund(*, payment: Payment, state: ProviderRefundState, now: datetime) -> Refund | None:
    """Reconcile one refund the provider reports with ours: complete or fail ours, or ingest (once) a refund
    made at the provider, e.g. in the Stripe dashboard. Called with the payment succeeded."""
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=payment.order_id)
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        refund = None
        if state.our_refund_id is not None:
            refund = Refund.objects.filter(pk=state.our_refund_id, payment=payment).first()
        if refund is None:
            refund = Refund.objects.filter(payment=payment, provider_ref=state.provider_ref).first()
        if refund is None:
            if state.status in ("failed", "canceled"):
                return None  # made and undone at the provider: no money moved
            refund = _ingest_provider_refund(order=order, payment=payment, state=state, now=now)
        elif not refund.provider_ref:
            Refund.objects.filter(pk=refund.pk).update(provider_ref=state.provider_ref)
        if state.status == "succeeded":
            return complete_refund(refund_id=refund.pk, provider_ref=state.provider_ref, now=now)
        if state.status in ("failed", "canceled"):
            if refund.status == RefundStatus.SUCCEEDED:
                # A refund that fails after it succeeded returns the money to us; undoing a posted refund
                # is a staff decision, so it is flagged rather than reversed automatically.
                Payment.objects.filter(pk=payment.pk).update(needs_review=True)
                logger.error("refund %s failed at the provider after it had succeeded", refund.pk)
                return refund
            return fail_refund(refund_id=refund.pk, message=state.failure_message or state.status, now=now)
        return refund


def _ingest_provider_refund(*, order: Order, payment: Payment, state: ProviderRefundState, now: datetime) -> Refund:
    if state.amount.currency != payment.currency or state.amount.amount_minor > min(
        refundable_minor(payment), card_refundable_minor(payment)
    ):
        raise DomainError(
            f"Provider refund {state.provider_ref} of {state.amount} exceeds what payment {payment.pk} can refund.",
            code=ErrorCode.REFUND_EXCEEDS_CAPTURED,
            status=409,
        )
    if not payment.settles_order:
        # A refund of money the order never kept: it replaces the automatic overpayment refund.
        Refund.objects.filter(payment=payment, is_overpayment=True, status=RefundStatus.APPROVED).update(
            status=RefundStatus.CANCELED
        )
        refund = Refund.objects.create(
            order=order,
            payment=payment,
            amount_minor=state.amount.amount_minor,
            currency=payment.currency,
            reason=RefundReason.MADE_AT_PROVIDER,
            status=RefundStatus.PROCESSING,
            provider_ref=state.provider_ref,
            is_overpayment=True,
            requested_by_label=f"{payment.provider} dashboard",
            created_at=now,
        )
    else:
        refund = _create_refund(
            order=order,
            payment=payment,
            amount_minor=state.amount.amount_minor,
            reason=RefundReason.MADE_AT_PROVIDER,
            status=RefundStatus.PROCESSING,
            actor_label=f"{payment.provider} dashboard",
            provider_ref=state.provider_ref,
            now=now,
        )
    record_audit(
        action="refund.ingested",
        actor_label=f"{payment.provider} dashboard",
        obj=refund,
        amount_minor=refund.amount_minor,
        currency=refund.currency,
        message=state.provider_ref,
        now=now,
    )
    return refund


def resend_stuck_refunds(*, now: datetime, older_than: timedelta = timedelta(minutes=15)) -> int:
    """Janitor: refunds approved or processing for a while (their task was lost, or its retries ran out on
    an unknown outcome) are sent again. The provider call reuses the refund's idempotency key, so a refund
    that did happen is only confirmed, never made twice."""
    stuck = Refund.objects.filter(
        status__in=[RefundStatus.APPROVED, RefundStatus.PROCESSING], updated_at__lt=now - older_than
    )
    ids = list(stuck.order_by("updated_at").values_list("pk", flat=True)[:200])
    for refund_id in ids:
        _queue_execution(Refund(pk=refund_id))
    return len(ids)
