"""A first payment with an ON_DEMAND recurrence sets the recurrence up; charges on it are orders of their own,
each charged at GoPay as a child payment, each captured once in the ledger however often GoPay notifies."""

from datetime import date

import pytest
from django.utils import timezone

from ledger import accounts
from ledger.selectors import account_balance
from payments.models import Order, OrderStatus, PaymentStatus
from recurring.models import ChargeStatus, Recurrence, RecurrenceStatus, RecurringCharge
from tests.payments.gopay.helpers import assert_conserved, gopay_id, notify_and_process, start_gopay_payment
from tests.payments.helpers import captures_of
from tests.recurring.helpers import (
    CREATE_RECURRENCE,
    captured_total,
    child_of,
    children,
    key,
    recurring_order,
    set_up_recurrence,
    settle,
)

pytestmark = pytest.mark.django_db


def charges_url(recurrence) -> str:
    return f"/api/v1/recurrences/{recurrence.pk}/charges"


def post_charge(api, recurrence, body=None, idempotency_key=None):
    return api.post(charges_url(recurrence), body or {}, format="json", HTTP_IDEMPOTENCY_KEY=idempotency_key or key())


def test_first_payment_sends_on_demand_recurrence_and_its_notification_sets_it_up(
    fake_gopay, client, capture, payee, api_client_obj
):
    order = recurring_order(payee, api_client=api_client_obj)
    payment = start_gopay_payment(order)
    (create,) = fake_gopay.posts(r"/payments/payment")
    assert create.body["recurrence"] == {"recurrence_cycle": "ON_DEMAND", "recurrence_date_to": "2099-12-31"}

    notify_and_process(client, capture, gopay_id(payment))  # not paid yet: GoPay says CREATED / REQUESTED
    assert not Recurrence.objects.exists()

    fake_gopay.pay(gopay_id(payment))
    for _ in range(3):
        assert notify_and_process(client, capture, gopay_id(payment)).status_code == 200

    recurrence = Recurrence.objects.get()
    assert recurrence.status == RecurrenceStatus.ACTIVE
    assert recurrence.first_order == order
    assert recurrence.first_payment == payment
    assert recurrence.provider == "gopay"
    assert recurrence.provider_ref == str(gopay_id(payment))
    assert recurrence.buyer_email == "jan.novak@example.cz"
    assert recurrence.currency == "CZK"
    assert recurrence.cycle == "on_demand"
    assert recurrence.valid_until == date(2099, 12, 31)
    assert recurrence.history.count() == 1
    assert captures_of(payment) == 1


def test_a_non_recurring_order_sets_nothing_up(fake_gopay, client, capture, payee):
    from tests.payments.gopay.helpers import gopay_order

    payment = start_gopay_payment(gopay_order(payee))
    assert "recurrence" not in fake_gopay.posts(r"/payments/payment")[0].body
    fake_gopay.pay(gopay_id(payment))
    notify_and_process(client, capture, gopay_id(payment))
    assert not Recurrence.objects.exists()


