"""Test disputes in the sandbox, started by staff from the admin. Nothing here touches our disputes or the
ledger: the sandbox gateway opens (or closes) the dispute on its side and sends its signed `dispute.*` event
to /webhooks/sandbox/, which goes through the inbox and `refunds.disputes` like a real provider's event."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings

from core.audit import record_audit
from payments.models import Payment, PaymentStatus
from payments.providers.base import ProviderDisputeState, ProviderError
from payments.providers.registry import get_provider
from refunds.models import Dispute


class SandboxDisputeError(Exception):
    pass


def sandbox_disputes_enabled() -> bool:
    return bool(settings.SANDBOX_ENABLED)


def _sandbox():
    if not sandbox_disputes_enabled():
        raise SandboxDisputeError("The sandbox is not enabled.")
    return get_provider("sandbox")


def open_sandbox_dispute(*, payment: Payment, reason: str, actor, request=None, now: datetime) -> ProviderDisputeState:
    provider = _sandbox()
    if payment.provider != "sandbox":
        raise SandboxDisputeError(f"Payment {payment.pk} was not made through the sandbox.")
    if payment.status != PaymentStatus.SUCCEEDED:
        raise SandboxDisputeError(f"Payment {payment.pk} has not succeeded.")
    try:
        state = provider.open_test_dispute(payment=payment, reason=reason)
    except ProviderError as exc:
        raise SandboxDisputeError(f"Payment {payment.pk}: {exc}") from exc
    record_audit(
        action="dispute.sandbox_opened",
        actor=actor,
        obj=payment,
        request=request,
        amount_minor=state.amount.amount_minor,
        currency=state.amount.currency,
        message=state.provider_ref,
        now=now,
    )
    return state


def move_sandbox_dispute(*, dispute: Dispute, to: str, actor, request=None, now: datetime) -> ProviderDisputeState:
    """`to`: "under_review" (evidence submitted), "won" or "lost"."""
    provider = _sandbox()
    if dispute.payment.provider != "sandbox":
        raise SandboxDisputeError(f"Dispute {dispute.provider_ref} is not a sandbox dispute.")
    try:
        if to == "under_review":
            state = provider.submit_test_dispute_evidence(dispute=dispute)
        else:
            state = provider.close_test_dispute(dispute=dispute, won=to == "won")
    except ProviderError as exc:
        raise SandboxDisputeError(f"Dispute {dispute.provider_ref}: {exc}") from exc
    record_audit(
        action=f"dispute.sandbox_{to}",
        actor=actor,
        obj=dispute,
        request=request,
        amount_minor=dispute.amount_minor,
        currency=dispute.currency,
        now=now,
    )
    return state
