"""Buyer journeys through the real URLs and the sandbox gateway's hosted page: declines, 3-D Secure,
abandonment, double payment, payment for a canceled order, expiry and a missed webhook. The gateway's
signed deliveries go through `webhook_relay` into /webhooks/sandbox/ (except where a webhook is lost)."""

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from ledger import accounts
from ledger.models import LedgerTransaction
from ledger.money import Money
from ledger.selectors import account_balance, check_ledger
from payments.models import OrderStatus, Payment, PaymentStatus, ReviewReason, WebhookEvent
from payments.providers.sandbox import gateway
from payments.providers.sandbox.models import SandboxSession
from payments.services.orders import cancel_order, expire_stale_orders
from refunds.models import Refund, RefundStatus
from tests.payments.helpers import (
    captures_of,
    make_order,
    open_second_attempt,
    sandbox_path,
    session_of,
    start_sandbox_payment,
)

pytestmark = pytest.mark.django_db

CLEARING = accounts.provider_clearing("sandbox")


@pytest.fixture
def buyer(client, webhook_relay, django_capture_on_commit_callbacks):
    """Clicks on our pages and on the sandbox page, running what each click queued (deliveries, tasks)."""

    class Buyer:
        relay = webhook_relay

        def post(self, path, data):
            with django_capture_on_commit_callbacks(execute=True):
                return client.post(path, data)

        def get(self, path):
            with django_capture_on_commit_callbacks(execute=True):
                return client.get(path)

        def choose_sandbox(self, order):
            response = self.post(f"/checkout/{order.token}/", {"method": "sandbox"})
            assert response.status_code == 303, response.content
            payment = order.payments.order_by("-pk").first()
            assert response["Location"] == payment.checkout_url
            return payment

    return Buyer()


def relative(url):
    return url.removeprefix("http://testserver")


def test_decline_shows_plain_language_failure_and_try_again(buyer, order):
    payment = buyer.choose_sandbox(order)
    response = buyer.post(sandbox_path(payment), {"action": "decline", "reason": "insufficient_funds"})
    assert response.status_code == 303
    assert response["Location"] == f"http://testserver/checkout/{order.token}/return/"
    assert buyer.relay.deliveries == [("/webhooks/sandbox/", 200)]

    payment.refresh_from_db()
    order.refresh_from_db()
    assert payment.status == PaymentStatus.FAILED
    assert payment.failure_code == "insufficient_funds"
    assert order.status == OrderStatus.OPEN
    assert not LedgerTransaction.objects.exists()

    page = buyer.get(relative(response["Location"])).content.decode()
    assert "The payment did not go through" in page
    assert "There were not enough funds available" in page
    assert "insufficient_funds" not in page  # no provider codes for the buyer
    assert f'href="/checkout/{order.token}/"' in page
    assert "Try again" in page

    # trying again opens a new attempt that can still be paid
    retry = buyer.choose_sandbox(order)
    assert retry.pk != payment.pk
    buyer.post(sandbox_path(retry), {"action": "pay"})
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    assert check_ledger().ok


def test_3ds_approved_pays_the_order(buyer, order):
    payment = buyer.choose_sandbox(order)
    response = buyer.post(sandbox_path(payment), {"action": "3ds"})
    assert response.status_code == 303
    challenge = response["Location"]
    assert challenge.endswith("/challenge/")
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.REQUIRES_ACTION
    assert buyer.get(challenge).status_code == 200

    response = buyer.post(challenge, {"action": "approve"})
    assert response.status_code == 303
    payment.refresh_from_db()
    order.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert order.status == OrderStatus.PAID
    assert captures_of(payment) == 1
    assert [status for _, status in buyer.relay.deliveries] == [200, 200]
    assert list(WebhookEvent.objects.order_by("pk").values_list("event_type", flat=True)) == [
        "payment.requires_action",
        "payment.succeeded",
    ]
    assert "payment received" in buyer.get(f"/checkout/{order.token}/return/").content.decode()


def test_3ds_failed_fails_the_payment_with_authentication_failed(buyer, order):
    payment = buyer.choose_sandbox(order)
    challenge = buyer.post(sandbox_path(payment), {"action": "3ds"})["Location"]
    buyer.post(challenge, {"action": "fail"})
    payment.refresh_from_db()
    order.refresh_from_db()
    assert payment.status == PaymentStatus.FAILED
    assert payment.failure_code == "authentication_failed"
    assert order.status == OrderStatus.OPEN
    page = buyer.get(f"/checkout/{order.token}/return/").content.decode()
    assert "3-D Secure check did not succeed" in page
    assert not LedgerTransaction.objects.exists()


