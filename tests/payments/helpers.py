"""Helpers shared by the orders, idempotency, webhook and card-guard tests.

They build requests and sandbox events the way a marketplace or the sandbox gateway would, and read back
what the database holds, so tests can assert on rows, balances and bodies.
"""

from __future__ import annotations

import json
import re
import secrets
import time
import uuid
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from unittest import mock

from django.apps import apps
from django.conf import settings
from django.core import serializers
from django.utils import timezone

from core.models import AuditEntry, IdempotencyRecord
from ledger.models import Entry, LedgerTransaction
from payments.models import Order, OrderLine, Payment, PaymentStatus, WebhookEvent
from payments.providers.registry import get_provider
from payments.providers.sandbox import gateway
from payments.providers.sandbox.models import SandboxEvent, SandboxSession
from payments.providers.sandbox.signing import HEADER as SIGNATURE_HEADER
from payments.providers.sandbox.signing import signature_header
from payments.services.checkout import checkout_urls, start_payment
from payments.services.orders import LineInput, create_order
from payments.state import transition_payment

ORDERS_URL = "/api/v1/orders"
WEBHOOK_URL = "/webhooks/sandbox/"

# A Luhn-valid test PAN in the three shapes people type it.
PAN = "4111111111111111"
PAN_FORMATS = ["4111111111111111", "4111 1111 1111 1111", "4111-1111-1111-1111"]
# The PAN's digits with any single space or dash between them: matches all three shapes in a dump or log.
PAN_ANYWHERE = re.compile(r"[ \-]?".join(PAN))


# --- orders -----------------------------------------------------------------------------------------


def line(payee_obj, **overrides: Any) -> dict[str, Any]:
    data = {"payee": payee_obj.pk, "description": "Amplifier 4x100 W", "quantity": 1, "unit_amount": 12900}
    data.update(overrides)
    return data


def order_payload(payee, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "currency": "EUR",
        "buyer": {"email": "buyer@example.com", "country": "CZ"},
        "lines": [line(payee)],
    }
    data.update(overrides)
    return data


PAN_FIELDS = [
    "description",
    "buyer_email",
    "buyer_vat_id",
    "line_description",
    "metadata_value",
    "metadata_key",
    "reference",
]


def order_payload_with_pan(payee, where: str, pan: str) -> dict[str, Any]:
    """A valid order payload except for a card number in the field named by `where` (see PAN_FIELDS)."""
    payload = order_payload(payee, reference="MKT-7", metadata={"cart": "c-1"})
    if where == "description":
        payload["description"] = f"Paid with {pan}"
    elif where == "buyer_email":
        payload["buyer"]["email"] = f"{pan.replace(' ', '')}@example.com"
    elif where == "buyer_vat_id":
        payload["buyer"]["vat_id"] = pan
    elif where == "line_description":
        payload["lines"][0]["description"] = f"card {pan} exp 12/29"
    elif where == "metadata_value":
        payload["metadata"] = {"note": pan}
    elif where == "metadata_key":
        payload["metadata"] = {pan: "x"}
    elif where == "reference":
        payload["reference"] = pan
    else:
        raise ValueError(where)
    return payload


def new_key() -> str:
    return f"key-{uuid.uuid4()}"


def post_order(client, payload: Any, *, key: str | None = "auto"):
    """POST /api/v1/orders as JSON with an Idempotency-Key (a fresh one unless given; None sends none)."""
    headers = {}
    if key is not None:
        headers["HTTP_IDEMPOTENCY_KEY"] = new_key() if key == "auto" else key
    return client.post(ORDERS_URL, payload, format="json", **headers)


def write_counts() -> dict[str, int]:
    """Rows an order creation would leave behind."""
    return {
        "orders": Order.objects.count(),
        "lines": OrderLine.objects.count(),
        "idempotency": IdempotencyRecord.objects.count(),
        "audit": AuditEntry.objects.count(),
    }


def make_order(payee, *, unit_amount_minor: int = 12900, quantity: int = 1, api_client=None, **kwargs) -> Order:
    now = kwargs.pop("now", None) or timezone.now()
    return create_order(
        currency=kwargs.pop("currency", "EUR"),
        buyer_email=kwargs.pop("buyer_email", "buyer@example.com"),
        buyer_country="CZ",
        now=now,
        api_client=api_client,
        lines=[
            LineInput(
                payee_id=payee.pk, description="Amplifier", quantity=quantity, unit_amount_minor=unit_amount_minor
            )
        ],
        **kwargs,
    )


# --- sandbox payments and events ----------------------------------------------------------------------


@contextmanager
def gateway_deliveries_suppressed():
    """The gateway's own webhook deliveries are not sent (tests build and sign events themselves)."""
    from payments.providers.sandbox.tasks import deliver_sandbox_event

    with mock.patch.object(deliver_sandbox_event, "delay") as delay:
        yield delay


