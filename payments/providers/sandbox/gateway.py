"""The simulated gateway's own logic: sessions, the buyer's choices on its hosted page, refunds, and
signed event delivery to the merchant. Nothing in here knows about our orders or ledger."""

from __future__ import annotations

import json
import secrets
import time
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ledger.money import exponent, percent_of
from payments.providers.sandbox.models import SandboxDispute, SandboxEvent, SandboxRefund, SandboxSession
from payments.providers.sandbox.signing import compute_signature

SESSION_TTL = timedelta(hours=1)
EVIDENCE_WINDOW = timedelta(days=7)
DISPUTE_REASONS = {
    "fraudulent": "The cardholder says they did not make the payment.",
    "product_not_received": "The buyer says the goods or the event were not delivered.",
    "product_unacceptable": "The buyer says the goods were defective or not as described.",
    "duplicate": "The buyer says they were charged twice.",
    "general": "The bank gave no specific reason.",
}
DECLINE_REASONS = {
    "card_declined": "The card was declined.",
    "insufficient_funds": "The card has insufficient funds.",
    "expired_card": "The card has expired.",
    "do_not_honor": "The bank declined the payment without giving a reason.",
    "authentication_failed": "3-D Secure authentication failed.",
}
OPEN_STATES = (SandboxSession.Status.OPEN, SandboxSession.Status.REQUIRES_ACTION)


class GatewayError(Exception):
    def __init__(self, message: str, *, code: str):
        self.code = code
        super().__init__(message)


def sandbox_fee(amount_minor: int, currency: str) -> int:
    """1.4 % + 0.25 in the currency's main unit (none for zero-decimal currencies)."""
    exp = exponent(currency)
    fixed = 25 * 10 ** (exp - 2) if exp >= 2 else 0
    return min(amount_minor, percent_of(amount_minor, 140) + fixed)


def session_as_dict(session: SandboxSession) -> dict[str, Any]:
    return {
        "id": session.public_id,
        "object": "checkout_session",
        "status": session.status,
        "amount": session.amount_minor,
        "currency": session.currency,
        "fee": session.fee_minor if session.status == SandboxSession.Status.SUCCEEDED else 0,
        "amount_refunded": session.refunded_minor,
        "decline_code": session.decline_code or None,
        "decline_message": DECLINE_REASONS.get(session.decline_code) if session.decline_code else None,
        "reference": session.reference,
        "metadata": session.metadata,
        "payment": f"sbx_pay_{session.token.hex[:16]}" if session.status == SandboxSession.Status.SUCCEEDED else None,
        "url": f"{settings.PUBLIC_BASE_URL}/sandbox/pay/{session.token}/",
        "expires_at": int(session.expires_at.timestamp()),
    }


def get_session(public_id: str) -> SandboxSession:
    token = public_id.removeprefix("sbx_")
    try:
        return SandboxSession.objects.get(token=token)
    except (SandboxSession.DoesNotExist, ValueError):
        raise GatewayError(f"No such checkout session: {public_id}", code="resource_missing") from None


def create_session(
    *,
    idempotency_key: str,
    merchant_name: str,
    description: str,
    reference: str,
    amount_minor: int,
    currency: str,
    return_url: str,
    cancel_url: str,
    notification_url: str,
    metadata: dict[str, Any],
    now: datetime,
) -> SandboxSession:
    params = {"amount_minor": amount_minor, "currency": currency, "reference": reference}
    existing = SandboxSession.objects.filter(idempotency_key=idempotency_key).first()
    if existing is not None:
        if any(getattr(existing, key) != value for key, value in params.items()):
            raise GatewayError(
                "Keys for idempotent requests can only be used with the same parameters.", code="idempotency_error"
            )
        return existing
    return SandboxSession.objects.create(
        idempotency_key=idempotency_key,
        merchant_name=merchant_name,
        description=description[:300],
        return_url=return_url,
        cancel_url=cancel_url,
        notification_url=notification_url,
        metadata=metadata,
        expires_at=now + SESSION_TTL,
        created_at=now,
        **params,
    )


def sandbox_dispute_fee(currency: str) -> int:
    """15 in the currency's main unit."""
    return 15 * 10 ** exponent(currency)


