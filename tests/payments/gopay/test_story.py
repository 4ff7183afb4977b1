"""The whole GoPay story through the official SDK against the fake: create → PAID → partial refund → full
refund, driven by GoPay's bare `GET ?id=` notifications (the truth always fetched), and the buyer's return."""

import pytest
from django.utils import timezone

from ledger.models import LedgerTransaction
from payments.models import OrderStatus, PaymentStatus
from refunds.models import Refund, RefundStatus
from refunds.services import request_refund
from tests.payments.gopay.helpers import (
    assert_conserved,
    gopay_id,
    gopay_order,
    notify_and_process,
    start_gopay_payment,
)

pytestmark = pytest.mark.django_db


def test_create_pay_partial_refund_full_refund(client, payee, fake_gopay, django_capture_on_commit_callbacks):
    capture = django_capture_on_commit_callbacks
    order = gopay_order(payee)
    payment = start_gopay_payment(order)
    [created] = fake_gopay.posts(r"/payments/payment")
    assert created.scope == "payment-create"
    body = created.body
    assert (body["amount"], body["currency"]) == (150000, "CZK")
    assert body["order_number"] == str(payment.pk)
    assert body["items"] == [{"type": "ITEM", "name": "Vstupenka 1", "amount": 150000, "count": 2, "vat_rate": 21}]
    assert body["payer"]["contact"]["email"] == "jan.novak@example.cz"
    assert body["callback"]["notification_url"].endswith("/webhooks/gopay/")
    assert payment.checkout_url.startswith("https://gw.sandbox.gopay.com/gw/v3/")
    assert payment.status == PaymentStatus.PENDING

    fake_gopay.pay(gopay_id(payment))
    for _ in range(3):
        assert notify_and_process(client, capture, gopay_id(payment)).status_code == 200
    payment.refresh_from_db()
    order.refresh_from_db()
    assert (payment.status, payment.captured_minor, order.status) == (PaymentStatus.SUCCEEDED, 150000, OrderStatus.PAID)
    assert LedgerTransaction.objects.filter(kind="capture").count() == 1
    assert set(fake_gopay.scopes(r"/payments/payment/\d+")) == {"payment-all"}
    assert_conserved(fake_gopay)

    with capture(execute=True):
        request_refund(order=order, amount_minor=50000, reason="requested_by_customer", now=timezone.now())
    assert fake_gopay.refunded(gopay_id(payment)) == 50000
    with capture(execute=True):
        request_refund(order=order, amount_minor=100000, reason="requested_by_customer", now=timezone.now())
    notify_and_process(client, capture, gopay_id(payment))
    order.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED
    assert fake_gopay.refunded(gopay_id(payment)) == 150000
    refunds = list(Refund.objects.order_by("pk").values_list("amount_minor", "status", "reason"))
    assert refunds == [
        (50000, RefundStatus.SUCCEEDED, "requested_by_customer"),
        (100000, RefundStatus.SUCCEEDED, "requested_by_customer"),
    ]
    assert all(Refund.objects.values_list("provider_ref", flat=True))
    assert_conserved(fake_gopay)
