"""Stripe as a payment provider: Checkout Sessions for buyers, separate charges and transfers for payees
(Connect Express accounts, a `transfer_group` per order), refunds by payment intent. Talks to Stripe only
through `client.py`; every POST's idempotency key is derived from one of our rows."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone

from ledger.money import Money, exponent
from payments.providers import base
from payments.providers.base import (
    CheckoutRedirect,
    ProviderEvent,
    ProviderPaymentState,
    ProviderRefundResult,
    ProviderRefundState,
    ProviderRequestRejected,
    ProviderTransferResult,
    WebhookRejected,
)
from payments.providers.stripe import client, events

logger = logging.getLogger(__name__)

CHECKOUT_MIN_TTL = timedelta(minutes=31)  # Stripe accepts 30 min .. 24 h
CHECKOUT_MAX_TTL = timedelta(hours=23, minutes=59)
CHECKOUT_LOCALES = {"en", "cs", "de", "sk", "pl", "fr", "es", "it", "nl", "hu", "ro", "bg"}
# Stripe accepts only whole units in these two-decimal currencies, and a trailing 0 in three-decimal ones.
WHOLE_UNITS_ONLY = {"HUF": 100, "TWD": 100}
REFUND_REASONS = {"duplicate_payment": "duplicate", "fraudulent": "fraudulent"}


def _metadata(**values: Any) -> dict[str, str]:
    return {key: str(value) for key, value in values.items()}


def _check_amount(amount_minor: int, currency: str) -> None:
    step = WHOLE_UNITS_ONLY.get(currency) or (10 if exponent(currency) == 3 else 1)
    if amount_minor % step:
        raise ProviderRequestRejected(
            f"Stripe needs {currency} amounts in whole multiples of {step} minor units", code="amount_precision"
        )


class StripeProvider:
    name = "stripe"
    display_name = "Card, Apple Pay or Google Pay (Stripe)"
    capabilities = frozenset(
        {base.REFUND, base.PARTIAL_REFUND, base.TRANSFER, base.EXPIRE_CHECKOUT, base.EVENT_BACKFILL}
    )

    def is_configured(self) -> bool:
        return bool(settings.STRIPE_SECRET_KEY and settings.STRIPE_WEBHOOK_SECRETS)

    # --- buyers -------------------------------------------------------------------------------------
    def create_checkout(self, *, payment, return_url: str, cancel_url: str, notification_url: str) -> CheckoutRedirect:
        order = payment.order
        now = timezone.now()
        currency = payment.currency
        line_items = []
        for line in order.lines.select_related("payee").order_by("position"):
            _check_amount(line.unit_amount_minor, currency)
            line_items.append(
                {
                    "quantity": line.quantity,
                    "price_data": {
                        "currency": currency.lower(),
                        "unit_amount": line.unit_amount_minor,
                        "product_data": {"name": line.description[:250], "description": f"Sold by {line.payee.name}"},
                    },
                }
            )
        expires_at = min(max(order.expires_at, now + CHECKOUT_MIN_TTL), now + CHECKOUT_MAX_TTL)
        ids = _metadata(payment_id=payment.pk, order=order.token)
        params = {
            "mode": "payment",
            "line_items": line_items,
            "client_reference_id": str(payment.pk),
            "metadata": ids,
            "payment_intent_data": {
                "metadata": ids,
                "transfer_group": f"order_{order.token}",
                "description": (order.description or f"Order {order.short_token}")[:250],
            },
            "customer_email": order.buyer_email,
            "success_url": f"{return_url}?session_id={{CHECKOUT_SESSION_ID}}",
            "cancel_url": cancel_url,
            "expires_at": int(expires_at.timestamp()),
            "locale": order.locale if order.locale in CHECKOUT_LOCALES else "auto",
        }
        session = client.create_checkout_session(params, idempotency_key=f"tollgate-payment-{payment.pk}")
        return CheckoutRedirect(
            url=session["url"],
            provider_ref=session["id"],
            expires_at=datetime.fromtimestamp(session["expires_at"], tz=UTC),
        )

    def fetch_payment(self, *, payment) -> ProviderPaymentState:
        if payment.provider_ref:
            return events.session_state(client.retrieve_checkout_session(payment.provider_ref))
        return events.payment_intent_state(client.retrieve_payment_intent(payment.provider_payment_ref))

    def expire_checkout(self, *, payment) -> None:
        if payment.provider_ref:
            client.expire_checkout_session(
                payment.provider_ref, idempotency_key=f"tollgate-payment-{payment.pk}-expire"
            )

    def lookup_payment_id(self, *, payment_ref: str) -> int | None:
        """Our payment id from a payment intent's metadata (for events that arrive before we know the intent)."""
        if not payment_ref:
            return None
        metadata = client.retrieve_payment_intent(payment_ref).get("metadata") or {}
        return events._int_or_none(metadata.get("payment_id"))

    # --- refunds ------------------------------------------------------------------------------------
    def _payment_intent(self, payment) -> str:
        if payment.provider_payment_ref:
            return payment.provider_payment_ref
        state = self.fetch_payment(payment=payment)
        if not state.provider_payment_ref:
            raise ProviderRequestRejected("The payment has no payment intent at Stripe yet", code="no_payment_intent")
        return state.provider_payment_ref

    def refund(self, *, refund) -> ProviderRefundResult:
        params = {
            "payment_intent": self._payment_intent(refund.payment),
            "amount": refund.amount_minor,
            "metadata": _metadata(refund_id=refund.pk, order=refund.order.token),
        }
        params["reason"] = REFUND_REASONS.get(refund.reason, "requested_by_customer")
        data = client.create_refund(params, idempotency_key=f"tollgate-refund-{refund.pk}")
        state = events.refund_state(data)
        return ProviderRefundResult(
            provider_ref=state.provider_ref,
            status=state.status,
            amount=state.amount,
            failure_message=state.failure_message,
        )

    def list_refunds(self, *, payment) -> list[ProviderRefundState]:
        return [events.refund_state(item) for item in client.list_refunds(self._payment_intent(payment))]

    # --- payees (Connect) ---------------------------------------------------------------------------
    def create_connected_account(self, *, payee) -> str:
        params = {
            "type": "express",
            "country": payee.country,
            "email": payee.email,
            "capabilities": {"transfers": {"requested": True}},
            "business_profile": {"name": payee.name[:250]},
            "metadata": _metadata(payee_id=payee.pk),
        }
        return client.create_account(params, idempotency_key=f"tollgate-payee-{payee.pk}-account")["id"]

    def create_onboarding_link(self, *, payee, return_url: str, refresh_url: str, sequence: int) -> str:
        params = {
            "account": payee.stripe_account_id,
            "refresh_url": refresh_url,
            "return_url": return_url,
            "type": "account_onboarding",
        }
        link = client.create_account_link(params, idempotency_key=f"tollgate-payee-{payee.pk}-link-{sequence}")
        return link["url"]

    def transfer(self, *, payout) -> ProviderTransferResult:
        """Transfer a payout to the payee's connected account. A retry (the first attempt's outcome unknown,
        perhaps after Stripe pruned the idempotency key) looks the transfer up by its group before creating."""
        group = f"payout_{payout.pk}"
        if payout.attempts > 1:
            for existing in client.list_transfers(group):
                if (existing.get("metadata") or {}).get("payout_id") == str(payout.pk):
                    return self._transfer_result(existing)
        _check_amount(payout.amount_minor, payout.currency)
        params = {
            "amount": payout.amount_minor,
            "currency": payout.currency.lower(),
            "destination": payout.payee.stripe_account_id,
            "transfer_group": group,
            "metadata": _metadata(payout_id=payout.pk, payee_id=payout.payee_id),
            "description": f"Payout {payout.pk}",
        }
        return self._transfer_result(client.create_transfer(params, idempotency_key=f"tollgate-payout-{payout.pk}"))

    def reverse_transfer(self, *, payout, amount: Money) -> ProviderTransferResult:
        data = client.create_transfer_reversal(
            payout.provider_ref,
            {"amount": amount.amount_minor, "metadata": _metadata(payout_id=payout.pk)},
            idempotency_key=f"tollgate-payout-{payout.pk}-reversal-{payout.reversed_minor}",
        )
        return ProviderTransferResult(
            provider_ref=str(data["id"]), status="reversed", amount=events.money(data["amount"], data["currency"])
        )

    @staticmethod
    def _transfer_result(data: dict[str, Any]) -> ProviderTransferResult:
        return ProviderTransferResult(
            provider_ref=str(data["id"]), status="paid", amount=events.money(data["amount"], data["currency"])
        )

    # --- webhooks -----------------------------------------------------------------------------------
    def parse_webhook(self, *, request: HttpRequest) -> list[ProviderEvent]:
        body = request.body
        header = request.META.get("HTTP_STRIPE_SIGNATURE")
        client.verify_event(
            payload=body,
            header=header,
            secrets=list(settings.STRIPE_WEBHOOK_SECRETS),
            tolerance=settings.STRIPE_WEBHOOK_TOLERANCE,
        )
        _refuse_future_timestamp(header or "")
        try:
            payload = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise WebhookRejected("body is not JSON", code="malformed_payload") from None
        return [self.interpret_event(payload=payload)]

    def interpret_event(self, *, payload: Any) -> ProviderEvent:
        return events.interpret(payload)

    def list_missed_events(self, *, since: datetime, undelivered_only: bool = True) -> list[ProviderEvent]:
        """The platform's events since `since` from Stripe's Events API (it keeps 30 days), oldest first;
        by default only those Stripe has not delivered to every endpoint (pending retries or given up on).
        A malformed event is logged and left out, as it would be refused at the webhook."""
        found, starting_after = [], ""
        while True:
            page = client.list_events(
                created_gte=int(since.timestamp()), undelivered_only=undelivered_only, starting_after=starting_after
            )
            data = list(page.get("data") or [])
            for payload in data:
                try:
                    found.append(events.interpret(payload))
                except WebhookRejected as exc:
                    logger.warning("Stripe event %s left out of the backfill: %s", payload.get("id"), exc)
            if not page.get("has_more") or not data:
                return found[::-1]
            starting_after = str(data[-1]["id"])


def _refuse_future_timestamp(header: str) -> None:
    """The SDK only refuses old timestamps; one far in the future is a replay-in-waiting, so refuse it too."""
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            if int(value) > timezone.now().timestamp() + settings.STRIPE_WEBHOOK_TOLERANCE:
                raise WebhookRejected("timestamp in the future", code="stale_timestamp")
            return


def dashboard_url(kind: str, ref: str) -> str:
    """A link to the object in the Stripe dashboard, test or live by the configured key."""
    if not ref:
        return ""
    mode = "" if settings.STRIPE_SECRET_KEY.startswith(("sk_live", "rk_live")) else "test/"
    paths = {
        "payment": "payments/",
        "charge": "payments/",
        "account": "connect/accounts/",
        "transfer": "connect/transfers/",
        "dispute": "disputes/",
        "refund": "refunds/",
        "session": "checkout/sessions/",
    }
    return f"https://dashboard.stripe.com/{mode}{paths.get(kind, '')}{ref}"