def dispute_as_dict(dispute: SandboxDispute) -> dict[str, Any]:
    """A dispute as the gateway's API shows it; its balance transactions are the money it withdrew from the
    merchant's sandbox balance (the amount and a fee) and, when won, gave back (the amount, not the fee)."""
    session = dispute.session
    moves = [{"id": f"sbx_txn_{dispute.pk}_w", "amount": -dispute.amount_minor, "fee": dispute.fee_minor}]
    if dispute.status == SandboxDispute.Status.WON:
        moves.append({"id": f"sbx_txn_{dispute.pk}_r", "amount": dispute.amount_minor, "fee": 0})
    return {
        "id": dispute.public_id,
        "object": "dispute",
        "status": dispute.status,
        "amount": dispute.amount_minor,
        "currency": session.currency,
        "reason": dispute.reason,
        "session": session.public_id,
        "payment": f"sbx_pay_{session.token.hex[:16]}",
        "metadata": session.metadata,
        "evidence_due_by": int(dispute.evidence_due_by.timestamp()),
        "created": int(dispute.created_at.timestamp()),
        "balance_transactions": [{**move, "currency": session.currency} for move in moves],
    }


def get_dispute(public_id: str) -> SandboxDispute:
    try:
        return SandboxDispute.objects.select_related("session").get(pk=int(public_id.removeprefix("sbx_dp_")))
    except (SandboxDispute.DoesNotExist, ValueError):
        raise GatewayError(f"No such dispute: {public_id}", code="resource_missing") from None


def open_dispute(*, session_id: str, reason: str, now: datetime, amount_minor: int | None = None) -> SandboxDispute:
    """The buyer's bank disputes a succeeded payment: by default everything not refunded. One per payment."""
    session = get_session(session_id)
    with transaction.atomic():
        session = SandboxSession.objects.select_for_update().get(pk=session.pk)
        if session.status != SandboxSession.Status.SUCCEEDED:
            raise GatewayError("Only a succeeded payment can be disputed.", code="charge_not_disputable")
        if session.disputes.exists():
            raise GatewayError("This payment is already disputed.", code="charge_disputed")
        left = session.amount_minor - session.refunded_minor
        amount = left if amount_minor is None else amount_minor
        if amount <= 0 or amount > left:
            raise GatewayError("Nothing left to dispute on this payment.", code="amount_too_large")
        dispute = SandboxDispute.objects.create(
            session=session,
            amount_minor=amount,
            fee_minor=sandbox_dispute_fee(session.currency),
            reason=reason if reason in DISPUTE_REASONS else "general",
            evidence_due_by=now + EVIDENCE_WINDOW,
            created_at=now,
        )
        _emit(session, "dispute.created", now, obj=dispute_as_dict(dispute))
        return dispute


def submit_dispute_evidence(public_id: str, *, now: datetime) -> SandboxDispute:
    return _move_dispute(public_id, to=SandboxDispute.Status.UNDER_REVIEW, event_type="dispute.updated", now=now)


def close_dispute(public_id: str, *, won: bool, now: datetime) -> SandboxDispute:
    to = SandboxDispute.Status.WON if won else SandboxDispute.Status.LOST
    return _move_dispute(public_id, to=to, event_type="dispute.closed", now=now)


def _move_dispute(public_id: str, *, to: str, event_type: str, now: datetime) -> SandboxDispute:
    dispute = get_dispute(public_id)
    with transaction.atomic():
        dispute = SandboxDispute.objects.select_for_update().select_related("session").get(pk=dispute.pk)
        if dispute.status in (SandboxDispute.Status.WON, SandboxDispute.Status.LOST):
            raise GatewayError("This dispute is already closed.", code="dispute_closed")
        dispute.status = to
        if event_type == "dispute.closed":
            dispute.closed_at = now
        dispute.save(update_fields=["status", "closed_at"])
        _emit(dispute.session, event_type, now, obj=dispute_as_dict(dispute))
        return dispute


def _emit(
    session: SandboxSession, event_type: str, now: datetime, *, obj: dict[str, Any] | None = None
) -> SandboxEvent:
    event_id = f"evt_sbx_{secrets.token_hex(12)}"
    event = SandboxEvent.objects.create(
        event_id=event_id,
        session=session,
        event_type=event_type,
        created_at=now,
        payload={
            "id": event_id,
            "object": "event",
            "type": event_type,
            "created": int(now.timestamp()),
            "data": {"object": obj if obj is not None else session_as_dict(session)},
        },
    )
    from payments.providers.sandbox.tasks import deliver_sandbox_event

    transaction.on_commit(lambda: deliver_sandbox_event.delay(event_pk=event.pk))
    return event


def _transition(
    session_token: str, *, allowed: tuple[str, ...], to: str, event_type: str, now: datetime, **fields: Any
) -> SandboxSession:
    with transaction.atomic():
        session = SandboxSession.objects.select_for_update().get(token=session_token)
        if session.status in OPEN_STATES and session.expires_at <= now:
            session.status = SandboxSession.Status.EXPIRED
            session.save(update_fields=["status"])
            _emit(session, "payment.expired", now)
            raise GatewayError("This payment session has expired.", code="session_expired")
        if session.status not in allowed:
            raise GatewayError("This payment session is already closed.", code="session_closed")
        session.status = to
        for key, value in fields.items():
            setattr(session, key, value)
        session.save()
        _emit(session, event_type, now)
        return session