def test_abandon_returns_to_checkout_with_a_notice(buyer, order):
    payment = buyer.choose_sandbox(order)
    response = buyer.post(sandbox_path(payment), {"action": "abandon"})
    assert response.status_code == 303
    assert response["Location"] == f"http://testserver/checkout/{order.token}/?canceled=1"

    page = buyer.get(relative(response["Location"]))
    assert page.status_code == 200
    assert "You left the payment page before paying" in page.content.decode()
    payment.refresh_from_db()
    order.refresh_from_db()
    assert payment.status == PaymentStatus.CANCELED
    assert order.status == OrderStatus.OPEN
    assert session_of(payment).status == SandboxSession.Status.CANCELED


def test_double_payment_is_refunded_automatically_and_flagged(buyer, order):
    first = start_sandbox_payment(order)
    second = open_second_attempt(order)
    assert first.provider_ref != second.provider_ref

    buyer.post(sandbox_path(first), {"action": "pay"})
    buyer.post(sandbox_path(second), {"action": "pay"})
    assert [status for _, status in buyer.relay.deliveries] == [200, 200]

    order.refresh_from_db()
    first.refresh_from_db()
    second.refresh_from_db()
    assert order.status == OrderStatus.PAID
    assert first.status == second.status == PaymentStatus.SUCCEEDED
    assert first.settles_order
    assert not second.settles_order
    assert Payment.objects.filter(order=order, settles_order=True).count() == 1
    assert not first.needs_review
    assert second.needs_review
    assert second.review_reason == ReviewReason.DOUBLE_PAYMENT
    assert captures_of(first) == 1
    assert captures_of(second) == 0

    refund = Refund.objects.get(payment=second)
    assert refund.is_overpayment
    assert refund.status == RefundStatus.SUCCEEDED
    assert refund.amount_minor == order.total_minor
    assert second.refunded_minor == order.total_minor
    assert session_of(second).refunded_minor == order.total_minor  # the money really went back
    assert session_of(first).refunded_minor == 0
    assert not Refund.objects.filter(payment=first).exists()

    gross = order.total_minor
    fees = first.fee_minor + second.fee_minor
    assert first.fee_minor > 0
    assert second.fee_minor > 0
    assert account_balance(accounts.BUYERS_OVERPAYMENTS, "EUR") == Money(0, "EUR")
    assert account_balance(CLEARING, "EUR") == Money(gross - fees, "EUR")
    assert check_ledger().ok


def test_payment_for_a_canceled_order_is_refunded_automatically(buyer, order):
    payment = start_sandbox_payment(order)
    # The order is canceled; the best-effort expiry at the provider is lost (its on_commit never runs),
    # so the buyer can still pay on the gateway's page.
    cancel_order(order=order, now=timezone.now(), actor_label="api:test")
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.CANCELED

    buyer.post(sandbox_path(payment), {"action": "pay"})
    payment.refresh_from_db()
    order.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert not payment.settles_order
    assert payment.needs_review
    assert payment.review_reason == ReviewReason.ORDER_CLOSED
    assert order.status == OrderStatus.CANCELED
    refund = Refund.objects.get(payment=payment)
    assert (refund.is_overpayment, refund.status, refund.amount_minor) == (
        True,
        RefundStatus.SUCCEEDED,
        order.total_minor,
    )
    assert session_of(payment).refunded_minor == order.total_minor
    assert captures_of(payment) == 0
    assert account_balance(accounts.BUYERS_OVERPAYMENTS, "EUR") == Money(0, "EUR")
    assert account_balance(CLEARING, "EUR") == Money(-payment.fee_minor, "EUR")  # the provider keeps its fee
    assert check_ledger().ok
    page = buyer.get(f"/checkout/{order.token}/return/").content.decode()
    assert "This order was canceled" in page


