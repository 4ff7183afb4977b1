"""Stripe event payloads -> provider-neutral ProviderEvents. Pure functions over dicts (no SDK, no DB)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from ledger.money import Money
from payments.providers.base import (
    DisputeBalanceMove,
    ProviderAccountState,
    ProviderBankPayoutState,
    ProviderDisputeState,
    ProviderEvent,
    ProviderPaymentState,
    ProviderRefundState,
    ProviderTransferState,
    WebhookRejected,
)

# Stripe dispute statuses -> ours.
DISPUTE_STATUS = {
    "warning_needs_response": "open",
    "needs_response": "open",
    "warning_under_review": "under_review",
    "under_review": "under_review",
    "won": "won",
    "lost": "lost",
    "warning_closed": "warning_closed",
    "prevented": "won",
}
REFUND_STATUS = {
    "pending": "pending",
    "requires_action": "pending",
    "succeeded": "succeeded",
    "failed": "failed",
    "canceled": "canceled",
}


def money(amount: Any, currency: Any) -> Money:
    return Money(int(amount), str(currency).upper())


def _id(value: Any) -> str:
    """An expandable field: either the id or the expanded object."""
    if isinstance(value, dict):
        return str(value.get("id") or "")
    return str(value or "")


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _timestamp(value: Any) -> datetime | None:
    if isinstance(value, int) and 0 < value < 2**33:
        return datetime.fromtimestamp(value, tz=UTC)
    return None


def payment_intent_state(pi: dict[str, Any], *, session_id: str = "") -> ProviderPaymentState:
    """A payment intent (optionally with latest_charge.balance_transaction expanded) as a payment state."""
    status = pi.get("status")
    error = pi.get("last_payment_error") or {}
    mapped = {
        "succeeded": "succeeded",
        "processing": "pending",
        "requires_action": "requires_action",
        "requires_confirmation": "pending",
        "requires_capture": "authorized",
        "canceled": "canceled",
    }.get(status, "failed" if error else "pending")
    amount = money(pi["amount"], pi["currency"])
    captured = money(pi.get("amount_received") or 0, pi["currency"]) if mapped == "succeeded" else None
    return ProviderPaymentState(
        provider_ref=session_id,
        status=mapped,
        amount=amount,
        captured=captured,
        fee=charge_fee(pi.get("latest_charge"), pi["currency"]) if mapped == "succeeded" else None,
        provider_payment_ref=str(pi["id"]),
        provider_charge_ref=_id(pi.get("latest_charge")) if mapped == "succeeded" else "",
        failure_code=str(error.get("decline_code") or error.get("code") or "") if mapped == "failed" else "",
        failure_message=str(error.get("message") or "")[:300] if mapped == "failed" else "",
        raw_status=str(status),
    )


def charge_fee(charge: Any, currency: str) -> Money | None:
    """The fee on the charge's balance transaction, when it is expanded and in the charge's currency (a fee
    settled in another currency would need an exchange rate we do not have: it is left for reconciliation)."""
    if not isinstance(charge, dict):
        return None
    bt = charge.get("balance_transaction")
    if not isinstance(bt, dict) or str(bt.get("currency", "")).upper() != str(currency).upper():
        return None
    return money(bt.get("fee") or 0, currency)


def session_state(session: dict[str, Any]) -> ProviderPaymentState:
    pi = session.get("payment_intent")
    amount = money(session["amount_total"], session["currency"])
    if session.get("status") == "expired":
        return ProviderPaymentState(
            provider_ref=session["id"],
            status="expired",
            amount=amount,
            provider_payment_ref=_id(pi),
            raw_status="expired",
        )
    if session.get("status") == "complete" and session.get("payment_status") == "paid":
        if isinstance(pi, dict):
            state = payment_intent_state(pi, session_id=session["id"])
            if state.status == "succeeded":
                return state
        return ProviderPaymentState(
            provider_ref=session["id"],
            status="succeeded",
            amount=amount,
            captured=amount,
            provider_payment_ref=_id(pi),
            raw_status="complete/paid",
        )
    if isinstance(pi, dict) and pi.get("status") in ("requires_action", "processing"):
        return payment_intent_state(pi, session_id=session["id"])
    return ProviderPaymentState(
        provider_ref=session["id"],
        status="pending",
        amount=amount,
        provider_payment_ref=_id(pi),
        raw_status=f"{session.get('status')}/{session.get('payment_status')}",
    )


def refund_state(refund: dict[str, Any]) -> ProviderRefundState:
    metadata = refund.get("metadata") or {}
    return ProviderRefundState(
        provider_ref=str(refund["id"]),
        payment_ref=_id(refund.get("payment_intent")),
        amount=money(refund["amount"], refund["currency"]),
        status=REFUND_STATUS.get(refund.get("status"), "pending"),
        our_refund_id=_int_or_none(metadata.get("refund_id")),
        reason=str(refund.get("reason") or ""),
        failure_message=str(refund.get("failure_reason") or ""),
    )


def dispute_state(dispute: dict[str, Any]) -> ProviderDisputeState:
    moves = []
    for bt in dispute.get("balance_transactions") or []:
        if isinstance(bt, dict) and bt.get("id"):
            moves.append(
                DisputeBalanceMove(
                    provider_ref=str(bt["id"]),
                    amount=money(bt["amount"], bt["currency"]),
                    fee=money(bt.get("fee") or 0, bt["currency"]),
                )
            )
    evidence = dispute.get("evidence_details") or {}
    return ProviderDisputeState(
        provider_ref=str(dispute["id"]),
        payment_ref=_id(dispute.get("payment_intent")),
        amount=money(dispute["amount"], dispute["currency"]),
        status=DISPUTE_STATUS.get(dispute.get("status"), "open"),
        provider_status=str(dispute.get("status") or ""),
        reason=str(dispute.get("reason") or ""),
        evidence_due_by=_timestamp(evidence.get("due_by")),
        balance_moves=tuple(moves),
    )


def interpret(payload: Any) -> ProviderEvent:
    if not isinstance(payload, dict):
        raise WebhookRejected("event is not an object", code="malformed_payload")
    event_id, event_type = payload.get("id"), payload.get("type")
    data = payload.get("data") if isinstance(payload.get("data"), dict) else {}
    obj = data.get("object")
    if not (
        isinstance(event_id, str) and 0 < len(event_id) <= 255 and isinstance(event_type, str) and isinstance(obj, dict)
    ):
        raise WebhookRejected("event lacks id, type or data.object", code="malformed_payload")
    base = {
        "event_id": event_id,
        "event_type": event_type,
        "payload": payload,
        "occurred_at": _timestamp(payload.get("created")),
    }
    try:
        return _interpret(event_type, obj, payload.get("account"), base)
    except (KeyError, TypeError, ValueError) as exc:
        raise WebhookRejected(f"{event_type} object is malformed", code="malformed_payload") from exc


def _metadata_payment_id(obj: dict[str, Any]) -> int | None:
    return _int_or_none((obj.get("metadata") or {}).get("payment_id"))


def _interpret(event_type: str, obj: dict[str, Any], account: Any, base: dict[str, Any]) -> ProviderEvent:
    if event_type.startswith("checkout.session."):
        state = session_state(obj)
        if event_type == "checkout.session.async_payment_failed":
            state = ProviderPaymentState(
                provider_ref=obj["id"],
                status="failed",
                amount=state.amount,
                provider_payment_ref=state.provider_payment_ref,
                failure_code="async_payment_failed",
                failure_message="The bank did not confirm the payment.",
            )
        elif event_type == "checkout.session.async_payment_succeeded":
            state = ProviderPaymentState(
                provider_ref=obj["id"],
                status="succeeded",
                amount=state.amount,
                captured=state.amount,
                provider_payment_ref=state.provider_payment_ref,
            )
        our_id = _int_or_none(obj.get("client_reference_id")) or _metadata_payment_id(obj)
        return ProviderEvent(kind="payment", payment_state=state, our_payment_id=our_id, **base)
    if event_type.startswith("payment_intent."):
        return ProviderEvent(
            kind="payment",
            payment_state=payment_intent_state(obj),
            our_payment_id=_metadata_payment_id(obj),
            payment_ref=obj["id"],
            **base,
        )
    if event_type == "charge.refunded":
        return ProviderEvent(
            kind="refunds_changed",
            payment_ref=_id(obj.get("payment_intent")),
            our_payment_id=_metadata_payment_id(obj),
            **base,
        )
    if event_type.startswith("refund.") or event_type == "charge.refund.updated":
        state = refund_state(obj)
        return ProviderEvent(kind="refund", refund_state=state, payment_ref=state.payment_ref, **base)
    if event_type.startswith("charge.dispute."):
        state = dispute_state(obj)
        return ProviderEvent(kind="dispute", dispute_state=state, payment_ref=state.payment_ref, **base)
    if event_type == "account.updated":
        metadata = obj.get("metadata") or {}
        state = ProviderAccountState(
            account_ref=str(obj["id"]),
            our_payee_id=_int_or_none(metadata.get("payee_id")),
            charges_enabled=bool(obj.get("charges_enabled")),
            payouts_enabled=bool(obj.get("payouts_enabled")),
            details_submitted=bool(obj.get("details_submitted")),
            requirements=obj.get("requirements") or {},
        )
        return ProviderEvent(kind="account", account_state=state, **base)
    if event_type.startswith("transfer."):
        reversals = (obj.get("reversals") or {}).get("data") or []
        state = ProviderTransferState(
            provider_ref=str(obj["id"]),
            our_payout_id=_int_or_none((obj.get("metadata") or {}).get("payout_id")),
            amount=money(obj["amount"], obj["currency"]),
            amount_reversed=money(obj.get("amount_reversed") or 0, obj["currency"]),
            destination=_id(obj.get("destination")),
            reversals=tuple(
                (str(r["id"]), money(r["amount"], r["currency"]))
                for r in reversals
                if isinstance(r, dict) and r.get("id")
            ),
        )
        return ProviderEvent(kind="transfer", transfer_state=state, **base)
    if event_type.startswith("payout.") and account:
        arrival = _timestamp(obj.get("arrival_date"))
        state = ProviderBankPayoutState(
            provider_ref=str(obj["id"]),
            account_ref=str(account),
            amount=money(obj["amount"], obj["currency"]),
            status=str(obj.get("status") or ""),
            failure_message=str(obj.get("failure_message") or "")[:300],
            arrival_date=arrival,
        )
        return ProviderEvent(kind="bank_payout", bank_payout_state=state, **base)
    return ProviderEvent(kind="ignored", **base)


def arrival_day(state: ProviderBankPayoutState) -> date | None:
    return state.arrival_date.date() if state.arrival_date else None
