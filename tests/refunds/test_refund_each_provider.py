"""A partial and then a full refund on each provider, through its faked API: the sandbox gateway, Stripe
(`fake_stripe`) and GoPay (`fake_gopay`). Each ends with the provider's own record agreeing with ours (what
it says was refunded, how many refunds it holds, one provider call per refund) and conservation: the
ledger's invariants and our clearing account equal to what the provider holds for us (I4, I8; issue 6
"a refund on each provider through its faked API")."""

from __future__ import annotations

import pytest
from django.utils import timezone

from core.errors import DomainError, ErrorCode
from ledger import accounts
from ledger.models import LedgerTransaction
from ledger.selectors import account_balance, check_ledger
from payments.models import Order, OrderStatus, Payment, PaymentStatus
from payments.providers.registry import get_provider
from payments.providers.sandbox import gateway
from payments.providers.sandbox.models import SandboxRefund
from payments.services.fulfilment import apply_payment_state
from refunds.models import Refund, RefundStatus
from refunds.services import refundable_minor, request_refund
from tests.payments.gopay import helpers as gopay
from tests.payments.gopay.conftest import fake_gopay  # noqa: F401 - the fixture, used here too
from tests.payments.helpers import gateway_deliveries_suppressed, make_order, session_of, start_sandbox_payment
from tests.payments.stripe import helpers as stripe
from tests.payments.stripe.conftest import fake_stripe  # noqa: F401 - the fixture, used here too

pytestmark = pytest.mark.django_db


@pytest.fixture
def capture(django_capture_on_commit_callbacks):
    return django_capture_on_commit_callbacks


def _refund(order: Order, amount: int, capture) -> Refund:
    """Ask for a refund as staff would, and run its task (eager Celery) on commit."""
    order.refresh_from_db()
    with capture(execute=True):
        refund = request_refund(order=order, amount_minor=amount, reason="requested_by_customer", now=timezone.now())
    refund.refresh_from_db()
    return refund


def _assert_ours(payment: Payment, *, refunded: int, status: str) -> None:
    """I4 and our own bookkeeping: payment and order refunded totals equal the succeeded refunds."""
    payment.refresh_from_db()
    order = payment.order
    order.refresh_from_db()
    succeeded = list(Refund.objects.filter(payment=payment, status=RefundStatus.SUCCEEDED))
    assert sum(r.amount_minor for r in succeeded) == refunded
    assert (payment.refunded_minor, order.refunded_minor, order.status) == (refunded, refunded, status)
    assert payment.refunded_minor <= payment.captured_minor
    assert refundable_minor(payment) == payment.captured_minor - refunded
    assert LedgerTransaction.objects.filter(kind="refund").count() == len(succeeded)
    assert Refund.objects.exclude(status=RefundStatus.SUCCEEDED).count() == 0


def _assert_nothing_more(order: Order, capture) -> None:
    """Fully refunded: a further refund is refused and writes nothing."""
    before = (Refund.objects.count(), LedgerTransaction.objects.count())
    with pytest.raises(DomainError) as raised:
        _refund(order, 1, capture)
    # The order is `refunded`, so the status check answers before the amount check (see the report).
    assert raised.value.code in (ErrorCode.REFUND_NOT_ALLOWED, ErrorCode.REFUND_EXCEEDS_CAPTURED)
    assert (Refund.objects.count(), LedgerTransaction.objects.count()) == before


# --- sandbox -------------------------------------------------------------------------------------------------


def _sandbox_paid(payee) -> Payment:
    order = make_order(payee, unit_amount_minor=4990, quantity=2)  # 99.80 EUR
    with gateway_deliveries_suppressed():
        payment = start_sandbox_payment(order)
        gateway.buyer_pays(str(session_of(payment).token), now=timezone.now())
    state = get_provider("sandbox").fetch_payment(payment=payment)
    apply_payment_state(payment_id=payment.pk, state=state, now=timezone.now(), source="test")
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    return payment


def _sandbox_conserved(payment: Payment) -> None:
    """I8 for the sandbox: our clearing = what the gateway holds for us (amount - fee - refunded)."""
    report = check_ledger()
    assert report.ok, report
    session = session_of(payment)
    held = session.amount_minor - session.fee_minor - session.refunded_minor
    assert account_balance(accounts.provider_clearing("sandbox"), payment.currency).amount_minor == held


