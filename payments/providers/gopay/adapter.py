"""GoPay as a payment provider: the buyer is redirected to `gw_url`; GoPay's notification is a bare
`GET ?id=` with no state and no signature, so it is only a hint: the truth is always fetched with a
`payment-all` token. GoPay has no idempotency keys: `order_number` is our payment id, and a refund reads
the payment's refund history before it is sent and before any retry (see `refunds.py`). Money lands in the
platform's GoPay account; payees are paid from our ledger, never by GoPay."""

from __future__ import annotations

import re
import time
from typing import Any

from django.conf import settings
from django.http import HttpRequest

from ledger.money import Money
from payments.providers import base
from payments.providers.base import (
    CheckoutRedirect,
    ProviderEvent,
    ProviderPaymentState,
    ProviderRefundResult,
    ProviderRefundState,
    ProviderRequestRejected,
    WebhookRejected,
)
from payments.providers.gopay import client
from payments.providers.gopay import refunds as gopay_refunds

CURRENCIES = frozenset({"CZK", "EUR", "PLN", "HUF", "GBP", "USD", "RON", "BGN"})
LANGUAGES = {"cs": "CS", "sk": "SK", "en": "EN", "de": "DE", "pl": "PL", "hu": "HU", "ro": "RO", "bg": "BG"}
COUNTRY_LANGUAGES = {"CZ": "CS", "SK": "SK", "DE": "DE", "AT": "DE", "PL": "PL", "HU": "HU", "RO": "RO", "BG": "BG"}
# GoPay's payment ids are 10 digits today; allow some growth, nothing that could be anything else.
PAYMENT_ID = re.compile(r"[1-9][0-9]{5,18}")
STATES = {
    "CREATED": "pending",
    "PAYMENT_METHOD_CHOSEN": "pending",
    "PAID": "succeeded",
    "AUTHORIZED": "authorized",
    "CANCELED": "canceled",
    "TIMEOUTED": "expired",
    # Refunds are reconciled from the refund history; for the payment itself the money was captured.
    "REFUNDED": "succeeded",
    "PARTIALLY_REFUNDED": "succeeded",
}


def parse_payment_id(raw: Any) -> int | None:
    """GoPay's payment id from untrusted input (a query string): digits only, bounded length; else None."""
    if not isinstance(raw, str) or len(raw) > 19 or not PAYMENT_ID.fullmatch(raw):
        return None
    return int(raw)


def _language(order) -> str:
    return LANGUAGES.get((order.locale or "").split("-")[0].lower()) or COUNTRY_LANGUAGES.get(order.buyer_country, "EN")


def _items(order, amount_minor: int) -> list[dict[str, Any]]:
    """GoPay's items: `amount` is the line total; they must add up to the payment's amount."""
    items = [
        {
            "type": "ITEM",
            "name": line.description[:256],
            "amount": line.amount_minor,
            "count": line.quantity,
            "vat_rate": round(line.vat_rate_bps / 100),
        }
        for line in order.lines.order_by("position")
    ]
    if sum(item["amount"] for item in items) != amount_minor:
        items = [{"type": "ITEM", "name": (order.description or "Order")[:256], "amount": amount_minor, "count": 1}]
    return items


def payment_state(data: dict[str, Any]) -> ProviderPaymentState:
    """A GoPay status document as a payment state."""
    state = str(data.get("state") or "")
    status = STATES.get(state, "pending")
    amount = Money(int(data["amount"]), str(data["currency"]))
    recurrence = data.get("recurrence") or {}
    return ProviderPaymentState(
        provider_ref=str(data["id"]),
        status=status,
        amount=amount,
        captured=amount if status == "succeeded" else None,
        provider_payment_ref=str(data["id"]),
        failure_code={"CANCELED": "canceled", "TIMEOUTED": "timeouted"}.get(state, ""),
        failure_message={
            "CANCELED": "The payment was canceled.",
            "TIMEOUTED": "The payment was not completed in time.",
        }.get(state, ""),
        raw_status=state,
        recurrence_state=str(recurrence.get("recurrence_state") or "").lower(),
    )


