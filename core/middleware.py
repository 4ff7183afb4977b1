"""Request-level guards that run before anything parses, stores or logs a request."""

from __future__ import annotations

import contextvars
import json
import logging
import uuid

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string

from core.card_guard import any_contains_card_number, contains_card_number, iter_scalars, mask_card_numbers
from core.errors import ErrorCode, error_body

logger = logging.getLogger("tollgate.security")
_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

_MACHINE_PREFIXES = ("/api/", "/webhooks/")


def current_request_id() -> str:
    return _request_id.get()


class RequestIdLogFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get()
        return True


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = uuid.uuid4().hex[:16]
        request.request_id = request_id
        token = _request_id.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            _request_id.reset(token)
        response["X-Request-Id"] = request_id
        return response


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith(_MACHINE_PREFIXES) or "application/json" in request.headers.get("Accept", "")


def refusal(
    request: HttpRequest, *, code: ErrorCode, message: str, status: int, title: str, detail: str
) -> HttpResponse:
    """A 4xx in the caller's language: the API error shape for machines, a plain page for people."""
    if _wants_json(request):
        return JsonResponse(error_body(code, message), status=status)
    html = render_to_string("errors/refused.html", {"title": title, "detail": detail, "code": code}, request=request)
    return HttpResponse(html, status=status)


class RequestSizeLimitMiddleware:
    """413 for bodies above DATA_UPLOAD_MAX_MEMORY_SIZE, decided from Content-Length before reading."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            return too_large(request)
        return self.get_response(request)


def too_large(request: HttpRequest) -> HttpResponse:
    limit_kib = settings.DATA_UPLOAD_MAX_MEMORY_SIZE // 1024
    return refusal(
        request,
        code=ErrorCode.REQUEST_TOO_LARGE,
        message=f"The request body is larger than {limit_kib} KiB.",
        status=413,
        title="That request was too large",
        detail="Please go back and try again.",
    )


class CardDataGuardMiddleware:
    """Refuse any request carrying something that looks like a card number (PCI DSS 3.3.1).

    Paths, query strings, the Idempotency-Key header (it is stored), form fields and bodies (JSON parsed,
    so escaped digits and numbers are caught too) are checked before any view, model or log sees them.
    Card details belong on the provider's page.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            found = self._contains_card_data(request)
        except RequestDataTooBig:
            return too_large(request)
        if found:
            # Masked here, and the response marked as logged so Django's own "Bad Request: <path>" line
            # does not repeat the raw path: the record itself never holds the number (Sentry, other handlers).
            logger.warning(
                "refused a request carrying card-like data: %s %s", request.method, mask_card_numbers(request.path)
            )
            response = refusal(
                request,
                code=ErrorCode.CARD_DATA_FORBIDDEN,
                message="Card numbers must never be sent to this API. Card details are entered only on "
                "the payment provider's page.",
                status=400,
                title="Please don't enter card numbers here",
                detail="For your safety we never accept card numbers on our pages. You will enter your card "
                "details on the payment provider's secure page after choosing how to pay.",
            )
            response._has_been_logged = True
            return response
        return self.get_response(request)

    @staticmethod
    def _contains_card_data(request: HttpRequest) -> bool:
        if contains_card_number(request.path):
            return True
        if contains_card_number(request.headers.get("Idempotency-Key", "")):  # stored with the request
            return True
        if any_contains_card_number(_query_items(request.GET)):
            return True
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return False
        body = request.body  # cached on the request; raises RequestDataTooBig above the limit
        if not body:
            return False
        content_type = request.content_type or ""
        if content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            if any_contains_card_number(_query_items(request.POST)):
                return True
            return any(contains_card_number(f.name or "") for f in request.FILES.values())
        text = body.decode("utf-8", errors="replace")
        try:
            parsed = json.loads(text)
        except ValueError:
            return contains_card_number(text)
        return any_contains_card_number(iter_scalars(parsed))


def _query_items(querydict) -> list[str]:
    values: list[str] = []
    for key, items in querydict.lists():
        values.append(key)
        values.extend(items)
    return values
