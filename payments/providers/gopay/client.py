"""The only module that imports the GoPay SDK. It speaks plain dicts/lists and our error types.

- OAuth client credentials: creating a payment uses a `payment-create` token, everything else `payment-all`.
  Tokens live 30 minutes; they are cached in Django's cache (shared by every process with Redis) and the
  SDK fetches a new one when ours is older. A 401 drops the cached token and retries once, never more.
- The SDK never raises on network errors: it returns a response with status 0. That is never success: a
  status 0 or a 5xx on a call that changes something is `ProviderOutcomeUnknown` (it may have happened:
  GoPay has no idempotency keys, so the caller reads the truth before any retry); on a read it is
  `ProviderUnavailable`.
- 4xx bodies (`{"errors": [{"error_name", "message", ...}]}`) become `ProviderRequestRejected` with the
  first error's name as the code.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from typing import Any

import gopay
from django.conf import settings
from django.core.cache import cache
from gopay.enums import TokenScope
from gopay.services import AbstractCache

from payments.providers.base import (
    ProviderConfigurationError,
    ProviderOutcomeUnknown,
    ProviderRequestRejected,
    ProviderUnavailable,
)

logger = logging.getLogger(__name__)
CREATE = TokenScope.CREATE_PAYMENT
ALL = TokenScope.ALL
TOKEN_CACHE_SECONDS = 29 * 60  # GoPay's tokens live 30 minutes


class _DjangoTokenCache(AbstractCache):
    """Tokens in Django's cache, so that every worker shares one per scope instead of one per process."""

    @staticmethod
    def _key(key: str) -> str:
        return "gopay-token:" + hashlib.sha256(key.encode()).hexdigest()[:32]

    def get_token(self, key: str):
        return cache.get(self._key(key))

    def set_token(self, key: str, token) -> None:
        if token is None:
            cache.delete(self._key(key))
        else:
            cache.set(self._key(key), token, TOKEN_CACHE_SECONDS)


_TOKENS = _DjangoTokenCache()
_sdk_objects: dict[tuple, Any] = {}
_lock = threading.Lock()


def reset() -> None:
    """Forget the SDK objects (tests; a change of credentials)."""
    with _lock:
        _sdk_objects.clear()


def _config() -> dict[str, Any]:
    if not (settings.GOPAY_GOID and settings.GOPAY_CLIENT_ID and settings.GOPAY_CLIENT_SECRET):
        raise ProviderConfigurationError("GoPay is not configured", code="gopay_not_configured")
    return {
        "goid": settings.GOPAY_GOID,
        "client_id": settings.GOPAY_CLIENT_ID,
        "client_secret": settings.GOPAY_CLIENT_SECRET,
        "gateway_url": settings.GOPAY_GATEWAY_URL,
        "timeout": settings.GOPAY_TIMEOUT,
    }


def _log(request, response) -> None:
    # The SDK's default logger prints whole bodies (buyer contact data) at DEBUG: ours logs the call only.
    logger.debug("GoPay %s %s -> %s", request.method, request.path, response.status_code)


def _sdk(scope: TokenScope):
    config = _config()
    key = (scope, *sorted(config.items()))
    with _lock:
        sdk = _sdk_objects.get(key)
        if sdk is None:
            # Building the SDK object fetches a token at once; a failure there leaves it without one, and the
            # next call fetches again.
            sdk = gopay.payments({**config, "scope": scope}, {"cache": _TOKENS, "logger": _log})
            _sdk_objects[key] = sdk
    return sdk


def _drop_token(sdk) -> None:
    api = sdk.gopay.api_client
    _TOKENS.set_token(api.client, None)


def _errors(response) -> tuple[str, str]:
    body = response.json if isinstance(response.json, dict) else {}
    errors = body.get("errors") or []
    if errors and isinstance(errors[0], dict):
        first = errors[0]
        name = str(first.get("error_name") or first.get("error_code") or "gopay_error")
        message = str(first.get("message") or name)
        if first.get("field"):
            message = f"{first['field']}: {message}"
        return name, message
    return "gopay_error", f"GoPay answered {response.status_code}"


def _call(scope: TokenScope, changes: bool, method: str, *args: Any) -> Any:
    sdk = _sdk(scope)
    for attempt in (1, 2):
        if sdk.gopay.api_client.token is None:
            raise ProviderUnavailable(
                "GoPay gave us no access token (GoPay down, or wrong GOPAY_CLIENT_ID/SECRET)", code="token_unavailable"
            )
        response = getattr(sdk, method)(*args)
        if response.status_code == 401 and attempt == 1:
            _drop_token(sdk)  # revoked or expired early: one fresh token, one more try
            continue
        break
    status = response.status_code
    if status == 0 or status >= 500:
        if changes:
            raise ProviderOutcomeUnknown(
                f"GoPay did not answer ({status}); the request may have been applied", code="outcome_unknown"
            )
        raise ProviderUnavailable(f"GoPay is not reachable ({status})", code="unavailable")
    if status in (401, 403):
        _drop_token(sdk)
        raise ProviderConfigurationError("GoPay refused our credentials", code="gopay_auth")
    if status >= 400:
        code, message = _errors(response)
        raise ProviderRequestRejected(message, code=code)
    return response.json


# --- the calls Tollgate makes ------------------------------------------------------------------------------


def create_payment(body: dict[str, Any]) -> dict[str, Any]:
    return _call(CREATE, True, "create_payment", body)


def get_status(payment_id: int) -> dict[str, Any]:
    return _call(ALL, False, "get_status", payment_id)


def refund(payment_id: int, amount_minor: int) -> dict[str, Any]:
    return _call(ALL, True, "refund_payment", payment_id, amount_minor)


def refund_history(payment_id: int) -> list[dict[str, Any]]:
    result = _call(ALL, False, "get_history_of_refunds", payment_id)
    return result if isinstance(result, list) else []


def capture(payment_id: int, body: dict[str, Any] | None = None) -> dict[str, Any]:
    if body is None:
        return _call(ALL, True, "capture_authorization", payment_id)
    return _call(ALL, True, "capture_authorization_partial", payment_id, body)


def void_authorization(payment_id: int) -> dict[str, Any]:
    return _call(ALL, True, "void_authorization", payment_id)


def create_recurrence(parent_id: int, body: dict[str, Any]) -> dict[str, Any]:
    return _call(ALL, True, "create_recurrence", parent_id, body)


def void_recurrence(parent_id: int) -> dict[str, Any]:
    return _call(ALL, True, "void_recurrence", parent_id)