def buyer_pays(session_token: str, *, now: datetime) -> SandboxSession:
    session = SandboxSession.objects.get(token=session_token)
    return _transition(
        session_token,
        allowed=OPEN_STATES,
        to=SandboxSession.Status.SUCCEEDED,
        event_type="payment.succeeded",
        now=now,
        completed_at=now,
        fee_minor=sandbox_fee(session.amount_minor, session.currency),
    )


def buyer_declined(session_token: str, *, reason: str, now: datetime) -> SandboxSession:
    if reason not in DECLINE_REASONS:
        reason = "card_declined"
    return _transition(
        session_token,
        allowed=OPEN_STATES,
        to=SandboxSession.Status.FAILED,
        event_type="payment.failed",
        now=now,
        completed_at=now,
        decline_code=reason,
    )


def buyer_starts_3ds(session_token: str, *, now: datetime) -> SandboxSession:
    return _transition(
        session_token,
        allowed=(SandboxSession.Status.OPEN,),
        to=SandboxSession.Status.REQUIRES_ACTION,
        event_type="payment.requires_action",
        now=now,
    )


def buyer_abandons(session_token: str, *, now: datetime) -> SandboxSession:
    return _transition(
        session_token,
        allowed=OPEN_STATES,
        to=SandboxSession.Status.CANCELED,
        event_type="payment.canceled",
        now=now,
        completed_at=now,
    )


def expire_session(public_id: str, *, now: datetime) -> SandboxSession:
    session = get_session(public_id)
    try:
        return _transition(
            str(session.token),
            allowed=OPEN_STATES,
            to=SandboxSession.Status.EXPIRED,
            event_type="payment.expired",
            now=now,
            completed_at=now,
        )
    except GatewayError:
        return SandboxSession.objects.get(pk=session.pk)


def create_refund(*, session_id: str, amount_minor: int, idempotency_key: str, now: datetime) -> SandboxRefund:
    session = get_session(session_id)
    with transaction.atomic():
        session = SandboxSession.objects.select_for_update().get(pk=session.pk)
        existing = SandboxRefund.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            if existing.session_id != session.pk or existing.amount_minor != amount_minor:
                raise GatewayError(
                    "Keys for idempotent requests can only be used with the same parameters.", code="idempotency_error"
                )
            return existing
        if session.status != SandboxSession.Status.SUCCEEDED:
            raise GatewayError("Only a succeeded payment can be refunded.", code="charge_not_refundable")
        if amount_minor <= 0 or session.refunded_minor + amount_minor > session.amount_minor:
            raise GatewayError("The refund exceeds what is left to refund.", code="amount_too_large")
        refund = SandboxRefund.objects.create(
            session=session, idempotency_key=idempotency_key, amount_minor=amount_minor, created_at=now
        )
        session.refunded_minor += amount_minor
        session.save(update_fields=["refunded_minor"])
        return refund


def signed_delivery(event: SandboxEvent, *, now: float | None = None) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one delivery. While the secret is being rolled (SANDBOX_WEBHOOK_SECRET is
    "new,old"), the gateway signs with each secret, one v1 per secret, as Stripe does during a roll."""
    body = json.dumps(event.payload, separators=(",", ":"), sort_keys=True).encode()
    timestamp = int(now if now is not None else time.time())
    secrets_ = [s.strip() for s in (settings.SANDBOX_WEBHOOK_SECRET or "").split(",") if s.strip()]
    header = f"t={timestamp}" + "".join(
        f",v1={compute_signature(payload=body, secret=secret, timestamp=timestamp)}" for secret in secrets_
    )
    return body, {"Content-Type": "application/json", "Tollgate-Sandbox-Signature": header}


def deliver(event_pk: int, *, now: datetime | None = None) -> bool:
    """POST one event to the merchant. True once delivered (2xx); safe to call again."""
    import requests

    event = SandboxEvent.objects.select_related("session").get(pk=event_pk)
    if event.delivered_at is not None:
        return True
    body, headers = signed_delivery(event)
    moment = now or timezone.now()
    try:
        response = requests.post(event.session.notification_url, data=body, headers=headers, timeout=10)
        ok = 200 <= response.status_code < 300
        error = "" if ok else f"HTTP {response.status_code}"
    except requests.RequestException as exc:
        ok, error = False, f"{type(exc).__name__}"
    SandboxEvent.objects.filter(pk=event.pk).update(
        attempts=event.attempts + 1, delivered_at=moment if ok else None, last_error=error[:300]
    )
    return ok
