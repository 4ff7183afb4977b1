"""Writes for payees."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction

from commissions.models import Payee
from core.audit import record_audit


def create_payee(
    *,
    kind: str,
    legal_name: str,
    country: str,
    email: str,
    now: datetime,
    display_name: str = "",
    vat_id: str = "",
    commission_bps: int | None = None,
    actor=None,
    actor_label: str = "",
) -> Payee:
    with transaction.atomic():
        payee = Payee.objects.create(
            kind=kind,
            legal_name=legal_name,
            display_name=display_name,
            country=country,
            email=email,
            vat_id=vat_id,
            commission_bps=commission_bps,
        )
        record_audit(action="payee.create", actor=actor, actor_label=actor_label, obj=payee, now=now)
    return payee
