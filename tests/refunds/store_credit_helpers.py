"""Building store credits the way the product does, and checking the ledger agrees with them."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from ledger import accounts
from ledger.money import Money
from ledger.selectors import account_balance, check_ledger
from ledger.services import credit, debit, post_transaction
from payments.models import Order, OrderStatus
from payments.providers.registry import get_provider
from payments.services.fulfilment import apply_payment_state
from refunds.models import Refund, RefundStatus, StoreCredit
from refunds.store_credit import create_store_credit_for_refund, outstanding_minor
from tests.payments.helpers import gateway_deliveries_suppressed, make_order, session_of, start_sandbox_payment


def paid_order(payee, *, unit_amount_minor: int = 10000, currency: str = "EUR") -> Order:
    """An order paid through the sandbox (its capture posted)."""
    from payments.providers.sandbox import gateway

    order = make_order(payee, unit_amount_minor=unit_amount_minor, currency=currency)
    with gateway_deliveries_suppressed():
        payment = start_sandbox_payment(order)
        gateway.buyer_pays(str(session_of(payment).token), now=timezone.now())
    state = get_provider("sandbox").fetch_payment(payment=payment)
    apply_payment_state(payment_id=payment.pk, state=state, now=timezone.now(), source="test")
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    return order


def refund_as_store_credit(order: Order, *, now: datetime | None = None) -> StoreCredit:
    """A full refund of a one-line order given as store credit, as the refund flow does it: the reversal of
    the capture crediting `buyers:store_credit` instead of the provider, then the credit row."""
    now = now or timezone.now()
    payment = order.payments.get(settles_order=True)
    line = order.lines.get()
    refund = Refund.objects.create(
        order=order,
        payment=payment,
        amount_minor=order.total_minor,
        currency=order.currency,
        reason="requested_by_customer",
        status=RefundStatus.SUCCEEDED,
        created_at=now,
        succeeded_at=now,
    )
    post_transaction(
        idempotency_key=f"refund:{refund.pk}",
        kind="refund",
        entries=[
            debit(accounts.payee_pending(line.payee_id), Money(line.payee_share_minor, order.currency)),
            debit(accounts.PLATFORM_COMMISSION, Money(line.commission_minor, order.currency)),
            debit(accounts.PLATFORM_VAT_PAYABLE, Money(line.commission_vat_minor, order.currency)),
            credit(accounts.BUYERS_STORE_CREDIT, Money(order.total_minor, order.currency)),
        ],
        occurred_at=now,
        memo="refund as store credit (test)",
    )
    return create_store_credit_for_refund(refund=refund, now=now)


def assert_conserved(*currencies: str) -> None:
    """The ledger checks out, and what buyers may still spend is exactly the store credit liability."""
    report = check_ledger()
    assert report.ok, report
    for currency in currencies or ("EUR",):
        liability = account_balance(accounts.BUYERS_STORE_CREDIT, currency).amount_minor
        assert liability == outstanding_minor(currency)
        active = sum(
            StoreCredit.objects.filter(currency=currency, status="active").values_list("remaining_minor", flat=True)
        )
        assert liability == active
