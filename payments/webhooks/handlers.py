"""What each kind of provider event does. Every handler is idempotent and order-independent: it reconciles
our rows and the ledger with the state the event carries (or, where the event carries none, with what the
provider says now). Called inside the processing transaction; raising fails the event, which is retried."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from payments.models import Payment, PaymentStatus
from payments.providers.base import RECURRING, ProviderEvent
from payments.providers.registry import get_provider
from payments.services.fulfilment import UnknownPayment, apply_payment_state

Outcome = tuple[str, int | None]  # (WebhookEvent status, payment id)


def find_payment(provider_name: str, event: ProviderEvent) -> Payment:
    """The payment an event is about: by the provider's checkout ref, its payment ref, or our own id in the
    event's metadata; as a last resort the provider is asked whose payment the ref is."""
    state = event.payment_state
    refs = [ref for ref in (state.provider_ref if state else "",) if ref]
    payment_refs = [ref for ref in (event.payment_ref, state.provider_payment_ref if state else "") if ref]
    query = Payment.objects.filter(provider=provider_name)
    for ref in refs:
        if payment := query.filter(provider_ref=ref).first():
            return payment
    for ref in payment_refs:
        if payment := query.filter(provider_payment_ref=ref).first():
            return payment
    our_id = event.our_payment_id
    if our_id is None and payment_refs:
        lookup = getattr(get_provider(provider_name), "lookup_payment_id", None)
        our_id = lookup(payment_ref=payment_refs[0]) if lookup else None
    payment = query.filter(pk=our_id).first() if our_id is not None else None
    if payment is not None and (not refs or not payment.provider_ref or payment.provider_ref in refs):
        return payment
    raise UnknownPayment("The event names no payment of ours (yet).")


def settled_payment(provider_name: str, event: ProviderEvent, now: datetime) -> Payment:
    """The event's payment, made to agree with the provider first if we have not seen it succeed yet (a refund
    or dispute event can arrive before the payment's own success event)."""
    from payments.services.checkout import sync_payment_from_provider

    payment = find_payment(provider_name, event)
    if payment.status != PaymentStatus.SUCCEEDED:
        payment = sync_payment_from_provider(payment=payment, now=now, source="webhook")
    if payment.status != PaymentStatus.SUCCEEDED:
        raise UnknownPayment(f"Payment {payment.pk} has not succeeded yet; the event will be retried.")
    return payment


def handle_payment(provider_name: str, event: ProviderEvent, now: datetime) -> Outcome:
    payment = find_payment(provider_name, event)
    apply_payment_state(payment_id=payment.pk, state=event.payment_state, now=now, source="webhook")
    return "processed", payment.pk


def handle_payment_changed(provider_name: str, event: ProviderEvent, now: datetime) -> Outcome:
    """An unsigned hint (GoPay): the payment changed. Fetch the truth and apply it, refunds included."""
    payment = Payment.objects.filter(provider=provider_name, pk=event.our_payment_id).first()
    if payment is None:
        raise UnknownPayment("The notification names no payment of ours.")
    state = get_provider(provider_name).fetch_payment(payment=payment)
    apply_payment_state(payment_id=payment.pk, state=state, now=now, source="notification")
    payment.refresh_from_db()
    if RECURRING in get_provider(provider_name).capabilities:  # a recurrence set up or stopped; a charge's outcome
        from recurring.services import sync_recurrence

        sync_recurrence(payment=payment, state=state, now=now)
    if payment.status == PaymentStatus.SUCCEEDED:
        sync_refunds(provider_name, payment, now)  # a refund made in GoPay's portal shows only here
    return "processed", payment.pk


def handle_refund(provider_name: str, event: ProviderEvent, now: datetime) -> Outcome:
    from refunds.services import apply_provider_refund

    payment = settled_payment(provider_name, event, now)
    apply_provider_refund(payment=payment, state=event.refund_state, now=now)
    return "processed", payment.pk


def sync_refunds(provider_name: str, payment: Payment, now: datetime) -> None:
    """Ask the provider for all of the payment's refunds and reconcile each with ours."""
    from refunds.services import apply_provider_refund

    provider = get_provider(provider_name)
    if not hasattr(provider, "list_refunds"):
        return
    for state in provider.list_refunds(payment=payment):
        apply_provider_refund(payment=payment, state=state, now=now)


def handle_refunds_changed(provider_name: str, event: ProviderEvent, now: datetime) -> Outcome:
    """The event says the payment's refunds changed but not how (Stripe's charge.refunded carries no refund
    list): reconcile all of them with the provider."""
    payment = settled_payment(provider_name, event, now)
    sync_refunds(provider_name, payment, now)
    return "processed", payment.pk


def handle_dispute(provider_name: str, event: ProviderEvent, now: datetime) -> Outcome:
    from refunds.disputes import apply_provider_dispute

    payment = settled_payment(provider_name, event, now)
    # The payees' hold depends on what was refunded before the dispute; refunds made at the provider may
    # still be on their way as events, so take them from the provider first (a disputed payment cannot be
    # refunded meanwhile). Whatever order the events arrive in, the hold is the same.
    sync_refunds(provider_name, payment, now)
    payment.refresh_from_db()
    apply_provider_dispute(payment=payment, state=event.dispute_state, now=now)
    return "processed", payment.pk


def handle_account(provider_name: str, event: ProviderEvent, now: datetime) -> Outcome:
    from commissions.services import apply_connected_account_state

    applied = apply_connected_account_state(state=event.account_state, now=now, occurred_at=event.occurred_at)
    return ("processed" if applied else "ignored"), None


def handle_transfer(provider_name: str, event: ProviderEvent, now: datetime) -> Outcome:
    from commissions.payouts import apply_transfer_state

    applied = apply_transfer_state(state=event.transfer_state, now=now)
    return ("processed" if applied else "ignored"), None


def handle_bank_payout(provider_name: str, event: ProviderEvent, now: datetime) -> Outcome:
    from commissions.services import record_bank_payout

    record_bank_payout(state=event.bank_payout_state, now=now)
    return "processed", None


HANDLERS: dict[str, Callable[[str, ProviderEvent, datetime], Outcome]] = {
    "payment": handle_payment,
    "payment_changed": handle_payment_changed,
    "refund": handle_refund,
    "refunds_changed": handle_refunds_changed,
    "dispute": handle_dispute,
    "account": handle_account,
    "transfer": handle_transfer,
    "bank_payout": handle_bank_payout,
}


def handle(provider_name: str, event: ProviderEvent, now: datetime) -> Outcome:
    handler = HANDLERS.get(event.kind)
    if handler is None:
        return "ignored", None
    return handler(provider_name, event, now)