def test_three_charges_each_their_own_order_and_payment_captured_once(
    fake_gopay, client, capture, payee, api, api_client_obj
):
    recurrence = set_up_recurrence(fake_gopay, client, capture, payee, api_client=api_client_obj)
    first_order = recurrence.first_order

    # 1: nothing given -> the first order's lines again; 2: an amount (metered); 3: lines of its own.
    bodies = [
        {},
        {"amount": 45000, "description": "Členství – měsíc 2"},
        {
            "lines": [
                {"payee": payee.pk, "description": "Členství", "quantity": 1, "unit_amount": 29900},
                {"payee": payee.pk, "description": "Parkování", "quantity": 2, "unit_amount": 5000},
            ],
            "reference": "SUB-7-3",
        },
    ]
    expected = [29900, 45000, 39900]
    charges = []
    for body, amount in zip(bodies, expected, strict=True):
        response = post_charge(api, recurrence, body)
        assert response.status_code == 201, response.json()
        data = response.json()
        assert data["object"] == "recurring_charge"
        assert data["status"] == "processing"
        assert data["amount"] == amount
        assert data["currency"] == "CZK"
        assert data["attempts"] == 1
        charges.append(RecurringCharge.objects.get(pk=data["id"]))

    sent = fake_gopay.posts(CREATE_RECURRENCE)
    assert len(sent) == 3
    assert {call.path for call in sent} == {f"/payments/payment/{recurrence.provider_ref}/create-recurrence"}
    for call, charge in zip(sent, charges, strict=True):
        assert call.body["order_number"] == str(charge.payment_id)  # our payment id, one per attempt
        assert call.body["amount"] == charge.amount_minor
        assert sum(item["amount"] for item in call.body["items"]) == charge.amount_minor

    orders = {charge.order_id for charge in charges}
    assert len(orders) == 3
    assert first_order.pk not in orders
    for charge in charges:
        assert charge.order.buyer_email == first_order.buyer_email
        assert charge.order.api_client == first_order.api_client
        assert charge.order.recurring is False
        assert charge.payment.provider == "gopay"
        assert charge.payment.status == PaymentStatus.PENDING
        assert charge.payment.provider_ref == str(child_of(charge))
        assert charge.order.lines.exists()
    assert [line.description for line in charges[2].order.lines.order_by("position")] == ["Členství", "Parkování"]

    for charge in charges:  # GoPay charges each child and notifies twice
        settle(fake_gopay, client, capture, charge, "PAID", times=2)
        assert charge.status == ChargeStatus.SUCCEEDED
        assert charge.charged_at is not None
        assert charge.order.__class__.objects.get(pk=charge.order_id).status == OrderStatus.PAID
        assert captures_of(charge.payment) == 1

    at_gopay = children(fake_gopay, recurrence)
    assert [child["state"] for child in at_gopay] == ["PAID"] * 3
    assert sum(child["amount"] for child in at_gopay) == sum(expected)
    assert captured_total() == 29900 + sum(expected)
    pending = account_balance(accounts.payee_pending(payee.pk), "CZK").amount_minor
    shares = sum(
        line.payee_share_minor for order in Order.objects.filter(status=OrderStatus.PAID) for line in order.lines.all()
    )
    assert pending == shares
    assert_conserved(fake_gopay)

    detail = api.get(f"/api/v1/recurrences/{recurrence.pk}").json()
    assert detail["status"] == "active"
    assert detail["first_order"] == str(first_order.token)
    assert [c["status"] for c in detail["charges"]] == ["succeeded"] * 3
    order_detail = api.get(f"/api/v1/orders/{charges[1].order.token}").json()
    assert order_detail["recurrence"] == recurrence.pk
    assert order_detail["status"] == "paid"
    assert api.get(f"/api/v1/orders/{first_order.token}").json()["recurrence"] == recurrence.pk


def test_charge_answer_replayed_for_the_same_idempotency_key(fake_gopay, client, capture, payee, api, api_client_obj):
    recurrence = set_up_recurrence(fake_gopay, client, capture, payee, api_client=api_client_obj)
    same = key()
    first = post_charge(api, recurrence, {"amount": 10000}, idempotency_key=same)
    again = post_charge(api, recurrence, {"amount": 10000}, idempotency_key=same)
    assert first.status_code == again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    other = post_charge(api, recurrence, {"amount": 20000}, idempotency_key=same)
    assert other.status_code == 422
    assert RecurringCharge.objects.count() == 1
    assert len(fake_gopay.posts(CREATE_RECURRENCE)) == 1


def test_charge_input_is_checked_before_anything_is_made(fake_gopay, client, capture, payee, api, api_client_obj):
    recurrence = set_up_recurrence(
        fake_gopay, client, capture, payee, api_client=api_client_obj, lines=((1, 29900), (1, 1000))
    )
    several = post_charge(api, recurrence, {"amount": 5000})  # which line would that be?
    assert several.status_code == 400
    assert several.json()["error"]["fields"]["lines"]
    mismatch = post_charge(
        api,
        recurrence,
        {"amount": 1, "lines": [{"payee": payee.pk, "description": "X", "quantity": 1, "unit_amount": 500}]},
    )
    assert mismatch.status_code == 400
    assert mismatch.json()["error"]["fields"]["amount"]
    no_payee = post_charge(
        api, recurrence, {"lines": [{"payee": 999999, "description": "X", "quantity": 1, "unit_amount": 500}]}
    )
    assert no_payee.status_code == 400
    assert no_payee.json()["error"]["code"] == "unknown_payee"
    zero = post_charge(api, recurrence, {"amount": 0})
    assert zero.status_code == 400
    assert not RecurringCharge.objects.exists()
    assert not fake_gopay.posts(CREATE_RECURRENCE)


def test_a_lost_parent_notification_is_made_up_for_by_the_hourly_task(fake_gopay, client, capture, payee):
    from payments.services.checkout import sync_payment_from_provider
    from tests.recurring.helpers import run_beat

    payment = start_gopay_payment(recurring_order(payee))
    fake_gopay.pay(gopay_id(payment))
    sync_payment_from_provider(payment=payment, now=timezone.now())  # the buyer's return page; no notification
    assert payment.status == PaymentStatus.SUCCEEDED
    assert not Recurrence.objects.exists()

    assert run_beat(capture)["set_up"] == 1
    recurrence = Recurrence.objects.get()
    assert recurrence.status == RecurrenceStatus.ACTIVE
    assert recurrence.first_payment == payment
    assert run_beat(capture)["set_up"] == 0
