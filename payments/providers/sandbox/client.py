"""The sandbox gateway's "SDK": the only module of the adapter that reaches the gateway. It speaks in plain
dicts, as an HTTP API would, so the adapter maps them exactly as it would map a real provider's JSON."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from payments.providers.sandbox import gateway
from payments.providers.sandbox.gateway import GatewayError

__all__ = [
    "GatewayError",
    "close_dispute",
    "create_checkout_session",
    "create_refund",
    "expire_checkout_session",
    "open_dispute",
    "retrieve_checkout_session",
    "submit_dispute_evidence",
]


def create_checkout_session(*, idempotency_key: str, now: datetime, **params: Any) -> dict[str, Any]:
    session = gateway.create_session(idempotency_key=idempotency_key, now=now, **params)
    return gateway.session_as_dict(session)


def retrieve_checkout_session(session_id: str) -> dict[str, Any]:
    return gateway.session_as_dict(gateway.get_session(session_id))


def expire_checkout_session(session_id: str, *, now: datetime) -> dict[str, Any]:
    return gateway.session_as_dict(gateway.expire_session(session_id, now=now))


def create_refund(*, session_id: str, amount_minor: int, idempotency_key: str, now: datetime) -> dict[str, Any]:
    refund = gateway.create_refund(
        session_id=session_id, amount_minor=amount_minor, idempotency_key=idempotency_key, now=now
    )
    return {
        "id": refund.public_id,
        "object": "refund",
        "status": "succeeded",
        "amount": refund.amount_minor,
        "currency": refund.session.currency,
        "session": refund.session.public_id,
    }


def open_dispute(*, session_id: str, reason: str, now: datetime, amount_minor: int | None = None) -> dict[str, Any]:
    """Test helper of the gateway (like a test card that disputes): its bank opens a dispute."""
    dispute = gateway.open_dispute(session_id=session_id, reason=reason, now=now, amount_minor=amount_minor)
    return gateway.dispute_as_dict(dispute)


def submit_dispute_evidence(dispute_id: str, *, now: datetime) -> dict[str, Any]:
    return gateway.dispute_as_dict(gateway.submit_dispute_evidence(dispute_id, now=now))


def close_dispute(dispute_id: str, *, won: bool, now: datetime) -> dict[str, Any]:
    return gateway.dispute_as_dict(gateway.close_dispute(dispute_id, won=won, now=now))
