"""A buyer pays a payment link end to end through the real URLs: link -> checkout -> sandbox page ->
signed webhook -> inbox -> task -> order paid, with the ledger split exact."""

import re

import pytest

from ledger import accounts
from ledger.money import Money
from ledger.selectors import account_balance, check_ledger
from payments.models import Order, OrderStatus, PaymentStatus, WebhookEvent
from tests.factories import PaymentLinkLineFactory

pytestmark = pytest.mark.django_db


def _follow_to_sandbox(client, checkout_path, capture):
    with capture(execute=True):
        response = client.post(checkout_path, {"method": "sandbox"})
    assert response.status_code == 303
    return re.sub(r"^http://testserver", "", response["Location"])


def test_payment_link_paid_through_sandbox_ends_in_paid_order_and_exact_split(
    client, payee, webhook_relay, django_capture_on_commit_callbacks, mailoutbox
):
    line = PaymentLinkLineFactory(payee=payee, unit_amount_minor=12900, link__slug="amp")

    assert client.get("/pay/amp/").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/pay/amp/", {"email": "buyer@example.com", "quantity": 2, "country": "CZ"})
    assert response.status_code == 302
    order = Order.objects.get()
    assert response["Location"] == f"/checkout/{order.token}/"
    assert order.total_minor == 25800

    page = client.get(f"/checkout/{order.token}/")
    assert page.status_code == 200
    assert "Autozvuk Praha s.r.o." in page.content.decode()

    sandbox_path = _follow_to_sandbox(client, f"/checkout/{order.token}/", django_capture_on_commit_callbacks)
    assert client.get(sandbox_path).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(sandbox_path, {"action": "pay"})
    assert response.status_code == 303
    assert response["Location"].endswith(f"/checkout/{order.token}/return/")

    assert webhook_relay.deliveries == [("/webhooks/sandbox/", 200)]
    event = WebhookEvent.objects.get()
    assert event.status == WebhookEvent.Status.PROCESSED
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    payment = order.payments.get()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert payment.settles_order

    order_line = order.lines.get()
    assert order_line.quantity == 2
    assert order_line.payee_id == line.payee_id
    # 10 % commission of 258.00 = 25.80; 21 % VAT on it = 5.42; payee gets the rest.
    assert (order_line.commission_minor, order_line.commission_vat_minor, order_line.payee_share_minor) == (
        2580,
        542,
        22678,
    )
    assert account_balance(accounts.payee_pending(payee.pk), "EUR") == Money(22678, "EUR")
    assert account_balance(accounts.PLATFORM_COMMISSION, "EUR") == Money(2580, "EUR")
    assert account_balance(accounts.PLATFORM_VAT_PAYABLE, "EUR") == Money(542, "EUR")
    fee = payment.fee_minor
    assert fee == 361 + 25  # 1.4 % of 258.00 = 3.612 -> 3.61, plus 0.25
    assert account_balance(accounts.provider_clearing("sandbox"), "EUR") == Money(25800 - fee, "EUR")
    assert check_ledger().ok

    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["buyer@example.com"]
    assert "€258.00" in mailoutbox[0].body

    result = client.get(f"/checkout/{order.token}/return/")
    assert result.status_code == 200
    assert "payment received" in result.content.decode()
