"""Webhook signatures of the sandbox gateway, the same scheme as Stripe's:

    Tollgate-Sandbox-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>[,v1=...]

Several v1 values may be present (one per secret while a secret is being rolled); any match is accepted.
Timestamps further than the tolerance from now, in either direction, are refused (replays).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from payments.providers.base import WebhookRejected

HEADER = "Tollgate-Sandbox-Signature"
META_KEY = "HTTP_TOLLGATE_SANDBOX_SIGNATURE"


def compute_signature(*, payload: bytes, secret: str, timestamp: int) -> str:
    message = str(timestamp).encode() + b"." + payload
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(*, payload: bytes, secret: str, timestamp: int) -> str:
    return f"t={timestamp},v1={compute_signature(payload=payload, secret=secret, timestamp=timestamp)}"


def verify_signature(*, payload: bytes, header: str | None, secrets: Sequence[str], tolerance: int, now: int) -> None:
    """Raise WebhookRejected unless `header` signs `payload` with one of `secrets` within `tolerance` s."""
    if not header:
        raise WebhookRejected("no signature header", code="missing_signature")
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise WebhookRejected("malformed timestamp", code="malformed_signature") from None
        elif key == "v1" and value:
            signatures.append(value)
    if timestamp is None or not signatures:
        raise WebhookRejected("signature header lacks t= or v1=", code="malformed_signature")
    if abs(now - timestamp) > tolerance:
        raise WebhookRejected("timestamp outside the tolerance", code="stale_timestamp")
    for secret in secrets:
        expected = compute_signature(payload=payload, secret=secret, timestamp=timestamp)
        if any(hmac.compare_digest(expected, candidate) for candidate in signatures):
            return
    raise WebhookRejected("no signature matches", code="bad_signature")
