"""Store credit together with another method for the rest (split payment): a code that covers part of the
order is applied (reserved under the credit's row lock), the provider payment is created for the rest, and
its success spends the reservation in the same transaction as the capture. Expiry or removal releases it;
refunds go back to the card first, the rest as new store credit. The ledger is checked after each step."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from core.errors import DomainError, ErrorCode
from ledger import accounts
from ledger.models import Entry, LedgerTransaction
from ledger.money import Money
from ledger.selectors import account_balance
from payments.models import OrderStatus, PaymentStatus
from payments.providers.registry import get_provider
from payments.providers.sandbox import gateway
from payments.services.fulfilment import apply_payment_state
from payments.services.orders import expire_order
from refunds.models import RefundMethod, RefundStatus, ReservationStatus, StoreCredit, StoreCreditStatus
from refunds.services import refundable_minor, request_policy_refund
from refunds.store_credit import (
    available_minor,
    pay_with_store_credit,
    remove_store_credit,
    reserve_store_credit,
)
from tests.payments.helpers import gateway_deliveries_suppressed, make_order, session_of, start_sandbox_payment
from tests.refunds.store_credit_helpers import assert_conserved

pytestmark = pytest.mark.django_db


def _goodwill(amount_minor: int, *, days: int = 30) -> StoreCredit:
    from refunds.store_credit import issue_goodwill_credit

    now = timezone.now()
    return issue_goodwill_credit(
        buyer_email="buyer@example.com",
        amount=Money(amount_minor, "EUR"),
        expires_at=now + timedelta(days=days),
        actor=None,
        reason="split payment test",
        now=now,
    )


def _apply_sandbox(payment) -> None:
    state = get_provider("sandbox").fetch_payment(payment=payment)
    apply_payment_state(payment_id=payment.pk, state=state, now=timezone.now(), source="test")


def _balance(account) -> int:
    return account_balance(account, "EUR").amount_minor


def _entries(key: str) -> list[tuple[str, str, int]]:
    tx = LedgerTransaction.objects.get(idempotency_key=key)
    return sorted(
        (e.account.code, e.direction, e.amount_minor)
        for e in Entry.objects.filter(transaction=tx).select_related("account")
    )


def _split_paid_order(payee, *, credit_minor=3000, total_minor=10000):
    credit = _goodwill(credit_minor)
    order = make_order(payee, unit_amount_minor=total_minor)
    reservation = reserve_store_credit(order=order, code=credit.code, now=timezone.now())
    with gateway_deliveries_suppressed():
        payment = start_sandbox_payment(order)
        gateway.buyer_pays(str(session_of(payment).token), now=timezone.now())
    _apply_sandbox(payment)
    order.refresh_from_db()
    return order, payment, credit, reservation


def test_a_partial_code_is_applied_on_the_checkout_page_and_the_rest_paid_through_the_sandbox(
    client, payee, django_capture_on_commit_callbacks
):
    credit = _goodwill(3000)
    order = make_order(payee, unit_amount_minor=10000)
    url = reverse("checkout:page", args=[order.token])
    before_liability = _balance(accounts.BUYERS_STORE_CREDIT)
    assert before_liability == 3000

    response = client.post(url, {"store_credit_code": credit.code})
    assert response.status_code == 303
    assert response["Location"] == url
    page = client.get(url).content.decode()
    assert "€30.00 paid with store credit, €70.00 left to pay" in page
    assert 'value="sandbox"' in page  # the provider choice for the rest
    assert "Pay €70.00" in page
    credit.refresh_from_db()
    assert (credit.remaining_minor, available_minor(credit)) == (3000, 0)  # reserved: nothing moved yet
    assert_conserved()

    with gateway_deliveries_suppressed():
        response = client.post(url, {"method": "sandbox"})
        assert response.status_code == 303
        payment = order.payments.get(provider="sandbox")
        assert payment.amount_minor == 7000  # the rest
        gateway.buyer_pays(str(session_of(payment).token), now=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        _apply_sandbox(payment)
        _apply_sandbox(payment)  # twice: nothing more happens

    order.refresh_from_db()
    payment.refresh_from_db()
    assert order.status == OrderStatus.PAID
    assert list(order.payments.filter(settles_order=True)) == [payment]
    assert (payment.status, payment.captured_minor, payment.needs_review) == (PaymentStatus.SUCCEEDED, 7000, False)
    reservation = order.store_credit_reservations.get()
    assert (reservation.status, reservation.payment_id, reservation.amount_minor) == (
        ReservationStatus.SPENT,
        payment.pk,
        3000,
    )
    credit.refresh_from_db()
    assert (credit.remaining_minor, credit.status) == (0, StoreCreditStatus.SPENT)

    line = order.lines.get()
    assert _entries(f"capture:payment:{payment.pk}") == sorted(
        [
            ("provider:sandbox:clearing", "debit", 7000),
            ("provider:store_credit:clearing", "debit", 3000),
            (f"payee:{payee.pk}:pending", "credit", line.payee_share_minor),
            ("platform:commission", "credit", line.commission_minor),
            ("platform:vat_payable", "credit", line.commission_vat_minor),
        ]
    )
    assert _entries(f"store_credit_reservation:{reservation.pk}") == sorted(
        [("buyers:store_credit", "debit", 3000), ("provider:store_credit:clearing", "credit", 3000)]
    )
    assert _balance(accounts.provider_clearing("sandbox")) == 7000 - payment.fee_minor
    assert _balance(accounts.provider_clearing("store_credit")) == 0
    assert _balance(accounts.BUYERS_STORE_CREDIT) == before_liability - 3000
    assert LedgerTransaction.objects.filter(kind="capture").count() == 1
    assert_conserved()


def test_the_provider_payment_failing_keeps_the_credit_and_expiry_releases_it(payee):
    credit = _goodwill(3000)
    order = make_order(payee, unit_amount_minor=10000)
    reservation = reserve_store_credit(order=order, code=credit.code, now=timezone.now())
    before = LedgerTransaction.objects.count()
    with gateway_deliveries_suppressed():
        payment = start_sandbox_payment(order)
        gateway.buyer_declined(str(session_of(payment).token), reason="insufficient_funds", now=timezone.now())
    _apply_sandbox(payment)
    payment.refresh_from_db()
    order.refresh_from_db()
    assert (payment.status, order.status) == (PaymentStatus.FAILED, OrderStatus.OPEN)
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.RESERVED  # the buyer may try again
    assert LedgerTransaction.objects.count() == before

    # The buyer leaves; the order expires: the reservation is released, nothing posted, the credit intact.
    assert expire_order(order=order, now=order.expires_at + timedelta(seconds=1))
    reservation.refresh_from_db()
    credit.refresh_from_db()
    assert reservation.status == ReservationStatus.RELEASED
    assert (credit.remaining_minor, credit.status, available_minor(credit)) == (3000, StoreCreditStatus.ACTIVE, 3000)
    assert LedgerTransaction.objects.count() == before
    assert_conserved()

    # The whole credit can be applied elsewhere again.
    other = make_order(payee, unit_amount_minor=5000)
    assert reserve_store_credit(order=other, code=credit.code, now=timezone.now()).amount_minor == 3000


def test_a_late_success_after_expiry_does_not_spend_the_released_credit(payee, django_capture_on_commit_callbacks):
    credit = _goodwill(3000)
    order = make_order(payee, unit_amount_minor=10000)
    reserve_store_credit(order=order, code=credit.code, now=timezone.now())
    with gateway_deliveries_suppressed():
        payment = start_sandbox_payment(order)
        expire_order(order=order, now=order.expires_at + timedelta(seconds=1))
        gateway.buyer_pays(str(session_of(payment).token), now=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        apply_payment_state(
            payment_id=payment.pk,
            state=get_provider("sandbox").fetch_payment(payment=payment),
            now=timezone.now(),
            source="test",
        )
    payment.refresh_from_db()
    credit.refresh_from_db()
    assert payment.needs_review  # 70.00 cannot pay a 100.00 order: refunded automatically
    assert credit.remaining_minor == 3000
    assert_conserved()


def test_the_buyer_removes_the_applied_credit(client, payee):
    credit = _goodwill(3000)
    order = make_order(payee, unit_amount_minor=10000)
    url = reverse("checkout:page", args=[order.token])
    client.post(url, {"store_credit_code": credit.code})
    assert order.store_credit_reservations.get().status == ReservationStatus.RESERVED

    response = client.post(url, {"remove_store_credit": "1"})
    assert response.status_code == 303
    assert order.store_credit_reservations.get().status == ReservationStatus.RELEASED
    page = client.get(url).content.decode()
    assert "Pay €100.00" in page
    assert "Have store credit?" in page
    # The rest is the whole order again.
    payment = start_sandbox_payment(order)
    assert payment.amount_minor == 10000
    assert_conserved()


def test_one_credit_is_never_applied_beyond_what_is_left(payee):
    credit = _goodwill(5000)
    first = make_order(payee, unit_amount_minor=8000)
    assert reserve_store_credit(order=first, code=credit.code, now=timezone.now()).amount_minor == 5000
    second = make_order(payee, unit_amount_minor=8000)
    with pytest.raises(DomainError) as refused:
        reserve_store_credit(order=second, code=credit.code, now=timezone.now())
    assert refused.value.code == ErrorCode.STORE_CREDIT_INVALID
    small = make_order(payee, unit_amount_minor=1000)  # the code would cover it, but all of it is reserved
    with pytest.raises(DomainError):
        pay_with_store_credit(order=small, code=credit.code, now=timezone.now())
    # A second code on the same order is refused while one is applied.
    other = _goodwill(1000)
    with pytest.raises(DomainError):
        reserve_store_credit(order=first, code=other.code, now=timezone.now())
    remove_store_credit(order=first, now=timezone.now())
    assert reserve_store_credit(order=second, code=credit.code, now=timezone.now()).amount_minor == 5000
    assert_conserved()


def test_a_credit_with_a_reservation_is_not_expired_until_it_is_resolved(payee):
    from refunds.store_credit import expire_store_credits

    credit = _goodwill(3000, days=1)
    order = make_order(payee, unit_amount_minor=10000)
    reserve_store_credit(order=order, code=credit.code, now=timezone.now())
    later = timezone.now() + timedelta(days=2)
    assert expire_store_credits(now=later) == 0
    expire_order(order=order, now=later)
    assert expire_store_credits(now=later) == 1
    credit.refresh_from_db()
    assert (credit.status, credit.expired_minor) == (StoreCreditStatus.EXPIRED, 3000)
    assert_conserved()


def test_a_refund_of_a_split_paid_order_goes_to_the_card_first_then_as_store_credit(
    payee, django_capture_on_commit_callbacks
):
    order, payment, credit, _ = _split_paid_order(payee)
    payment.refresh_from_db()
    assert refundable_minor(payment) == 10000  # the order's gross: card 7000 + credit 3000

    def refund(**kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            result = request_policy_refund(order=order, now=timezone.now(), override_reason="test", **kwargs)
        result.refresh_from_db()
        return result

    first = refund(amount_minor=5000)
    assert (first.method, first.status) == (RefundMethod.ORIGINAL, RefundStatus.SUCCEEDED)
    assert_conserved()

    with pytest.raises(DomainError) as straddles:  # 2000 left on the card: 5000 would straddle both
        refund(amount_minor=5000)
    assert straddles.value.code == ErrorCode.REFUND_EXCEEDS_CAPTURED

    second = refund(amount_minor=2000)
    assert (second.method, second.status) == (RefundMethod.ORIGINAL, RefundStatus.SUCCEEDED)
    payment.refresh_from_db()
    assert payment.refunded_minor == 7000  # the card got back all it paid

    third = refund()  # everything left: the card's part is used up, so it comes back as store credit
    assert (third.method, third.status, third.amount_minor) == (RefundMethod.STORE_CREDIT, RefundStatus.SUCCEEDED, 3000)
    new_credit = StoreCredit.objects.get(source_refund=third)
    assert (new_credit.amount_minor, new_credit.status) == (3000, StoreCreditStatus.ACTIVE)
    assert _entries(f"refund:{third.pk}")[0] == ("buyers:store_credit", "credit", 3000)
    order.refresh_from_db()
    payment.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED
    assert (refundable_minor(payment), payment.refunded_minor) == (0, 7000)
    assert _balance(accounts.provider_clearing("store_credit")) == 0
    assert _balance(accounts.BUYERS_STORE_CREDIT) == 3000
    assert_conserved()


def test_canceling_the_order_releases_the_applied_credit(payee):
    from payments.services.orders import cancel_order

    credit = _goodwill(3000)
    order = make_order(payee, unit_amount_minor=10000)
    reservation = reserve_store_credit(order=order, code=credit.code, now=timezone.now())
    cancel_order(order=order, now=timezone.now(), actor_label="test")
    reservation.refresh_from_db()
    credit.refresh_from_db()
    assert reservation.status == ReservationStatus.RELEASED
    assert available_minor(credit) == 3000
    assert_conserved()


def test_the_confirmation_names_both_parts(payee, django_capture_on_commit_callbacks):
    from django.core import mail

    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        order, payment, _, _ = _split_paid_order(payee)
    body = next(m.body for m in mail.outbox if "Payment received" in m.subject)
    assert "Paid €70.00" in body
    assert "and €30.00 with store credit" in body
    assert "rest of the hold" not in body


def test_applying_a_code_to_an_order_past_its_time_expires_it(payee):
    credit = _goodwill(3000)
    order = make_order(payee, unit_amount_minor=10000)
    with pytest.raises(DomainError) as refused:
        reserve_store_credit(order=order, code=credit.code, now=order.expires_at + timedelta(seconds=1))
    assert refused.value.code == ErrorCode.ORDER_EXPIRED
    order.refresh_from_db()
    assert order.status == OrderStatus.EXPIRED
    assert not order.store_credit_reservations.exists()


def test_canceling_the_event_of_a_split_paid_order_gives_back_the_card_part_and_the_credit_part(
    payee, django_capture_on_commit_callbacks
):
    """Force majeure on an order paid 70.00 by card and 30.00 with store credit: everything back, split the
    way it was paid, in one run (and nothing more in a second)."""
    from payments.models import LineKind
    from payments.services.orders import LineInput, create_order
    from refunds.services.force_majeure import cancel_event

    credit = _goodwill(3000)
    order = create_order(
        currency="EUR",
        buyer_email="buyer@example.com",
        buyer_country="CZ",
        now=timezone.now(),
        lines=[
            LineInput(
                payee_id=payee.pk,
                description="Ticket, Jazz on the river",
                kind=LineKind.EVENT_TICKET,
                quantity=2,
                unit_amount_minor=5000,
                event_ref="jazz-river",
                event_starts_at=timezone.now() + timedelta(days=20),
                event_country="CZ",
            )
        ],
    )
    reserve_store_credit(order=order, code=credit.code, now=timezone.now())
    with gateway_deliveries_suppressed():
        payment = start_sandbox_payment(order)
        gateway.buyer_pays(str(session_of(payment).token), now=timezone.now())
    _apply_sandbox(payment)

    with django_capture_on_commit_callbacks(execute=True):
        summary = cancel_event(event_ref="jazz-river", reason="Flood", now=timezone.now())

    assert summary.failures == []
    refunds = sorted(order.refunds.values_list("method", "amount_minor", "status"))
    assert refunds == [
        (RefundMethod.ORIGINAL, 7000, RefundStatus.SUCCEEDED),
        (RefundMethod.STORE_CREDIT, 3000, RefundStatus.SUCCEEDED),
    ]
    order.refresh_from_db()
    payment.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED
    assert payment.refunded_minor == 7000
    assert StoreCredit.objects.filter(source_refund__order=order, amount_minor=3000).exists()
    assert_conserved()

    again = cancel_event(event_ref="jazz-river", reason="Flood", now=timezone.now())
    assert (again.refunds, again.failures) == ([], [])
