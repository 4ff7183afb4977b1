"""Paid orders with any lines and buyer, for the invoicing tests (sandbox payment, fulfilment as in
production, documents issued by the on-commit task)."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from payments.models import Order, OrderStatus
from payments.providers.registry import get_provider
from payments.providers.sandbox import gateway
from payments.services.fulfilment import apply_payment_state
from payments.services.orders import LineInput, create_order
from tests.payments.helpers import gateway_deliveries_suppressed, session_of, start_sandbox_payment


def run_on_commit(func, *args, **kwargs):
    """Run `func` in a transaction and then the on-commit callbacks it queued (eager tasks), as a real
    commit would, inside a test's wrapping transaction."""
    from django.test import TestCase

    with TestCase.captureOnCommitCallbacks(execute=True), transaction.atomic():
        return func(*args, **kwargs)


def pay(
    *,
    lines: list[LineInput],
    currency: str = "EUR",
    buyer_country: str = "CZ",
    buyer_vat_id: str = "",
    buyer_name: str = "",
    buyer_address: str = "",
    buyer_email: str = "buyer@example.com",
    reference: str | None = None,
    api_client=None,
    now: datetime | None = None,
) -> Order:
    """Create and pay an order through the sandbox (fulfilment as in production); the documents are issued
    by the eager on-commit task when the payment commits."""
    now = now or timezone.now()

    def _pay() -> Order:
        order = create_order(
            currency=currency,
            buyer_email=buyer_email,
            reference=reference,
            buyer_country=buyer_country,
            buyer_vat_id=buyer_vat_id,
            buyer_name=buyer_name,
            buyer_address=buyer_address,
            now=now,
            lines=lines,
            api_client=api_client,
        )
        with gateway_deliveries_suppressed():
            payment = start_sandbox_payment(order, now=now)
            gateway.buyer_pays(str(session_of(payment).token), now=now)
        state = get_provider("sandbox").fetch_payment(payment=payment)
        apply_payment_state(payment_id=payment.pk, state=state, now=now, source="test")
        return order

    order = run_on_commit(_pay)
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    return order


def line(payee, amount: int, *, quantity: int = 1, description: str = "Item", **kwargs) -> LineInput:
    return LineInput(payee_id=payee.pk, description=description, quantity=quantity, unit_amount_minor=amount, **kwargs)