def start_sandbox_payment(order: Order, *, now: datetime | None = None) -> Payment:
    return start_payment(order=order, provider_name="sandbox", now=now or timezone.now())


def open_second_attempt(order: Order, *, now: datetime | None = None) -> Payment:
    """A second sandbox attempt for the same order with its own checkout session, as if the buyer had
    opened another checkout while the first one was still open (start_payment itself would reuse it)."""
    now = now or timezone.now()
    payment = Payment.objects.create(
        order=order,
        provider="sandbox",
        amount_minor=order.total_minor,
        currency=order.currency,
        created_at=now,
        status_changed_at=now,
    )
    redirect = get_provider("sandbox").create_checkout(payment=payment, **checkout_urls(order, "sandbox"))
    transition_payment(
        payment=payment,
        to=PaymentStatus.PENDING,
        now=now,
        provider_ref=redirect.provider_ref,
        checkout_url=redirect.url,
    )
    return payment


def session_of(payment: Payment) -> SandboxSession:
    return gateway.get_session(payment.provider_ref)


def sandbox_path(payment: Payment) -> str:
    return re.sub(r"^http://testserver", "", payment.checkout_url)


def event_payload(
    session: SandboxSession, status: str, *, event_id: str | None = None, **object_overrides: Any
) -> dict[str, Any]:
    """A sandbox event in the gateway's own shape, for `session` in `status` (whatever the session says)."""
    obj = gateway.session_as_dict(session)
    obj["status"] = status
    succeeded = status == "succeeded"
    obj["fee"] = gateway.sandbox_fee(session.amount_minor, session.currency) if succeeded else 0
    obj["payment"] = f"sbx_pay_{session.token.hex[:16]}" if succeeded else None
    if status == "failed":
        code = object_overrides.pop("decline_code", "card_declined")
        obj["decline_code"], obj["decline_message"] = code, gateway.DECLINE_REASONS[code]
    obj.update(object_overrides)
    return {
        "id": event_id or f"evt_test_{secrets.token_hex(12)}",
        "object": "event",
        "type": f"payment.{status}",
        "created": int(time.time()),
        "data": {"object": obj},
    }


def encode(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def signed_headers(body: bytes, *, secret: str | None = None, timestamp: int | None = None) -> dict[str, str]:
    secret = settings.SANDBOX_WEBHOOK_SECRET if secret is None else secret
    stamp = int(time.time()) if timestamp is None else timestamp
    return {SIGNATURE_HEADER: signature_header(payload=body, secret=secret, timestamp=stamp)}


def post_webhook(client, body: bytes, headers: dict[str, str] | None = None):
    """POST raw bytes to /webhooks/sandbox/ with the given (already built) headers."""
    return client.post(WEBHOOK_URL, data=body, content_type="application/json", headers=headers or {})


def post_event(client, payload: dict[str, Any], **sign_kwargs: Any):
    body = encode(payload)
    return post_webhook(client, body, signed_headers(body, **sign_kwargs))


def latest_gateway_event(session: SandboxSession) -> SandboxEvent:
    return SandboxEvent.objects.filter(session=session).latest("pk")


# --- reading back ---------------------------------------------------------------------------------------


def ledger_footprint(payment: Payment) -> list[tuple[str, str, list[tuple[str, str, int]]]]:
    """The ledger transactions about one payment, as comparable values (key pattern, kind, entries)."""
    result = []
    for tx in LedgerTransaction.objects.filter(metadata__payment=payment.pk).order_by("idempotency_key"):
        entries = sorted(Entry.objects.filter(transaction=tx).values_list("account__code", "direction", "amount_minor"))
        result.append((tx.idempotency_key.replace(str(payment.pk), "<id>"), tx.kind, entries))
    return result


def captures_of(payment: Payment) -> int:
    return LedgerTransaction.objects.filter(idempotency_key=f"capture:payment:{payment.pk}").count()


def webhook_rows() -> int:
    return WebhookEvent.objects.count()


def dump_database() -> str:
    """Every row of every model, serialized: what a database dump would show."""
    chunks = []
    for model in apps.get_models(include_auto_created=True):
        rows = model._base_manager.all()
        chunks.append(serializers.serialize("json", rows))
    return "\n".join(chunks)


def log_texts(caplog) -> list[str]:
    """Everything a log record could write: its formatted message, raw args and exception text."""
    texts = []
    for record in caplog.records:
        texts.append(record.getMessage())
        texts.append(repr(record.args))
        if record.exc_info:
            import traceback

            texts.append("".join(traceback.format_exception(*record.exc_info)))
        if record.exc_text:
            texts.append(record.exc_text)
    return texts
