"""Refunds at GoPay, which has no idempotency keys and answers a refund with the *payment's* id only.

A refund is therefore never sent blind. Before each send, and before any retry, the payment's refund history
is read and every entry in it is matched to one of our refunds:
- an entry already linked (our `Refund.provider_ref` is the entry's id) stays that refund's;
- an unlinked entry is given to one of our refunds of the same amount that was sent (`provider_attempts`
  > 0) not after the entry was requested, is still unlinked and was not refused (failed or canceled), the
  earliest first;
- what is left was made elsewhere (GoPay's merchant portal) and is ingested once as such.
A refund finds its own entry in the history → it happened (the earlier answer was lost): nothing is sent.
It finds none → it is sent, after its attempt is recorded, so that the next reader knows it may be out there.
Two refunds of the same amount may swap entries; the amounts, and so the books, are the same either way.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from ledger.money import Money
from payments.providers.base import ProviderRefundResult, ProviderRefundState, ProviderRequestRejected
from payments.providers.gopay import client

HISTORY_STATES = {"SUCCESS": "succeeded", "REQUESTED": "pending", "FAILED": "failed"}
CLOCK_SKEW = timedelta(minutes=5)  # GoPay's clock against ours when comparing request times


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    text = value.strip()
    if len(text) >= 5 and text[-5] in "+-" and text[-3] != ":":
        text = f"{text[:-2]}:{text[-2:]}"  # "+0200" -> "+02:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else timezone.make_aware(parsed)


def _history(payment) -> list[dict[str, Any]]:
    entries = client.refund_history(int(payment.provider_ref))
    valid = [e for e in entries if isinstance(e, dict) and "id" in e and isinstance(e.get("amount"), int)]
    return sorted(valid, key=lambda e: (_parse_time(e.get("date_requested")) or timezone.now(), int(e["id"])))


def match_history(payment, entries: list[dict[str, Any]]) -> list[tuple[dict[str, Any], int | None]]:
    """Each history entry with the id of our refund it belongs to (None: made elsewhere)."""
    from refunds.models import Refund, RefundStatus

    no_entry = (RefundStatus.FAILED, RefundStatus.CANCELED)
    ours = list(
        Refund.objects.filter(payment=payment)
        .order_by("first_sent_at", "pk")
        .values("pk", "provider_ref", "amount_minor", "provider_attempts", "first_sent_at", "status")
    )
    linked = {row["provider_ref"]: row["pk"] for row in ours if row["provider_ref"]}
    # A refund GoPay refused (failed: an error answer or result FAILED, so nothing moved) or that was canceled
    # has no entry to find: were it given another refund's entry, that money would be booked twice.
    waiting = [
        row
        for row in ours
        if not row["provider_ref"] and row["provider_attempts"] > 0 and row["status"] not in no_entry
    ]
    matched = []
    for entry in entries:
        entry_id = str(entry["id"])
        if entry_id in linked:
            matched.append((entry, linked[entry_id]))
            continue
        requested = _parse_time(entry.get("date_requested"))
        owner = next(
            (
                row
                for row in waiting
                if row["amount_minor"] == entry["amount"]
                and (
                    requested is None or row["first_sent_at"] is None or row["first_sent_at"] - CLOCK_SKEW <= requested
                )
            ),
            None,
        )
        if owner is not None:
            waiting.remove(owner)
        matched.append((entry, owner["pk"] if owner else None))
    return matched


def _state(payment, entry: dict[str, Any], our_id: int | None) -> ProviderRefundState:
    return ProviderRefundState(
        provider_ref=str(entry["id"]),
        payment_ref=payment.provider_ref,
        amount=Money(int(entry["amount"]), str(entry.get("currency") or payment.currency)),
        status=HISTORY_STATES.get(str(entry.get("state")), "pending"),
        our_refund_id=our_id,
        failure_message="GoPay could not complete the refund." if entry.get("state") == "FAILED" else "",
    )


def refund_states(*, payment) -> list[ProviderRefundState]:
    """All of the payment's refunds at GoPay, each matched to ours where it is ours."""
    return [_state(payment, entry, our_id) for entry, our_id in match_history(payment, _history(payment))]


def _too_old_for_card_refund(payment, now: datetime) -> bool:
    paid_at = payment.succeeded_at or payment.created_at
    return paid_at is not None and now - paid_at > settings.GOPAY_CARD_REFUND_MAX_AGE


def explain_refusal(code: str) -> str:
    if code == "PAYMENT_REFUND_NOT_SUPPORTED":
        days = settings.GOPAY_CARD_REFUND_MAX_AGE.days
        return (
            "GoPay cannot refund this payment (card payments only within their refund limit, about "
            f"{days} days here). Refund the buyer another way (bank transfer or store credit) and record it."
        )
    return ""


def send_refund(*, refund) -> ProviderRefundResult:
    """Send one refund to GoPay, unless the history shows it is already there."""
    from refunds.models import Refund

    payment = refund.payment
    now = timezone.now()
    amount = Money(refund.amount_minor, refund.currency)
    for entry, our_id in match_history(payment, _history(payment)):
        if our_id == refund.pk:
            state = _state(payment, entry, our_id)
            return ProviderRefundResult(provider_ref=state.provider_ref, status=state.status, amount=amount)
    if refund.provider_attempts == 0 and _too_old_for_card_refund(payment, now):
        raise ProviderRequestRejected(explain_refusal("PAYMENT_REFUND_NOT_SUPPORTED"), code="refund_too_old")

    # Record the attempt before sending: if the answer is lost, the next reader looks for it in the history.
    Refund.objects.filter(pk=refund.pk).update(
        provider_attempts=F("provider_attempts") + 1, first_sent_at=refund.first_sent_at or now
    )
    refund.refresh_from_db(fields=["provider_attempts", "first_sent_at"])
    try:
        answer = client.refund(int(payment.provider_ref), refund.amount_minor)
    except ProviderRequestRejected as exc:
        raise ProviderRequestRejected(explain_refusal(exc.code) or str(exc), code=exc.code) from exc
    result = str(answer.get("result") or "")
    if result == "FAILED":
        return ProviderRefundResult(
            provider_ref="", status="failed", amount=amount, failure_message="GoPay refused the refund."
        )
    # The answer names no refund: find ours in the history (FINISHED: done; ACCEPTED: still being processed).
    for entry, our_id in match_history(payment, _history(payment)):
        if our_id == refund.pk:
            state = _state(payment, entry, our_id)
            return ProviderRefundResult(provider_ref=state.provider_ref, status=state.status, amount=amount)
    return ProviderRefundResult(
        provider_ref="", status="pending" if result == "ACCEPTED" else "succeeded", amount=amount
    )
