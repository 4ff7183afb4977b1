"""Error codes, the domain error base class, and the API error shape.

Every API error is `{"error": {"code": "...", "message": "...", "fields": {...}}}` with a 4xx status;
an unexpected exception becomes a generic 500 with an error id and no detail (ASVS 7.4.1).
"""

from __future__ import annotations

import logging
import uuid
from enum import StrEnum
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions as drf_exceptions
from rest_framework import status
from rest_framework.response import Response

logger = logging.getLogger(__name__)


class ErrorCode(StrEnum):
    VALIDATION_ERROR = "validation_error"
    MALFORMED_JSON = "malformed_json"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    REQUEST_TOO_LARGE = "request_too_large"
    CARD_DATA_FORBIDDEN = "card_data_forbidden"
    AUTHENTICATION_REQUIRED = "authentication_required"
    PERMISSION_DENIED = "permission_denied"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    RATE_LIMITED = "rate_limited"
    INTERNAL_ERROR = "internal_error"
    IDEMPOTENCY_KEY_REQUIRED = "idempotency_key_required"
    IDEMPOTENCY_KEY_INVALID = "idempotency_key_invalid"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    IDEMPOTENCY_KEY_IN_USE = "idempotency_key_in_use"
    # orders and payments
    UNKNOWN_PAYEE = "unknown_payee"
    PAYEE_INACTIVE = "payee_inactive"
    CURRENCY_NOT_ENABLED = "currency_not_enabled"
    AMOUNT_NOT_POSITIVE = "amount_must_be_positive"
    AMOUNT_TOO_LARGE = "amount_too_large"
    QUANTITY_NOT_POSITIVE = "quantity_must_be_positive"
    TOO_MANY_LINES = "too_many_lines"
    NO_LINES = "no_lines"
    DUPLICATE_REFERENCE = "duplicate_reference"
    ORDER_NOT_OPEN = "order_not_open"
    ORDER_NOT_CANCELABLE = "order_not_cancelable"
    ORDER_EXPIRED = "order_expired"
    PAYMENT_IN_PROGRESS = "payment_in_progress"
    PROVIDER_NOT_AVAILABLE = "provider_not_available"
    PROVIDER_UNAVAILABLE = "provider_unavailable"
    PROVIDER_NOT_CONFIGURED = "provider_not_configured"
    PROVIDER_REJECTED = "provider_rejected"
    PAYMENT_LINK_INACTIVE = "payment_link_inactive"
    INVALID_VAT_ID = "invalid_vat_id"
    VAT_RATE_MISSING = "vat_rate_missing"
    # pre-authorization (manual capture)
    PAYMENT_NOT_AUTHORIZED = "payment_not_authorized"
    PAYMENT_AUTHORIZED = "payment_authorized"
    CAPTURE_EXCEEDS_AUTHORIZED = "capture_exceeds_authorized"
    CAPTURE_NOT_SUPPORTED = "capture_not_supported"
    VOID_NOT_SUPPORTED = "void_not_supported"
    # refunds
    REFUND_EXCEEDS_CAPTURED = "refund_exceeds_captured"
    REFUND_NOT_ALLOWED = "refund_not_allowed"
    REFUND_BLOCKED_BY_DISPUTE = "refund_blocked_by_dispute"
    ORDER_NOT_REFUNDABLE = "order_not_refundable"
    REFUND_OUTSIDE_POLICY = "refund_outside_policy"
    REFUND_METHOD_NOT_ALLOWED = "refund_method_not_allowed"
    REFUND_NOT_PENDING = "refund_not_pending"
    APPROVER_IS_REQUESTER = "approver_is_requester"
    OVERRIDE_REASON_REQUIRED = "override_reason_required"
    UNKNOWN_ORDER_LINE = "unknown_order_line"
    # store credit
    STORE_CREDIT_INVALID = "store_credit_invalid"  # unknown, spent, expired or of another currency
    STORE_CREDIT_INSUFFICIENT = "store_credit_insufficient"  # covers only part of the order
    # recurring payments
    RECURRING_NOT_AVAILABLE = "recurring_not_available"
    CAPTURE_NOT_AVAILABLE = "capture_not_available"
    RECURRENCE_STOPPED = "recurrence_stopped"
    RECURRENCE_NOT_ACTIVE = "recurrence_not_active"
    # ledger
    LEDGER_CONFLICT = "ledger_conflict"
    INSUFFICIENT_FUNDS = "insufficient_funds"


class DomainError(Exception):
    """A failure the caller can understand and act on. Subclasses set `code` and `status`."""

    code: ErrorCode = ErrorCode.VALIDATION_ERROR
    status: int = 400
    default_message = "The request could not be processed."

    def __init__(
        self,
        message: str | None = None,
        *,
        code: ErrorCode | None = None,
        fields: dict[str, Any] | None = None,
        status: int | None = None,
    ):
        self.message = message or self.default_message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.fields = fields or {}
        super().__init__(self.message)


class NotFoundError(DomainError):
    code = ErrorCode.NOT_FOUND
    status = 404
    default_message = "Not found."


class ConflictError(DomainError):
    status = 409


def error_body(code: str, message: str, fields: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"code": str(code), "message": message}
    if fields:
        body["fields"] = fields
    body.update(extra)
    return {"error": body}


