"""The payment and order state machines (DESIGN §5, I9): one table each, applied by a conditional UPDATE;
a transition that is not allowed is a no-op that writes nothing, not even a history row."""

import pytest
from django.utils import timezone

from payments.models import Order, OrderStatus, Payment, PaymentStatus
from payments.state import (
    ORDER_TRANSITIONS,
    PAYMENT_TRANSITIONS,
    can_transition_order,
    can_transition_payment,
    transition_order,
    transition_payment,
)
from tests.payments.helpers import make_order

P = PaymentStatus
OS = OrderStatus

# What the design allows, written out independently of payments/state.py.
EXPECTED_PAYMENT_MOVES = {
    (P.CREATED, P.PENDING),
    (P.CREATED, P.REQUIRES_ACTION),
    (P.PENDING, P.REQUIRES_ACTION),
    *{(s, P.AUTHORIZED) for s in (P.CREATED, P.PENDING, P.REQUIRES_ACTION)},
    *{(s, P.SUCCEEDED) for s in (P.CREATED, P.PENDING, P.REQUIRES_ACTION, P.AUTHORIZED)},
    # money captured is the truth: a late success after we gave up is still recorded (then settled/refunded)
    *{(s, P.SUCCEEDED) for s in (P.FAILED, P.CANCELED, P.EXPIRED)},
    *{(s, P.FAILED) for s in (P.CREATED, P.PENDING, P.REQUIRES_ACTION, P.AUTHORIZED)},
    *{(s, P.CANCELED) for s in (P.CREATED, P.PENDING, P.REQUIRES_ACTION, P.AUTHORIZED)},
    *{(s, P.EXPIRED) for s in (P.CREATED, P.PENDING, P.REQUIRES_ACTION)},
}
EXPECTED_ORDER_MOVES = {
    (OS.OPEN, OS.PAID),
    (OS.EXPIRED, OS.PAID),
    (OS.PAID, OS.PARTIALLY_REFUNDED),
    (OS.PARTIALLY_REFUNDED, OS.PARTIALLY_REFUNDED),
    (OS.PAID, OS.REFUNDED),
    (OS.PARTIALLY_REFUNDED, OS.REFUNDED),
    (OS.OPEN, OS.CANCELED),
    (OS.OPEN, OS.EXPIRED),
}


@pytest.mark.parametrize("current", P.values)
@pytest.mark.parametrize("target", P.values)
def test_payment_transition_table(current, target):
    assert can_transition_payment(current, target) == ((current, target) in EXPECTED_PAYMENT_MOVES)


@pytest.mark.parametrize("current", OS.values)
@pytest.mark.parametrize("target", OS.values)
def test_order_transition_table(current, target):
    assert can_transition_order(current, target) == ((current, target) in EXPECTED_ORDER_MOVES)


def test_succeeded_is_final_and_nothing_returns_to_created():
    assert all(P.SUCCEEDED not in sources or target == P.SUCCEEDED for target, sources in PAYMENT_TRANSITIONS.items())
    assert P.CREATED not in PAYMENT_TRANSITIONS
    assert OS.OPEN not in ORDER_TRANSITIONS
    for target in (OS.CANCELED, OS.EXPIRED, OS.OPEN):
        assert not can_transition_order(OS.PAID, target)


@pytest.mark.django_db
def test_allowed_payment_transition_updates_row_and_writes_one_history_row(payee):
    order = make_order(payee)
    now = timezone.now()
    payment = Payment.objects.create(order=order, provider="sandbox", amount_minor=100, currency="EUR", created_at=now)
    history_before = payment.history.count()

    assert transition_payment(payment=payment, to=P.PENDING, now=now, provider_ref="sbx_x")
    assert payment.status == P.PENDING  # refreshed in place
    assert payment.provider_ref == "sbx_x"
    assert payment.status_changed_at == now
    assert payment.history.count() == history_before + 1
    assert payment.history.latest("history_id").status == P.PENDING


@pytest.mark.django_db
def test_disallowed_payment_transition_is_a_no_op(payee):
    order = make_order(payee)
    now = timezone.now()
    payment = Payment.objects.create(
        order=order, provider="sandbox", amount_minor=100, currency="EUR", created_at=now, status=P.SUCCEEDED
    )
    history_before = payment.history.count()
    for target in (P.PENDING, P.REQUIRES_ACTION, P.AUTHORIZED, P.FAILED, P.CANCELED, P.EXPIRED):
        assert not transition_payment(payment=payment, to=target, now=now, failure_code="late")
    # a stale in-memory copy cannot push it back either: the UPDATE checks the row, not the object
    stale = Payment.objects.get(pk=payment.pk)
    stale.status = P.PENDING
    assert not transition_payment(payment=stale, to=P.FAILED, now=now)
    payment.refresh_from_db()
    assert payment.status == P.SUCCEEDED
    assert payment.failure_code == ""
    assert payment.history.count() == history_before
    # and succeeded -> succeeded is not a transition either (a duplicate event is not a second success)
    assert not transition_payment(payment=payment, to=P.SUCCEEDED, now=now)


@pytest.mark.django_db
def test_order_transitions_are_conditional(payee):
    order = make_order(payee)
    now = timezone.now()
    assert transition_order(order=order, to=OS.CANCELED, now=now, canceled_at=now)
    assert not transition_order(order=order, to=OS.PAID, now=now, paid_at=now)
    assert not transition_order(order=order, to=OS.EXPIRED, now=now)
    order.refresh_from_db()
    assert order.status == OS.CANCELED
    assert order.paid_at is None
    assert Order.history.filter(id=order.pk, status=OS.CANCELED).count() == 1

    expired = make_order(payee)
    assert transition_order(order=expired, to=OS.EXPIRED, now=now)
    assert transition_order(order=expired, to=OS.PAID, now=now, paid_at=now)  # a late success is accepted
    assert expired.status == OS.PAID
