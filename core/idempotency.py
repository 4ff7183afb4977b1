"""`Idempotency-Key` for API writes (draft-ietf-httpapi-idempotency-key-header).

- missing key -> 400 `idempotency_key_required`
- same key + same request -> the stored response again (header `Idempotent-Replayed: true`)
- same key + another request -> 422 `idempotency_key_reused`
- same key while the first request is still running -> 409 `idempotency_key_in_use`
Keys are per API client and kept at least 24 h (`purge_idempotency_records`).

The key is claimed in its own committed row (so concurrent requests see it), then the operation and the
stored response commit together in one transaction: a crash in between leaves no order behind, only a
claim that expires after TOLLGATE_IDEMPOTENCY_LOCK_TIMEOUT and may then be re-run safely. A failed
request (any 4xx/5xx) releases the key, so the client can fix the cause and retry with the same key.

Operations that call a provider (capturing a card hold) run with `atomic=False`
(`idempotent_outside_transaction`): no DB transaction is open across the network call; their services commit
their own steps, and the response is stored after. A crash in between leaves an expiring claim, and a re-run
meets the provider's own refusal (already captured) rather than a second capture.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from collections.abc import Callable
from datetime import datetime
from functools import wraps

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from core.errors import ConflictError, DomainError, ErrorCode
from core.models import ApiClient, IdempotencyRecord

HEADER = "Idempotency-Key"
_KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")


def request_fingerprint(request: Request) -> str:
    """Hash of method, path and body. JSON bodies are canonicalised so key order and spacing don't matter."""
    raw = request.body if hasattr(request, "body") else b""
    try:
        canonical = json.dumps(json.loads(raw or b"null"), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        canonical = raw
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.path.encode(), canonical):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def _claim(
    *, client: ApiClient, key: str, fingerprint: str, request: Request, now: datetime
) -> IdempotencyRecord | Response:
    """Take the key, or return the stored response, or raise 422/409."""
    try:
        with transaction.atomic():
            return IdempotencyRecord.objects.create(
                client=client,
                key=key,
                fingerprint=fingerprint,
                method=request.method,
                path=request.path[:255],
                locked_at=now,
                created_at=now,
            )
    except IntegrityError:
        pass
    record = IdempotencyRecord.objects.filter(client=client, key=key).first()
    if record is None:  # released by a failed request between our insert and this read: just retry
        return _claim(client=client, key=key, fingerprint=fingerprint, request=request, now=now)
    if record.fingerprint != fingerprint:
        raise DomainError(
            "This Idempotency-Key was already used for a different request. Use a new key for a new request.",
            code=ErrorCode.IDEMPOTENCY_KEY_REUSED,
            status=422,
        )
    if record.status == IdempotencyRecord.Status.COMPLETED:
        response = Response(record.response_body, status=record.response_status)
        response["Idempotent-Replayed"] = "true"
        return response
    stale_before = now - settings.TOLLGATE_IDEMPOTENCY_LOCK_TIMEOUT
    if record.locked_at < stale_before:
        taken = IdempotencyRecord.objects.filter(
            pk=record.pk, status=IdempotencyRecord.Status.IN_PROGRESS, locked_at=record.locked_at
        ).update(locked_at=now)
        if taken:
            record.locked_at = now
            return record
    raise ConflictError(
        "A request with this Idempotency-Key is still being processed. Retry in a moment.",
        code=ErrorCode.IDEMPOTENCY_KEY_IN_USE,
    )


def run_idempotent(*, request: Request, operation: Callable[[], Response], atomic: bool = True) -> Response:
    client = request.auth
    key = request.headers.get(HEADER)
    if key is None or key == "":
        raise DomainError(
            f"Send an {HEADER} header with a unique value (e.g. a UUID) on every POST.",
            code=ErrorCode.IDEMPOTENCY_KEY_REQUIRED,
        )
    if not _KEY_PATTERN.match(key):
        raise DomainError(f"{HEADER} must be 1–255 printable ASCII characters.", code=ErrorCode.IDEMPOTENCY_KEY_INVALID)
    claimed = _claim(
        client=client, key=key, fingerprint=request_fingerprint(request), request=request, now=timezone.now()
    )
    if isinstance(claimed, Response):
        return claimed
    record = claimed
    request.idempotency_key = key
    try:
        with transaction.atomic() if atomic else contextlib.nullcontext():
            response = operation()
            if not 200 <= response.status_code < 300:
                raise _Failed(response)
            body = json.loads(JSONRenderer().render(response.data) or b"null")
            done = IdempotencyRecord.objects.filter(
                pk=record.pk, status=IdempotencyRecord.Status.IN_PROGRESS, locked_at=record.locked_at
            ).update(
                status=IdempotencyRecord.Status.COMPLETED,
                response_status=response.status_code,
                response_body=body,
                completed_at=timezone.now(),
            )
            if not done:  # our claim was taken over after the lock timeout: the other request owns it
                raise ConflictError(
                    "A request with this Idempotency-Key is still being processed.",
                    code=ErrorCode.IDEMPOTENCY_KEY_IN_USE,
                )
    except _Failed as failed:
        _release(record)
        return failed.response
    except BaseException:
        _release(record)
        raise
    return response


class _Failed(Exception):
    def __init__(self, response: Response):
        self.response = response


def _release(record: IdempotencyRecord) -> None:
    IdempotencyRecord.objects.filter(
        pk=record.pk, status=IdempotencyRecord.Status.IN_PROGRESS, locked_at=record.locked_at
    ).delete()


def idempotent(method: Callable) -> Callable:
    """Decorate an APIView's `post` so it runs under the client's Idempotency-Key."""

    @wraps(method)
    def wrapper(self, request, *args, **kwargs):
        return run_idempotent(request=request, operation=lambda: method(self, request, *args, **kwargs))

    return wrapper


def idempotent_outside_transaction(method: Callable) -> Callable:
    """As `idempotent`, for operations that call a provider: no transaction around the operation."""

    @wraps(method)
    def wrapper(self, request, *args, **kwargs):
        return run_idempotent(request=request, operation=lambda: method(self, request, *args, **kwargs), atomic=False)

    return wrapper


def purge_idempotency_records(*, now: datetime) -> int:
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=now - settings.TOLLGATE_IDEMPOTENCY_KEY_TTL).delete()
    return deleted