def error_response(
    code: str, message: str, status_code: int, fields: dict[str, Any] | None = None, **extra: Any
) -> Response:
    return Response(error_body(code, message, fields, **extra), status=status_code)


def _flatten_validation(detail: Any, prefix: str = "") -> dict[str, list[dict[str, str]]]:
    """DRF's nested error detail -> {"lines[0].payee": [{"code": ..., "message": ...}]}."""
    flat: dict[str, list[dict[str, str]]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = str(key)
            if isinstance(key, int):  # a list's item (DRF reports ListSerializer errors as {index: ...})
                path = f"{prefix}[{key}]"
            elif name == "non_field_errors":
                path = prefix or name
            else:
                path = f"{prefix}.{name}" if prefix else name
            for k, v in _flatten_validation(value, path).items():
                flat.setdefault(k, []).extend(v)
    elif isinstance(detail, list):
        if all(isinstance(item, drf_exceptions.ErrorDetail | str) for item in detail):
            for item in detail:
                code = getattr(item, "code", "invalid") or "invalid"
                flat.setdefault(prefix or "non_field_errors", []).append({"code": str(code), "message": str(item)})
        else:
            for index, item in enumerate(detail):
                if item:
                    for k, v in _flatten_validation(item, f"{prefix}[{index}]").items():
                        flat.setdefault(k, []).extend(v)
    else:
        code = getattr(detail, "code", "invalid") or "invalid"
        flat.setdefault(prefix or "non_field_errors", []).append({"code": str(code), "message": str(detail)})
    return flat


# DRF's generic field codes say nothing a client can act on; ours do.
_GENERIC_FIELD_CODES = {
    "invalid",
    "required",
    "null",
    "blank",
    "does_not_exist",
    "invalid_choice",
    "max_length",
    "min_length",
    "max_value",
    "min_value",
    "parse_error",
    "not_a_list",
    "empty",
    "max_digits",
    "max_decimal_places",
    "incorrect_type",
    "date",
    "datetime",
    "max_string_length",
    "unique",
}


def validation_error_response(detail: Any) -> Response:
    fields = _flatten_validation(detail)
    codes = {entry["code"] for entries in fields.values() for entry in entries}
    specific = sorted(codes - _GENERIC_FIELD_CODES)
    code = specific[0] if len(specific) == 1 else ErrorCode.VALIDATION_ERROR
    first_path, first_entries = next(iter(fields.items()), ("", [{"message": "Invalid input."}]))
    label = "" if first_path == "non_field_errors" else f"{first_path}: "
    message = f"{label}{first_entries[0]['message']}"
    if len(fields) > 1:
        message += f" (and {len(fields) - 1} more field error{'s' if len(fields) > 2 else ''})"
    return error_response(code, message, status.HTTP_400_BAD_REQUEST, fields)


_DRF_MAP: list[tuple[type[Exception], ErrorCode, str]] = [
    (drf_exceptions.ParseError, ErrorCode.MALFORMED_JSON, "The request body is not valid JSON."),
    (drf_exceptions.UnsupportedMediaType, ErrorCode.UNSUPPORTED_MEDIA_TYPE, "Send the body as application/json."),
    (
        drf_exceptions.NotAuthenticated,
        ErrorCode.AUTHENTICATION_REQUIRED,
        "Send your API key as 'Authorization: Api-Key <key>'.",
    ),
    (drf_exceptions.AuthenticationFailed, ErrorCode.AUTHENTICATION_REQUIRED, "The API key is not valid."),
    (drf_exceptions.PermissionDenied, ErrorCode.PERMISSION_DENIED, "You may not do this."),
    (drf_exceptions.NotFound, ErrorCode.NOT_FOUND, "Not found."),
    (drf_exceptions.MethodNotAllowed, ErrorCode.METHOD_NOT_ALLOWED, "This method is not allowed here."),
    (drf_exceptions.NotAcceptable, ErrorCode.VALIDATION_ERROR, "Ask for application/json."),
    (drf_exceptions.Throttled, ErrorCode.RATE_LIMITED, "Too many requests; slow down and retry later."),
]


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    if isinstance(exc, DomainError):
        return error_response(exc.code, exc.message, exc.status, exc.fields or None)
    if isinstance(exc, Http404):
        return error_response(ErrorCode.NOT_FOUND, "Not found.", 404)
    if isinstance(exc, DjangoPermissionDenied):
        return error_response(ErrorCode.PERMISSION_DENIED, "You may not do this.", 403)
    if isinstance(exc, drf_exceptions.ValidationError):
        return validation_error_response(exc.detail)
    for exc_type, code, message in _DRF_MAP:
        if isinstance(exc, exc_type):
            response = error_response(code, message, exc.status_code)  # type: ignore[attr-defined]
            if isinstance(exc, drf_exceptions.Throttled) and exc.wait:
                response["Retry-After"] = str(int(exc.wait))
            return response
    if isinstance(exc, drf_exceptions.APIException):
        return error_response(ErrorCode.VALIDATION_ERROR, str(exc.detail), exc.status_code)
    error_id = uuid.uuid4().hex[:12]
    logger.exception("unhandled API error %s", error_id)
    return error_response(
        ErrorCode.INTERNAL_ERROR,
        f"Something went wrong on our side. Quote error id {error_id} to support.",
        500,
        error_id=error_id,
    )
