"""Transfer to another event: the old tickets refunded as store credit under the policy (fee kept), a new order
for the new event paid with that credit; the difference charged through the sandbox (more expensive) or left
as credit (cheaper). The ledger is checked after each step."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from core.errors import DomainError, ErrorCode
from ledger import accounts
from ledger.selectors import account_balance
from payments.models import LineKind, OrderStatus, PaymentStatus
from payments.providers.registry import get_provider
from payments.providers.sandbox import gateway
from payments.services.fulfilment import apply_payment_state
from payments.services.orders import LineInput
from refunds.models import Refund, RefundMethod, RefundStatus, ReservationStatus, StoreCreditStatus
from refunds.services.transfers import transfer_to_event
from tests.payments.helpers import gateway_deliveries_suppressed, session_of, start_sandbox_payment
from tests.refunds.policy_helpers import make_policy, paid_order
from tests.refunds.store_credit_helpers import assert_conserved

pytestmark = pytest.mark.django_db


def _new_ticket(payee, amount_minor: int) -> list[LineInput]:
    return [
        LineInput(
            payee_id=payee.pk,
            description="Ticket, later date",
            quantity=1,
            unit_amount_minor=amount_minor,
            kind=LineKind.EVENT_TICKET,
            event_ref="concert-2",
            event_starts_at=timezone.now() + timedelta(days=60),
        )
    ]


def _transfer(order, payee, amount_minor, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return transfer_to_event(
            order=order, new_lines=_new_ticket(payee, amount_minor), now=timezone.now(), actor_label="test"
        )


def _store_credit_liability() -> int:
    return account_balance(accounts.BUYERS_STORE_CREDIT, "EUR").amount_minor


def test_transfer_to_a_more_expensive_event_charges_the_difference(payee, django_capture_on_commit_callbacks):
    make_policy(allow_transfer=True)  # 10 days before the event: 10 % fee
    order = paid_order(payee, event_in=timedelta(days=10))
    mail.outbox.clear()

    result = _transfer(order, payee, 12000, django_capture_on_commit_callbacks)

    refund = result.refund
    assert (refund.method, refund.status, refund.fee_minor, refund.amount_minor) == (
        RefundMethod.STORE_CREDIT,
        RefundStatus.SUCCEEDED,
        1000,
        9000,
    )
    order.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED
    assert result.credit.amount_minor == 9000
    assert any(result.credit.code in m.body for m in mail.outbox)  # the buyer has the code
    new_order = result.new_order
    assert (new_order.status, new_order.total_minor, new_order.buyer_email) == (
        OrderStatus.OPEN,
        12000,
        order.buyer_email,
    )
    assert (result.reservation.amount_minor, result.reservation.status) == (9000, ReservationStatus.RESERVED)
    assert result.difference_due_minor == 3000
    assert _store_credit_liability() == 9000
    assert_conserved()

    # The buyer pays the difference through the normal checkout.
    with gateway_deliveries_suppressed():
        payment = start_sandbox_payment(new_order)
        assert payment.amount_minor == 3000
        gateway.buyer_pays(str(session_of(payment).token), now=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        apply_payment_state(
            payment_id=payment.pk,
            state=get_provider("sandbox").fetch_payment(payment=payment),
            now=timezone.now(),
            source="test",
        )
    new_order.refresh_from_db()
    payment.refresh_from_db()
    assert new_order.status == OrderStatus.PAID
    assert (payment.status, payment.captured_minor) == (PaymentStatus.SUCCEEDED, 3000)
    result.reservation.refresh_from_db()
    assert result.reservation.status == ReservationStatus.SPENT
    assert result.credit_left_minor == 0
    assert _store_credit_liability() == 0
    assert account_balance(accounts.provider_clearing("store_credit"), "EUR").amount_minor == 0
    assert_conserved()


def test_transfer_to_a_cheaper_event_leaves_the_rest_as_credit(payee, django_capture_on_commit_callbacks):
    make_policy(allow_transfer=True)  # 30 days before the event: a full refund
    order = paid_order(payee, event_in=timedelta(days=30))

    result = _transfer(order, payee, 6000, django_capture_on_commit_callbacks)

    assert (result.refund.amount_minor, result.refund.fee_minor) == (10000, 0)
    new_order = result.new_order
    assert new_order.status == OrderStatus.PAID
    assert result.payment.provider == "store_credit"
    assert result.difference_due_minor == 0
    assert result.credit_left_minor == 4000
    assert result.credit.status == StoreCreditStatus.ACTIVE
    assert _store_credit_liability() == 4000
    assert account_balance(accounts.provider_clearing("store_credit"), "EUR").amount_minor == 0
    assert_conserved()


def test_a_transfer_needs_a_policy_that_allows_it(payee, django_capture_on_commit_callbacks):
    make_policy(allow_transfer=False)
    order = paid_order(payee)
    with pytest.raises(DomainError) as refused:
        _transfer(order, payee, 5000, django_capture_on_commit_callbacks)
    assert refused.value.code == ErrorCode.REFUND_METHOD_NOT_ALLOWED
    assert not Refund.objects.filter(order=order).exists()
    assert_conserved()


def test_transfer_through_the_api(api, api_client_obj, payee, django_capture_on_commit_callbacks):
    from tests.payments.helpers import new_key

    make_policy(allow_transfer=True)
    order = paid_order(payee, api_client=api_client_obj, event_in=timedelta(days=30))
    body = {
        "order": str(order.token),
        "method": "transfer",
        "new_lines": [
            {
                "payee": payee.pk,
                "description": "Ticket, later date",
                "kind": "event_ticket",
                "quantity": 1,
                "unit_amount": 15000,
                "event_ref": "concert-2",
                "event_starts_at": (timezone.now() + timedelta(days=60)).isoformat(),
            }
        ],
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/refunds", body, format="json", HTTP_IDEMPOTENCY_KEY=new_key())
    assert response.status_code == 201, response.json()
    data = response.json()
    assert (data["method"], data["status"], data["amount"]) == ("store_credit", "succeeded", 10000)
    transfer = data["transfer"]
    assert (transfer["difference_due"], transfer["credit_left"], transfer["new_order_status"]) == (5000, 0, "open")
    assert transfer["new_order"] in transfer["checkout_url"]
    assert api.get(f"/api/v1/orders/{transfer['new_order']}").status_code == 200  # the client's own order
    assert_conserved()

    missing = api.post(
        "/api/v1/refunds",
        {"order": str(order.token), "method": "transfer"},
        format="json",
        HTTP_IDEMPOTENCY_KEY=new_key(),
    )
    assert missing.status_code == 400


def test_transfer_from_the_admin_refund_page(payee, django_capture_on_commit_callbacks):
    from tests.refunds.test_refund_surfaces import staff_client

    make_policy(allow_transfer=True)
    order = paid_order(payee, event_in=timedelta(days=30))
    client = staff_client("payments.view_order", "refunds.add_refund")
    url = f"/admin/payments/order/{order.pk}/refund/"
    page = client.get(url).content.decode()
    assert 'value="transfer"' in page
    incomplete = client.post(url, {"reason": "requested_by_customer", "method": "transfer"})
    assert incomplete.status_code == 200
    assert "give the new event" in incomplete.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            url,
            {
                "reason": "requested_by_customer",
                "method": "transfer",
                "new_event_ref": "concert-2",
                "new_description": "Ticket, later date",
                "new_event_starts_at": (timezone.now() + timedelta(days=60)).strftime("%Y-%m-%d %H:%M"),
                "new_unit_amount": 4000,
                "new_quantity": 2,
            },
        )
    assert response.status_code == 302
    refund = Refund.objects.get(order=order)
    assert (refund.method, refund.status) == (RefundMethod.STORE_CREDIT, RefundStatus.SUCCEEDED)
    new_order = type(order).objects.exclude(pk=order.pk).get(buyer_email=order.buyer_email)
    assert (new_order.status, new_order.total_minor) == (OrderStatus.PAID, 8000)
    assert _store_credit_liability() == 2000
    assert_conserved()


def test_a_policy_that_allows_transfers_but_not_store_credit_still_transfers(payee, django_capture_on_commit_callbacks):
    make_policy(allow_transfer=True, allow_store_credit=False)
    order = paid_order(payee, event_in=timedelta(days=30))

    result = _transfer(order, payee, 6000, django_capture_on_commit_callbacks)

    assert result.refund.status == RefundStatus.SUCCEEDED
    assert result.new_order.status == OrderStatus.PAID
    assert result.credit_left_minor == 4000
    assert_conserved()
