"""The only module that imports the Stripe SDK. It speaks plain dicts and our error types.

- API version pinned (STRIPE_API_VERSION); `STRIPE_API_BASE` points the SDK elsewhere (a local mock).
- Every POST carries the idempotency key the caller derived from one of our rows; the SDK retries network
  errors, 409s and 5xx with that same key (STRIPE_MAX_NETWORK_RETRIES times).
- Errors: a card decline -> PaymentDeclined(decline code); `idempotency_error` -> ProviderRequestRejected,
  never retried, logged loudly; 5xx/timeouts that survive the retries -> ProviderOutcomeUnknown on a POST
  (it may have happened: ask later) and ProviderUnavailable on a GET; bad credentials ->
  ProviderConfigurationError; other 4xx -> ProviderRequestRejected.
"""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

import stripe
from django.conf import settings

from payments.providers.base import (
    PaymentDeclined,
    ProviderConfigurationError,
    ProviderOutcomeUnknown,
    ProviderRequestRejected,
    ProviderUnavailable,
    WebhookRejected,
)

logger = logging.getLogger(__name__)
API_VERSION = "2026-10-28.endive"  # pinned: the version stripe-python 16.1 is generated for


@cache
def _client(api_key: str, api_base: str, retries: int) -> stripe.StripeClient:
    base = {"api": api_base} if api_base else None
    return stripe.StripeClient(api_key, stripe_version=API_VERSION, base_addresses=base, max_network_retries=retries)


def client() -> stripe.StripeClient:
    if not settings.STRIPE_SECRET_KEY:
        raise ProviderConfigurationError("STRIPE_SECRET_KEY is not set", code="stripe_not_configured")
    return _client(settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE, settings.STRIPE_MAX_NETWORK_RETRIES)


def _call(method: str, fn, *args: Any, **kwargs: Any) -> dict[str, Any]:
    try:
        result = fn(*args, **kwargs)
    except stripe.CardError as exc:
        error = exc.error
        code = getattr(error, "decline_code", None) or getattr(error, "code", None) or "card_declined"
        raise PaymentDeclined(exc.user_message or "The card was declined.", code=code) from exc
    except stripe.IdempotencyError as exc:
        logger.error("Stripe idempotency_error (a key reused with other parameters): %s", exc.user_message)
        raise ProviderRequestRejected(str(exc.user_message or exc), code="idempotency_error") from exc
    except (stripe.AuthenticationError, stripe.PermissionError) as exc:
        raise ProviderConfigurationError("Stripe refused our credentials", code="stripe_auth") from exc
    except stripe.RateLimitError as exc:
        raise ProviderUnavailable("Stripe rate limit", code="rate_limited") from exc
    except (stripe.APIConnectionError, stripe.APIError) as exc:
        if method == "post":
            raise ProviderOutcomeUnknown(
                "Stripe did not answer; the request may have been applied", code="outcome_unknown"
            ) from exc
        raise ProviderUnavailable("Stripe is not reachable", code="unavailable") from exc
    except stripe.InvalidRequestError as exc:
        raise ProviderRequestRejected(str(exc.user_message or exc), code=exc.code or "invalid_request") from exc
    except stripe.StripeError as exc:
        raise ProviderRequestRejected(
            str(exc.user_message or exc), code=getattr(exc, "code", "") or "stripe_error"
        ) from exc
    return result.to_dict() if hasattr(result, "to_dict") else dict(result)


def _post(fn, *args: Any, idempotency_key: str, **kwargs: Any) -> dict[str, Any]:
    return _call("post", fn, *args, options={"idempotency_key": idempotency_key}, **kwargs)


def create_checkout_session(params: dict[str, Any], *, idempotency_key: str) -> dict[str, Any]:
    return _post(client().v1.checkout.sessions.create, params, idempotency_key=idempotency_key)


def retrieve_checkout_session(session_id: str) -> dict[str, Any]:
    return _call(
        "get",
        client().v1.checkout.sessions.retrieve,
        session_id,
        {"expand": ["payment_intent.latest_charge.balance_transaction"]},
    )


def expire_checkout_session(session_id: str, *, idempotency_key: str) -> dict[str, Any]:
    return _post(client().v1.checkout.sessions.expire, session_id, idempotency_key=idempotency_key)


def retrieve_payment_intent(payment_intent_id: str) -> dict[str, Any]:
    return _call(
        "get",
        client().v1.payment_intents.retrieve,
        payment_intent_id,
        {"expand": ["latest_charge.balance_transaction"]},
    )


def list_refunds(payment_intent_id: str) -> list[dict[str, Any]]:
    page = _call("get", client().v1.refunds.list, {"payment_intent": payment_intent_id, "limit": 100})
    return list(page.get("data", []))


def create_refund(params: dict[str, Any], *, idempotency_key: str) -> dict[str, Any]:
    return _post(client().v1.refunds.create, params, idempotency_key=idempotency_key)


def create_transfer(params: dict[str, Any], *, idempotency_key: str) -> dict[str, Any]:
    return _post(client().v1.transfers.create, params, idempotency_key=idempotency_key)


def list_transfers(transfer_group: str) -> list[dict[str, Any]]:
    page = _call("get", client().v1.transfers.list, {"transfer_group": transfer_group, "limit": 10})
    return list(page.get("data", []))


def create_transfer_reversal(transfer_id: str, params: dict[str, Any], *, idempotency_key: str) -> dict[str, Any]:
    return _post(client().v1.transfers.reversals.create, transfer_id, params, idempotency_key=idempotency_key)


def create_account(params: dict[str, Any], *, idempotency_key: str) -> dict[str, Any]:
    return _post(client().v1.accounts.create, params, idempotency_key=idempotency_key)


def create_account_link(params: dict[str, Any], *, idempotency_key: str) -> dict[str, Any]:
    return _post(client().v1.account_links.create, params, idempotency_key=idempotency_key)


def list_events(*, created_gte: int, undelivered_only: bool, starting_after: str = "") -> dict[str, Any]:
    """One page (newest first, as Stripe lists them) of the events created since `created_gte` (Unix time)."""
    params: dict[str, Any] = {"created": {"gte": created_gte}, "limit": 100}
    if undelivered_only:
        params["delivery_success"] = False  # still being retried, or given up on: what our inbox may lack
    if starting_after:
        params["starting_after"] = starting_after
    return _call("get", client().v1.events.list, params)


def verify_event(*, payload: bytes, header: str | None, secrets: list[str], tolerance: int) -> None:
    """Check the Stripe-Signature header against each configured secret (several while one is rolled).
    Raises WebhookRejected with a reason code; never lets a decoding error escape as a 500."""
    if not header:
        raise WebhookRejected("no Stripe-Signature header", code="missing_signature")
    if not secrets:
        raise WebhookRejected("no webhook secret configured", code="not_configured")
    reason = "bad_signature"
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(payload, header, secret, tolerance)
        except UnicodeDecodeError:
            raise WebhookRejected("body is not UTF-8", code="malformed_payload") from None
        except stripe.SignatureVerificationError as exc:
            message = str(exc)
            if "tolerance" in message:
                reason = "stale_timestamp"
            elif "Unable to extract" in message:
                raise WebhookRejected("malformed Stripe-Signature header", code="malformed_signature") from None
            continue
        return
    raise WebhookRejected("no signature matches", code=reason)
