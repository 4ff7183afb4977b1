"""Paid orders with event tickets or goods, paid through the sandbox, and refund policies, for the policy tests."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

from ledger import accounts
from ledger.selectors import account_balance
from payments.models import LineKind, Order, OrderStatus
from payments.providers.registry import get_provider
from payments.providers.sandbox import gateway
from payments.services.fulfilment import apply_payment_state
from payments.services.orders import LineInput, create_order
from refunds.models import RefundPolicy, RefundPolicyTier
from tests.payments.helpers import gateway_deliveries_suppressed, session_of, start_sandbox_payment


def paid_order(
    payee,
    *,
    amount: int = 10000,
    quantity: int = 1,
    currency: str = "EUR",
    event_ref: str = "concert-1",
    event_in: timedelta | None = timedelta(days=30),
    api_client=None,
    extra_lines: list[LineInput] = (),
    now: datetime | None = None,
) -> Order:
    now = now or timezone.now()
    kind = LineKind.EVENT_TICKET if event_in is not None else LineKind.GOODS
    order = create_order(
        currency=currency,
        buyer_email="buyer@example.com",
        buyer_country="CZ",
        now=now,
        api_client=api_client,
        lines=[
            LineInput(
                payee_id=payee.pk,
                description="Ticket" if event_in is not None else "Amplifier",
                quantity=quantity,
                unit_amount_minor=amount,
                kind=kind,
                event_ref=event_ref if event_in is not None else "",
                event_starts_at=now + event_in if event_in is not None else None,
            ),
            *extra_lines,
        ],
    )
    with gateway_deliveries_suppressed():
        payment = start_sandbox_payment(order, now=now)
        gateway.buyer_pays(str(session_of(payment).token), now=now)
    state = get_provider("sandbox").fetch_payment(payment=payment)
    apply_payment_state(payment_id=payment.pk, state=state, now=now, source="test")
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    return order


def make_policy(*, tiers=((timedelta(days=7), 1000, 0, ""),), **fields) -> RefundPolicy:
    fields.setdefault("name", "Standard")
    fields.setdefault("full_refund_until", timedelta(days=14))
    policy = RefundPolicy.objects.create(**fields)
    for position, (until, bps, fixed, currency) in enumerate(tiers):
        RefundPolicyTier.objects.create(
            policy=policy, position=position, until=until, fee_bps=bps, fee_fixed_minor=fixed, currency=currency
        )
    return policy


def balance(spec, currency: str = "EUR") -> int:
    return account_balance(spec, currency).amount_minor


def balances(payee, provider: str = "sandbox", currency: str = "EUR") -> dict[str, int]:
    return {
        "clearing": balance(accounts.provider_clearing(provider), currency),
        "commission": balance(accounts.PLATFORM_COMMISSION, currency),
        "vat": balance(accounts.PLATFORM_VAT_PAYABLE, currency),
        "pending": balance(accounts.payee_pending(payee.pk), currency),
        "available": balance(accounts.payee_available(payee.pk), currency),
        "store_credit": balance(accounts.BUYERS_STORE_CREDIT, currency),
    }