def test_expire_stale_orders_expires_order_payment_and_provider_session(
    buyer, payee, django_capture_on_commit_callbacks
):
    now = timezone.now()
    stale = make_order(payee, now=now - timedelta(hours=2))
    fresh = make_order(payee, now=now)
    stale_payment = start_sandbox_payment(stale, now=now - timedelta(hours=2) + timedelta(minutes=5))
    fresh_payment = start_sandbox_payment(fresh, now=now)
    paid = make_order(payee, now=now - timedelta(hours=2))
    buyer.post(sandbox_path(start_sandbox_payment(paid, now=now - timedelta(hours=2))), {"action": "pay"})
    paid.refresh_from_db()
    assert paid.status == OrderStatus.PAID

    with django_capture_on_commit_callbacks(execute=True):
        assert expire_stale_orders(now=now) == 1

    for row in (stale, fresh, paid, stale_payment, fresh_payment):
        row.refresh_from_db()
    assert stale.status == OrderStatus.EXPIRED
    assert stale_payment.status == PaymentStatus.EXPIRED
    assert session_of(stale_payment).status == SandboxSession.Status.EXPIRED
    assert fresh.status == OrderStatus.OPEN
    assert fresh_payment.status == PaymentStatus.PENDING
    assert session_of(fresh_payment).status == SandboxSession.Status.OPEN
    assert paid.status == OrderStatus.PAID
    # the gateway told us about the expiry too; applying it changed nothing more
    expired_event = WebhookEvent.objects.get(event_type="payment.expired")
    assert expired_event.status == WebhookEvent.Status.PROCESSED

    page = buyer.get(f"/checkout/{stale.token}/return/").content.decode()
    assert "This order has expired" in page
    # the checkout page sends the buyer to the result; it does not offer to pay
    assert buyer.get(f"/checkout/{stale.token}/")["Location"] == f"/checkout/{stale.token}/return/"
    # and the gateway's page is closed
    assert buyer.get(sandbox_path(stale_payment)).status_code == 409
    # running it again finds nothing
    with django_capture_on_commit_callbacks(execute=True):
        assert expire_stale_orders(now=now) == 0


def test_late_success_after_expiry_is_accepted(buyer, payee):
    now = timezone.now()
    order = make_order(payee, now=now - timedelta(minutes=30))
    payment = start_sandbox_payment(order, now=now - timedelta(minutes=29))
    # Expired on our side at its deadline; the expiry call to the provider is lost (on_commit not run),
    # so the buyer, still on the gateway's page, pays.
    assert expire_stale_orders(now=order.expires_at + timedelta(seconds=1)) == 1
    order.refresh_from_db()
    assert order.status == OrderStatus.EXPIRED

    buyer.post(sandbox_path(payment), {"action": "pay"})
    order.refresh_from_db()
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert payment.settles_order
    assert not payment.needs_review
    assert order.status == OrderStatus.PAID
    assert captures_of(payment) == 1
    assert not Refund.objects.exists()
    assert "payment received" in buyer.get(f"/checkout/{order.token}/return/").content.decode()
    assert check_ledger().ok


def test_return_page_syncs_from_the_provider_when_the_webhook_never_arrived(client, order):
    payment = start_sandbox_payment(order)
    # The gateway marks the session paid; its delivery is queued on commit, which never comes here.
    gateway.buyer_pays(str(session_of(payment).token), now=timezone.now())
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PENDING

    page = client.get(f"/checkout/{order.token}/return/")
    assert page.status_code == 200
    assert "payment received" in page.content.decode()
    payment.refresh_from_db()
    order.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert order.status == OrderStatus.PAID
    assert not WebhookEvent.objects.exists()
    assert captures_of(payment) == 1
    assert payment.fee_minor == session_of(payment).fee_minor
    # the webhook arriving later changes nothing
    assert client.get(f"/checkout/{order.token}/return/").status_code == 200
    assert captures_of(payment) == 1
    assert check_ledger().ok


def test_return_page_while_pending_shows_processing(client, order):
    start_sandbox_payment(order)
    page = client.get(f"/checkout/{order.token}/return/").content.decode()
    assert "Processing your payment" in page
    order.refresh_from_db()
    assert order.status == OrderStatus.OPEN


def test_sandbox_deliveries_are_accepted_while_the_secret_is_rolled(buyer, order):
    with override_settings(SANDBOX_WEBHOOK_SECRET="whsec_new,whsec_sandbox_test"):
        payment = buyer.choose_sandbox(order)
        buyer.post(sandbox_path(payment), {"action": "pay"})
    assert buyer.relay.deliveries == [("/webhooks/sandbox/", 200)]
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
