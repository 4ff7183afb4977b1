"""Writes for payees."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.db.models import Q

from commissions.models import ConnectedAccountPayout, Payee
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
    address: str = "",
    uses_oss: bool = False,
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
            address=address,
            uses_oss=uses_oss,
            commission_bps=commission_bps,
        )
        record_audit(action="payee.create", actor=actor, actor_label=actor_label, obj=payee, now=now)
    return payee


def apply_connected_account_state(*, state, now: datetime, occurred_at: datetime | None = None) -> bool:
    """Keep a payee's Connect status in sync with account.updated. False if no payee has that account.

    Events arrive in any order: each carries a snapshot of the account as of its `occurred_at` (the event's
    creation), so one older than the snapshot already applied is skipped and never undoes a newer one.
    `stripe_synced_at` is the time of the snapshot applied."""
    payee = Payee.objects.filter(stripe_account_id=state.account_ref).first()
    if payee is None and state.our_payee_id is not None:
        payee = Payee.objects.filter(pk=state.our_payee_id, stripe_account_id__isnull=True).first()
    if payee is None:
        return False
    as_of = occurred_at or now
    changed = (payee.stripe_charges_enabled, payee.stripe_payouts_enabled) != (
        state.charges_enabled,
        state.payouts_enabled,
    )
    applied = (
        Payee.objects.filter(pk=payee.pk)
        .filter(Q(stripe_synced_at__isnull=True) | Q(stripe_synced_at__lte=as_of))
        .update(
            stripe_account_id=state.account_ref,
            stripe_charges_enabled=state.charges_enabled,
            stripe_payouts_enabled=state.payouts_enabled,
            stripe_details_submitted=state.details_submitted,
            stripe_requirements=state.requirements,
            stripe_synced_at=as_of,
        )
    )
    if applied and changed:
        record_audit(
            action="payee.connect_status",
            actor_label="stripe",
            obj=payee,
            now=now,
            message=f"charges={state.charges_enabled} payouts={state.payouts_enabled}",
        )
    return True


def record_bank_payout(*, state, now: datetime) -> ConnectedAccountPayout:
    """A connected account's payout to its bank (payout.paid/failed/updated), upserted by its id. A final
    status (paid, failed, canceled) is never overwritten by an older event."""
    payee = Payee.objects.filter(stripe_account_id=state.account_ref).first()
    row, created = ConnectedAccountPayout.objects.get_or_create(
        provider_ref=state.provider_ref,
        defaults={
            "payee": payee,
            "account_ref": state.account_ref,
            "amount_minor": state.amount.amount_minor,
            "currency": state.amount.currency,
            "status": state.status,
            "failure_message": state.failure_message,
            "arrival_date": state.arrival_date.date() if state.arrival_date else None,
            "updated_at": now,
        },
    )
    if not created and row.status not in ("paid", "failed", "canceled"):
        ConnectedAccountPayout.objects.filter(pk=row.pk).update(
            status=state.status, failure_message=state.failure_message, updated_at=now
        )
        row.refresh_from_db()
    return row


def start_stripe_onboarding(
    *, payee: Payee, return_url: str, refresh_url: str, now: datetime, actor=None, actor_label: str = ""
) -> str:
    """Create the payee's Express account (once: the idempotency key is the payee's id) and a fresh Account
    Link to Stripe's onboarding. Returns the link's URL. Raises ProviderConfigurationError, before anything
    is sent, unless Stripe has a secret key and a webhook secret (the account's status comes by webhook)."""
    from payments.providers.base import ProviderConfigurationError
    from payments.providers.registry import get_provider

    provider = get_provider("stripe")
    if not provider.is_configured():
        raise ProviderConfigurationError("Stripe is not configured", code="stripe_not_configured")
    if not payee.stripe_account_id:
        account_id = provider.create_connected_account(payee=payee)
        Payee.objects.filter(pk=payee.pk, stripe_account_id__isnull=True).update(stripe_account_id=account_id)
        payee.refresh_from_db()
    sequence = Payee.objects.filter(pk=payee.pk).values_list("stripe_onboarding_links", flat=True).get() + 1
    Payee.objects.filter(pk=payee.pk).update(stripe_onboarding_links=sequence)
    url = provider.create_onboarding_link(
        payee=payee, return_url=return_url, refresh_url=refresh_url, sequence=sequence
    )
    record_audit(
        action="payee.stripe_onboarding",
        actor=actor,
        actor_label=actor_label,
        obj=payee,
        now=now,
        message=payee.stripe_account_id or "",
    )
    return url