def test_sandbox_partial_then_full_refund(payee, capture):
    payment = _sandbox_paid(payee)
    order = payment.order

    partial = _refund(order, 2990, capture)
    assert partial.status == RefundStatus.SUCCEEDED
    assert session_of(payment).refunded_minor == 2990
    [at_gateway] = SandboxRefund.objects.all()
    assert (partial.provider_ref, at_gateway.amount_minor) == (at_gateway.public_id, 2990)
    _assert_ours(payment, refunded=2990, status=OrderStatus.PARTIALLY_REFUNDED)
    _sandbox_conserved(payment)

    rest = _refund(order, 9980 - 2990, capture)
    assert rest.status == RefundStatus.SUCCEEDED
    assert session_of(payment).refunded_minor == 9980
    assert SandboxRefund.objects.count() == 2  # one gateway refund per refund of ours
    _assert_ours(payment, refunded=9980, status=OrderStatus.REFUNDED)
    _sandbox_conserved(payment)
    _assert_nothing_more(order, capture)
    assert session_of(payment).refunded_minor == 9980


# --- Stripe --------------------------------------------------------------------------------------------------


def test_stripe_partial_then_full_refund(client, payee, fake_stripe, capture):  # noqa: F811
    order = stripe.stripe_order(payee, lines=((1, 12900), (3, 1990)))  # 188.70 EUR
    payment = stripe.start_stripe_payment(order)
    assert set(stripe.deliver_all(client, fake_stripe.pay(payment.provider_ref), capture)) == {200}
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    total = order.total_minor
    pi = payment.provider_payment_ref

    partial = _refund(order, 4000, capture)
    assert partial.status == RefundStatus.SUCCEEDED
    charge = fake_stripe.charge_of(pi)
    assert (charge["amount_refunded"], charge["refunded"]) == (4000, False)
    assert [r["id"] for r in fake_stripe.refunds_of(pi)] == [partial.provider_ref]
    _assert_ours(payment, refunded=4000, status=OrderStatus.PARTIALLY_REFUNDED)
    stripe.assert_conserved(fake_stripe)

    rest = _refund(order, total - 4000, capture)
    assert rest.status == RefundStatus.SUCCEEDED
    charge = fake_stripe.charge_of(pi)
    assert (charge["amount_refunded"], charge["refunded"]) == (total, True)
    assert sorted(r["id"] for r in fake_stripe.refunds_of(pi)) == sorted([partial.provider_ref, rest.provider_ref])
    assert len(fake_stripe.posts("/v1/refunds")) == 2
    _assert_ours(payment, refunded=total, status=OrderStatus.REFUNDED)
    stripe.assert_conserved(fake_stripe)

    # Stripe's own events about both refunds change nothing.
    events = [e for r in fake_stripe.refunds_of(pi) for e in fake_stripe.refund_events(r)]
    assert set(stripe.deliver_all(client, events, capture)) == {200}
    stripe.drain_webhooks(capture)
    _assert_ours(payment, refunded=total, status=OrderStatus.REFUNDED)
    stripe.assert_conserved(fake_stripe)
    _assert_nothing_more(order, capture)
    assert len(fake_stripe.posts("/v1/refunds")) == 2


# --- GoPay ---------------------------------------------------------------------------------------------------


def test_gopay_partial_then_full_refund(client, payee, fake_gopay, capture):  # noqa: F811
    order = gopay.gopay_order(payee)  # 2 x 750 Kc
    payment = gopay.start_gopay_payment(order)
    fake_gopay.pay(gopay.gopay_id(payment))
    gopay.notify_and_process(client, capture, gopay.gopay_id(payment))
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    goid = gopay.gopay_id(payment)

    partial = _refund(order, 50000, capture)
    assert partial.status == RefundStatus.SUCCEEDED
    assert fake_gopay.refunded(goid) == 50000
    assert fake_gopay.payment(goid)["state"] == "PARTIALLY_REFUNDED"
    assert [str(e["id"]) for e in fake_gopay.refund_history(goid)] == [partial.provider_ref]
    _assert_ours(payment, refunded=50000, status=OrderStatus.PARTIALLY_REFUNDED)
    gopay.assert_conserved(fake_gopay)

    rest = _refund(order, 100000, capture)
    assert rest.status == RefundStatus.SUCCEEDED
    assert fake_gopay.refunded(goid) == 150000
    assert fake_gopay.payment(goid)["state"] == "REFUNDED"
    assert len(fake_gopay.posts(r"/payments/payment/\d+/refund")) == 2
    _assert_ours(payment, refunded=150000, status=OrderStatus.REFUNDED)
    gopay.assert_conserved(fake_gopay)

    # GoPay's notifications afterwards change nothing.
    for _ in range(2):
        gopay.notify_and_process(client, capture, goid)
    _assert_ours(payment, refunded=150000, status=OrderStatus.REFUNDED)
    gopay.assert_conserved(fake_gopay)
    _assert_nothing_more(order, capture)
    assert fake_gopay.refunded(goid) == 150000
