"""The sandbox as a payment provider: maps our interface onto the simulated gateway's API."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone

from ledger.money import Money
from payments.providers import base
from payments.providers.base import (
    CheckoutRedirect,
    DisputeBalanceMove,
    ProviderDisputeState,
    ProviderEvent,
    ProviderPaymentState,
    ProviderRefundResult,
    ProviderRequestRejected,
    WebhookRejected,
)
from payments.providers.sandbox import client
from payments.providers.sandbox.signing import META_KEY, verify_signature

# The gateway's session states -> PaymentStatus values.
STATUS_MAP = {
    "open": "pending",
    "requires_action": "requires_action",
    "succeeded": "succeeded",
    "failed": "failed",
    "canceled": "canceled",
    "expired": "expired",
}


# The gateway's dispute states -> DisputeStatus values.
DISPUTE_STATUS_MAP = {"needs_response": "open", "under_review": "under_review", "won": "won", "lost": "lost"}


def _secrets() -> list[str]:
    """Accepted signing secrets; several (comma-separated) while one is being rolled."""
    return [s.strip() for s in (settings.SANDBOX_WEBHOOK_SECRET or "").split(",") if s.strip()]


class SandboxProvider:
    name = "sandbox"
    display_name = "Sandbox test payment"
    capabilities = frozenset({base.REFUND, base.PARTIAL_REFUND, base.EXPIRE_CHECKOUT})

    def is_configured(self) -> bool:
        return bool(settings.SANDBOX_ENABLED and _secrets())

    def create_checkout(self, *, payment, return_url: str, cancel_url: str, notification_url: str) -> CheckoutRedirect:
        order = payment.order
        try:
            data = client.create_checkout_session(
                idempotency_key=f"tollgate-payment-{payment.pk}",
                merchant_name=settings.TOLLGATE_PLATFORM_NAME,
                description=order.description or f"Order {order.short_token}",
                reference=str(payment.pk),
                amount_minor=payment.amount_minor,
                currency=payment.currency,
                return_url=return_url,
                cancel_url=cancel_url,
                notification_url=notification_url,
                metadata={"payment_id": payment.pk, "order": str(order.token)},
                now=timezone.now(),
            )
        except client.GatewayError as exc:
            raise ProviderRequestRejected(str(exc), code=exc.code) from exc
        return CheckoutRedirect(
            url=data["url"], provider_ref=data["id"], expires_at=datetime.fromtimestamp(data["expires_at"], tz=UTC)
        )

    def fetch_payment(self, *, payment) -> ProviderPaymentState:
        try:
            data = client.retrieve_checkout_session(payment.provider_ref)
        except client.GatewayError as exc:
            raise ProviderRequestRejected(str(exc), code=exc.code) from exc
        return self._state(data)

    def expire_checkout(self, *, payment) -> None:
        if payment.provider_ref:
            client.expire_checkout_session(payment.provider_ref, now=timezone.now())

    def refund(self, *, refund) -> ProviderRefundResult:
        try:
            data = client.create_refund(
                session_id=refund.payment.provider_ref,
                amount_minor=refund.amount_minor,
                idempotency_key=f"tollgate-refund-{refund.pk}",
                now=timezone.now(),
            )
        except client.GatewayError as exc:
            raise ProviderRequestRejected(str(exc), code=exc.code) from exc
        return ProviderRefundResult(
            provider_ref=data["id"], status=data["status"], amount=Money(data["amount"], data["currency"])
        )

    # --- test disputes (the sandbox's bank disputes a payment when staff ask it to) ----------------------

    def open_test_dispute(self, *, payment, reason: str) -> ProviderDisputeState:
        try:
            data = client.open_dispute(session_id=payment.provider_ref, reason=reason, now=timezone.now())
        except client.GatewayError as exc:
            raise ProviderRequestRejected(str(exc), code=exc.code) from exc
        return self._dispute_state(data)

    def submit_test_dispute_evidence(self, *, dispute) -> ProviderDisputeState:
        try:
            data = client.submit_dispute_evidence(dispute.provider_ref, now=timezone.now())
        except client.GatewayError as exc:
            raise ProviderRequestRejected(str(exc), code=exc.code) from exc
        return self._dispute_state(data)

    def close_test_dispute(self, *, dispute, won: bool) -> ProviderDisputeState:
        try:
            data = client.close_dispute(dispute.provider_ref, won=won, now=timezone.now())
        except client.GatewayError as exc:
            raise ProviderRequestRejected(str(exc), code=exc.code) from exc
        return self._dispute_state(data)

    def parse_webhook(self, *, request: HttpRequest) -> list[ProviderEvent]:
        body = request.body
        verify_signature(
            payload=body,
            header=request.META.get(META_KEY),
            secrets=_secrets(),
            tolerance=settings.SANDBOX_WEBHOOK_TOLERANCE,
            now=int(time.time()),
        )
        try:
            payload = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise WebhookRejected("body is not JSON", code="malformed_payload") from None
        return [self.interpret_event(payload=payload)]

    def interpret_event(self, *, payload: Any) -> ProviderEvent:
        if not isinstance(payload, dict):
            raise WebhookRejected("event is not an object", code="malformed_payload")
        event_id, event_type = payload.get("id"), payload.get("type")
        obj = (payload.get("data") or {}).get("object") if isinstance(payload.get("data"), dict) else None
        if not (
            isinstance(event_id, str)
            and 0 < len(event_id) <= 255
            and isinstance(event_type, str)
            and isinstance(obj, dict)
        ):
            raise WebhookRejected("event lacks id, type or data.object", code="malformed_payload")
        created = payload.get("created")
        occurred_at = datetime.fromtimestamp(created, tz=UTC) if isinstance(created, int) else None
        if event_type.startswith("payment."):
            try:
                state = self._state(obj)
            except (KeyError, TypeError, ValueError):
                raise WebhookRejected("payment object is malformed", code="malformed_payload") from None
            return ProviderEvent(
                event_id=event_id,
                event_type=event_type,
                kind="payment",
                payload=payload,
                occurred_at=occurred_at,
                payment_state=state,
                our_payment_id=_our_payment_id(obj),
            )
        if event_type.startswith("dispute."):
            try:
                dispute = self._dispute_state(obj)
            except (KeyError, TypeError, ValueError):
                raise WebhookRejected("dispute object is malformed", code="malformed_payload") from None
            return ProviderEvent(
                event_id=event_id,
                event_type=event_type,
                kind="dispute",
                payload=payload,
                occurred_at=occurred_at,
                dispute_state=dispute,
                payment_ref=dispute.payment_ref,
                our_payment_id=_our_payment_id(obj),
            )
        return ProviderEvent(
            event_id=event_id, event_type=event_type, kind="ignored", payload=payload, occurred_at=occurred_at
        )

    @staticmethod
    def _dispute_state(data: dict[str, Any]) -> ProviderDisputeState:
        currency = data["currency"]
        moves = tuple(
            DisputeBalanceMove(
                provider_ref=str(move["id"]),
                amount=Money(int(move["amount"]), currency),
                fee=Money(int(move.get("fee") or 0), currency),
            )
            for move in data.get("balance_transactions") or []
        )
        due_by = data.get("evidence_due_by")
        return ProviderDisputeState(
            provider_ref=str(data["id"]),
            payment_ref=str(data.get("payment") or ""),
            amount=Money(int(data["amount"]), currency),
            status=DISPUTE_STATUS_MAP[data["status"]],
            provider_status=str(data["status"]),
            reason=str(data.get("reason") or ""),
            evidence_due_by=datetime.fromtimestamp(due_by, tz=UTC) if isinstance(due_by, int) else None,
            balance_moves=moves,
        )

    @staticmethod
    def _state(data: dict[str, Any]) -> ProviderPaymentState:
        currency = data["currency"]
        status = STATUS_MAP[data["status"]]
        amount = Money(int(data["amount"]), currency)
        succeeded = status == "succeeded"
        return ProviderPaymentState(
            provider_ref=str(data["id"]),
            status=status,
            amount=amount,
            captured=amount if succeeded else None,
            fee=Money(int(data.get("fee") or 0), currency) if succeeded else None,
            provider_payment_ref=str(data.get("payment") or ""),
            failure_code=str(data.get("decline_code") or ""),
            failure_message=str(data.get("decline_message") or ""),
            raw_status=str(data["status"]),
        )


def _our_payment_id(obj: dict) -> int | None:
    """Our payment's id from the object's metadata, if it carries one."""
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    payment_id = metadata.get("payment_id")
    return payment_id if isinstance(payment_id, int) else None
