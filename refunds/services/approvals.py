"""Maker-checker: a second staff user with `refunds.approve_refund` approves or rejects a refund that waits
for approval; the requester never decides their own. Both are audited; the buyer who asked is told."""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction

from core.audit import record_audit
from core.errors import DomainError, ErrorCode
from payments.models import Order, Payment
from refunds.models import (
    DisputeStatus,
    Refund,
    RefundStatus,
)
from refunds.notifications import queue_refund_decision_email
from refunds.services.policy_refunds import _is_staff, _start

logger = logging.getLogger(__name__)


def _check_approver(refund: Refund, actor) -> None:
    if not _is_staff(actor) or not actor.has_perm("refunds.approve_refund"):
        raise DomainError("You need the permission to approve refunds.", code=ErrorCode.PERMISSION_DENIED, status=403)
    if refund.requested_by_id is not None and refund.requested_by_id == actor.pk:
        raise DomainError(
            "A refund must be approved by someone other than the person who asked for it.",
            code=ErrorCode.APPROVER_IS_REQUESTER,
            status=409,
        )
    if refund.status != RefundStatus.REQUESTED:
        raise DomainError(
            f"This refund is {refund.get_status_display().lower()}, not waiting for approval.",
            code=ErrorCode.REFUND_NOT_PENDING,
            status=409,
        )


def approve_refund(*, refund_id: int, actor, now: datetime, request=None) -> Refund:
    """The checker: a second staff user with `refunds.approve_refund` approves; execution is then queued."""
    try:
        with transaction.atomic():
            refund = Refund.objects.get(pk=refund_id)
            Order.objects.select_for_update().get(pk=refund.order_id)
            payment = Payment.objects.select_for_update().get(pk=refund.payment_id)
            refund = Refund.objects.select_for_update().get(pk=refund_id)
            _check_approver(refund, actor)
            if payment.disputes.filter(status__in=[DisputeStatus.OPEN, DisputeStatus.UNDER_REVIEW]).exists():
                raise DomainError(
                    "This payment is disputed; it cannot be refunded until the dispute is settled.",
                    code=ErrorCode.REFUND_BLOCKED_BY_DISPUTE,
                    status=409,
                )
            Refund.objects.filter(pk=refund.pk).update(status=RefundStatus.APPROVED, approved_by=actor, approved_at=now)
            refund.refresh_from_db()
            record_audit(
                action="refund.approve",
                actor=actor,
                obj=refund,
                request=request,
                amount_minor=refund.amount_minor,
                currency=refund.currency,
                now=now,
            )
            _start(refund, now=now)
            queue_refund_decision_email(refund)
    except DomainError as exc:
        record_audit(
            action="refund.approve",
            actor=actor,
            object_type="refunds.refund",
            object_id=refund_id,
            request=request,
            outcome="denied",
            message=f"{exc.code}: {exc.message}",
            now=now,
        )
        raise
    refund.refresh_from_db()
    return refund


def reject_refund(*, refund_id: int, actor, reason: str, now: datetime, request=None) -> Refund:
    """The checker declines: the refund is canceled (it no longer holds part of the capture)."""
    if not (reason or "").strip():
        raise DomainError("Say why the refund is rejected.", code=ErrorCode.VALIDATION_ERROR)
    with transaction.atomic():
        refund = Refund.objects.select_for_update().get(pk=refund_id)
        _check_approver(refund, actor)
        Refund.objects.filter(pk=refund.pk).update(
            status=RefundStatus.CANCELED, rejection_reason=reason.strip(), approved_by=actor, approved_at=now
        )
        record_audit(
            action="refund.reject",
            actor=actor,
            obj=refund,
            request=request,
            amount_minor=refund.amount_minor,
            currency=refund.currency,
            message=reason,
            now=now,
        )
        refund.refresh_from_db()
        queue_refund_decision_email(refund)
    return refund
