"""Writing audit entries. Success entries are written inside the action's transaction (they commit with
it); failures and denials are written after the failed transaction has rolled back, so they survive it."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest
from django.utils import timezone

from core.card_guard import mask_card_numbers
from core.models import AuditEntry


def client_ip(request: HttpRequest | None) -> str | None:
    if request is None:
        return None
    # Behind a proxy the real address is in X-Forwarded-For; we only trust REMOTE_ADDR here, the proxy
    # (gunicorn behind nginx in production) must be configured to set it.
    return request.META.get("REMOTE_ADDR") or None


def _escape(text: str) -> str:
    """No CR/LF in one-line fields (log injection, ASVS 7.3.1), and no card numbers anywhere."""
    return mask_card_numbers(text.replace("\r", "\\r").replace("\n", "\\n"))


def record_audit(
    *,
    action: str,
    actor: AbstractBaseUser | None = None,
    actor_label: str | None = None,
    obj: Any = None,
    object_type: str = "",
    object_id: str | int = "",
    amount_minor: int | None = None,
    currency: str = "",
    request: HttpRequest | None = None,
    outcome: str = AuditEntry.Outcome.SUCCESS,
    idempotency_key: str = "",
    message: str = "",
    metadata: dict[str, Any] | None = None,
    now=None,
) -> AuditEntry:
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or obj.pk
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    label = actor_label or (actor.get_username() if actor is not None else "system")
    return AuditEntry.objects.create(
        created_at=now or timezone.now(),
        actor=actor,
        actor_label=_escape(label)[:150],
        action=action,
        object_type=object_type,
        object_id=_escape(str(object_id))[:64],
        amount_minor=amount_minor,
        currency=currency,
        ip_address=client_ip(request),
        outcome=outcome,
        idempotency_key=_escape(idempotency_key)[:255],
        message=_escape(message),
        metadata=metadata or {},
    )
