"""The sandbox gateway's "SDK": the only module of the adapter that reaches the gateway. It speaks in plain
dicts, as an HTTP API would, so the adapter maps them exactly as it would map a real provider's JSON."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from payments.providers.sandbox import gateway
from payments.providers.sandbox.gateway import GatewayError

__all__ = [
    "GatewayError",
    "create_checkout_session",
    "create_refund",
    "expire_checkout_session",
    "retrieve_checkout_session",
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
