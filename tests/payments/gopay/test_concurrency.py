"""PostgreSQL: GoPay's notifications are unsigned hints that come up to 20 times. Forged ones while GoPay
says CREATED change nothing; 20 at once (with the buyer's return page) once it says PAID capture exactly
once (RELIABILITY §6 row 9)."""

import pytest
from django.test import Client

from ledger.models import LedgerTransaction
from payments.models import OrderStatus, PaymentStatus, WebhookEvent
from tests.payments.concurrency import run_concurrently
from tests.payments.gopay.helpers import assert_conserved, gopay_id, gopay_order, start_gopay_payment

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_forged_then_20_concurrent_notifications_capture_exactly_once(payee, fake_gopay):
    for _ in range(3):
        order = gopay_order(payee)
        payment = start_gopay_payment(order)
        gid = gopay_id(payment)

        # Forged hints while GoPay says CREATED: fetched, nothing changes.
        for _ in range(3):
            assert Client().get("/webhooks/gopay/", {"id": gid}).status_code == 200
        payment.refresh_from_db()
        assert payment.status == PaymentStatus.PENDING
        assert not LedgerTransaction.objects.filter(metadata__payment=payment.pk).exists()

        fake_gopay.pay(gid)

        def hint(index, gid=gid, token=order.token):
            if index % 4 == 3:  # the buyer's return, at the same instant
                return Client().get(f"/checkout/{token}/return/", {"id": gid}).status_code
            return Client().get("/webhooks/gopay/", {"id": gid}).status_code

        assert run_concurrently(20, hint) == [200] * 20

        payment.refresh_from_db()
        order.refresh_from_db()
        assert (payment.status, order.status) == (PaymentStatus.SUCCEEDED, OrderStatus.PAID)
        assert LedgerTransaction.objects.filter(idempotency_key=f"capture:payment:{payment.pk}").count() == 1
        assert payment.history.filter(status=PaymentStatus.SUCCEEDED).count() == 1
        assert order.history.filter(status=OrderStatus.PAID).count() == 1
        assert not WebhookEvent.objects.exclude(status=WebhookEvent.Status.PROCESSED).exists()
    assert LedgerTransaction.objects.filter(kind="capture").count() == 3
    assert_conserved(fake_gopay)