class GoPayProvider:
    name = "gopay"
    display_name = "Card, bank button, Google Pay or Apple Pay (GoPay)"
    capabilities = frozenset(
        {base.REFUND, base.PARTIAL_REFUND, base.CAPTURE, base.VOID, base.RECURRING, base.EXPIRE_CHECKOUT}
    )

    webhook_methods = ("GET",)  # GoPay's notification is `GET ?id=`
    reports_fees = False  # GoPay's fees come on its statements, not on the payment
    currencies = CURRENCIES

    @property
    def authorization_lifetime(self):
        """How long GoPay keeps a pre-authorization (card hold) before it lapses."""
        return settings.GOPAY_AUTHORIZATION_LIFETIME

    @property
    def authorization_warn_before(self):
        """Staff are warned this long before a hold lapses."""
        return settings.GOPAY_AUTHORIZATION_WARN_BEFORE

    def is_configured(self) -> bool:
        return bool(settings.GOPAY_GOID and settings.GOPAY_CLIENT_ID and settings.GOPAY_CLIENT_SECRET)

    # --- buyers -------------------------------------------------------------------------------------
    def payment_body(self, *, payment, return_url: str, notification_url: str) -> dict[str, Any]:
        order = payment.order
        if payment.currency not in CURRENCIES:
            raise ProviderRequestRejected(f"GoPay does not take {payment.currency}", code="currency_not_supported")
        body: dict[str, Any] = {
            "payer": {
                "allowed_payment_instruments": list(settings.GOPAY_ALLOWED_INSTRUMENTS),
                "contact": {"email": order.buyer_email},
            },
            "target": {"type": "ACCOUNT", "goid": settings.GOPAY_GOID},
            "amount": payment.amount_minor,
            "currency": payment.currency,
            "order_number": str(payment.pk),
            "order_description": (order.description or f"Order {order.reference or order.short_token}")[:256],
            "items": _items(order, payment.amount_minor),
            "callback": {"return_url": return_url, "notification_url": notification_url},
            "additional_params": [{"name": "order", "value": str(order.token)}],
            "lang": _language(order),
        }
        if order.capture_method == "manual":
            body["preauthorization"] = True
        if order.recurring:
            body["recurrence"] = {
                "recurrence_cycle": "ON_DEMAND",
                "recurrence_date_to": settings.GOPAY_RECURRENCE_DATE_TO,
            }
        return body

    def create_checkout(self, *, payment, return_url: str, cancel_url: str, notification_url: str) -> CheckoutRedirect:
        data = client.create_payment(
            self.payment_body(payment=payment, return_url=return_url, notification_url=notification_url)
        )
        if str(data.get("order_number")) != str(payment.pk) or not data.get("gw_url"):
            raise ProviderRequestRejected("GoPay's answer does not match the payment", code="unexpected_answer")
        return CheckoutRedirect(url=str(data["gw_url"]), provider_ref=str(data["id"]))

    def fetch_payment(self, *, payment) -> ProviderPaymentState:
        payment_id = parse_payment_id(payment.provider_ref)
        if payment_id is None:
            raise ProviderRequestRejected("The payment has no GoPay id", code="no_provider_ref")
        data = client.get_status(payment_id)
        if str(data.get("order_number")) != str(payment.pk) and not data.get("parent_id"):
            raise ProviderRequestRejected("GoPay's payment belongs to another order number", code="mismatch")
        return payment_state(data)

    def expire_checkout(self, *, payment) -> None:
        """GoPay lets an unpaid payment time out by itself (TIMEOUTED): nothing to call."""

    # --- refunds ------------------------------------------------------------------------------------
    def refund(self, *, refund) -> ProviderRefundResult:
        return gopay_refunds.send_refund(refund=refund)

    def list_refunds(self, *, payment) -> list[ProviderRefundState]:
        return gopay_refunds.refund_states(payment=payment)

    # --- pre-authorization and recurrence --------------------------------------------------------------
    def capture(self, *, payment, amount: Money) -> ProviderPaymentState:
        """Capture an authorized payment, all of it or part (GoPay releases the rest)."""
        payment_id = int(payment.provider_ref)
        if amount.amount_minor >= payment.authorized_minor:
            client.capture(payment_id)
        else:
            items = [{"type": "ITEM", "name": "Captured part", "amount": amount.amount_minor, "count": 1}]
            client.capture(payment_id, {"amount": amount.amount_minor, "items": items})
        return self.fetch_payment(payment=payment)

    def void(self, *, payment) -> ProviderPaymentState:
        client.void_authorization(int(payment.provider_ref))
        return self.fetch_payment(payment=payment)

    def charge_recurrence(self, *, parent_payment, payment) -> str:
        """Charge a later amount on the buyer's on-demand recurrence; returns the new GoPay payment id."""
        body = self.payment_body(payment=payment, return_url="", notification_url="")
        recurrence_body = {
            key: body[key] for key in ("amount", "currency", "order_number", "order_description", "items")
        }
        recurrence_body["additional_params"] = body["additional_params"]
        data = client.create_recurrence(int(parent_payment.provider_ref), recurrence_body)
        return str(data["id"])

    def stop_recurrence(self, *, parent_payment) -> None:
        client.void_recurrence(int(parent_payment.provider_ref))

    # --- notifications ------------------------------------------------------------------------------
    def parse_webhook(self, *, request: HttpRequest) -> list[ProviderEvent]:
        """`GET ?id=<GoPay payment id>`: an unsigned hint that the payment changed. Only the id of a payment
        of ours passes (no SDK call, no row otherwise); the processing task fetches the truth."""
        from payments.models import Payment, WebhookEvent

        if request.method != "GET" or set(request.GET) - {"id", "parent_id"}:
            raise WebhookRejected("not a GoPay notification", code="malformed_payload")
        payment_id = parse_payment_id(request.GET.get("id"))
        if payment_id is None:
            raise WebhookRejected("the id is not a GoPay payment id", code="malformed_id")
        payment = Payment.objects.filter(provider=self.name, provider_ref=str(payment_id)).only("pk").first()
        if payment is None:
            raise WebhookRejected("no payment of ours has that id", code="unknown_payment")
        if WebhookEvent.objects.filter(payment=payment, status=WebhookEvent.Status.RECEIVED).exists():
            return []  # a hint not yet acted on is waiting: it will fetch the newest state anyway
        return [self.interpret_event(payload={"id": payment_id, "payment": payment.pk})]

    def interpret_event(self, *, payload: dict[str, Any]) -> ProviderEvent:
        # GoPay's notifications carry no id of their own: each one is a new hint (made unique by the time).
        return ProviderEvent(
            event_id=f"{payload['id']}:{time.time_ns()}",
            event_type="payment.notification",
            kind="payment_changed",
            payload=payload,
            our_payment_id=int(payload["payment"]),
            payment_ref=str(payload["id"]),
        )
