"""Capture and void of authorized payments in the back office: each behind its own permission (checked by the
server, not only by hiding the button), CSRF-protected forms, messages on success and on errors; the payment
page shows the hold and its expiry, and the changelist filters by when holds lapse."""

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.utils import timezone

from core.admin_tools import money
from core.models import AuditEntry
from payments.models import Order, OrderStatus, PaymentStatus
from payments.services.orders import LineInput, create_order
from tests.payments.gopay.helpers import assert_conserved, gopay_id, notify_and_process, start_gopay_payment

pytestmark = pytest.mark.django_db
PAYMENTS = "/admin/payments/payment/"
CAPTURE = r"/payments/payment/\d+/capture"
VOID = r"/payments/payment/\d+/void-authorization"


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def authorized(payee, fake_gopay, client, django_capture_on_commit_callbacks):
    order = create_order(
        currency="CZK",
        lines=[LineInput(payee_id=payee.pk, description="Zesilovač", quantity=2, unit_amount_minor=75000)],
        buyer_email="jan.novak@example.cz",
        capture_method="manual",
        now=timezone.now(),
    )
    payment = start_gopay_payment(order)
    fake_gopay.pay(gopay_id(payment))
    notify_and_process(client, django_capture_on_commit_callbacks, gopay_id(payment))
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.AUTHORIZED
    return payment


def test_the_payment_page_shows_the_hold_and_the_actions_the_user_may_use(staff_client, authorized):
    viewer = staff_client("payments.view_payment")
    page = viewer.get(f"{PAYMENTS}{authorized.pk}/change/").content.decode()
    assert "Authorized (held, not captured)" in page
    assert "1,500.00" in page
    assert "Authorization expires at" in page
    assert "Authorization (card hold)" in page
    assert "Capture (full or part)" not in page
    assert "Void authorization" not in page

    both = staff_client("payments.view_payment", "payments.capture_payment", "payments.void_payment")
    page = both.get(f"{PAYMENTS}{authorized.pk}/change/").content.decode()
    assert f'href="{PAYMENTS}{authorized.pk}/capture/"' in page
    assert f'href="{PAYMENTS}{authorized.pk}/void/"' in page


def test_the_changelist_has_the_expiry_column_and_filter(staff_client, authorized):
    viewer = staff_client("payments.view_payment")
    page = viewer.get(PAYMENTS).content.decode()
    assert "authorization expires" in page.lower()
    for value in ("24h", "72h", "past", "any"):
        response = viewer.get(PAYMENTS, {"authorization": value})
        assert response.status_code == 200
    assert f"{PAYMENTS}{authorized.pk}/change/" in viewer.get(PAYMENTS, {"authorization": "any"}).content.decode()
    assert f"{PAYMENTS}{authorized.pk}/change/" not in viewer.get(PAYMENTS, {"authorization": "past"}).content.decode()


def test_capture_part_from_the_admin(staff_client, authorized, fake_gopay):
    staff = staff_client("payments.view_payment", "payments.capture_payment")
    form = staff.get(f"{PAYMENTS}{authorized.pk}/capture/")
    assert form.status_code == 200
    assert "csrfmiddlewaretoken" in form.content.decode()
    assert 'name="amount"' in form.content.decode()

    response = staff.post(f"{PAYMENTS}{authorized.pk}/capture/", {"amount": "1000.00"})
    assert response.status_code == 302
    assert response["Location"] == f"{PAYMENTS}{authorized.pk}/change/"
    assert _messages(response) == [f"Captured {money(100000, 'CZK')}."]
    authorized.refresh_from_db()
    assert (authorized.status, authorized.captured_minor) == (PaymentStatus.SUCCEEDED, 100000)
    assert Order.objects.get(pk=authorized.order_id).status == OrderStatus.PARTIALLY_REFUNDED
    [sent] = fake_gopay.posts(CAPTURE)
    assert sent.body["amount"] == 100000
    audit = AuditEntry.objects.get(action="payment.capture")
    assert audit.actor_id == staff.user.pk
    assert_conserved(fake_gopay)


def test_capture_more_than_authorized_is_a_form_error_and_nothing_is_sent(staff_client, authorized, fake_gopay):
    staff = staff_client("payments.view_payment", "payments.capture_payment")
    for amount, error in (("1500.01", "Only CZK"), ("12.345", "at most 2 decimal places"), ("abc", "not an amount")):
        response = staff.post(f"{PAYMENTS}{authorized.pk}/capture/", {"amount": amount})
        assert response.status_code == 200
        assert error in response.content.decode()
    assert fake_gopay.posts(CAPTURE) == []


def test_a_provider_error_is_a_message(staff_client, authorized, fake_gopay):
    staff = staff_client("payments.view_payment", "payments.capture_payment")
    fake_gopay.fail(CAPTURE, "lost")
    response = staff.post(f"{PAYMENTS}{authorized.pk}/capture/", {"amount": ""})
    assert response.status_code == 302
    [message] = _messages(response)
    assert message.startswith("Not captured. GoPay did not answer; the capture may have happened")
    authorized.refresh_from_db()
    assert authorized.status == PaymentStatus.AUTHORIZED


def test_void_from_the_admin(staff_client, authorized, fake_gopay):
    staff = staff_client("payments.view_payment", "payments.void_payment")
    assert staff.post(f"{PAYMENTS}{authorized.pk}/void/", {}).status_code == 200  # not confirmed: the form again
    assert fake_gopay.posts(VOID) == []
    response = staff.post(f"{PAYMENTS}{authorized.pk}/void/", {"confirm": "on"})
    assert response.status_code == 302
    assert _messages(response) == ["Authorization voided; the payment is canceled."]
    authorized.refresh_from_db()
    assert (authorized.status, authorized.failure_code) == (PaymentStatus.CANCELED, "authorization_voided")
    assert AuditEntry.objects.get(action="payment.void").actor_id == staff.user.pk
    assert_conserved(fake_gopay)


@pytest.mark.parametrize(
    ("perms", "action"),
    [
        (("payments.view_payment",), "capture"),
        (("payments.view_payment", "payments.void_payment"), "capture"),
        (("payments.view_payment",), "void"),
        (("payments.view_payment", "payments.capture_payment"), "void"),
        (("payments.capture_payment", "payments.void_payment"), "capture"),  # may not even see payments
    ],
)
def test_without_the_permission_nothing_happens(staff_client, authorized, fake_gopay, perms, action):
    staff = staff_client(*perms)
    data = {"amount": "1000.00"} if action == "capture" else {"confirm": "on"}
    assert staff.get(f"{PAYMENTS}{authorized.pk}/{action}/").status_code == 403
    assert staff.post(f"{PAYMENTS}{authorized.pk}/{action}/", data).status_code == 403
    authorized.refresh_from_db()
    assert authorized.status == PaymentStatus.AUTHORIZED
    assert fake_gopay.posts(CAPTURE) == []
    assert fake_gopay.posts(VOID) == []
    assert not AuditEntry.objects.filter(action__in=["payment.capture", "payment.void"]).exists()


def test_the_forms_are_csrf_protected(staff_client, authorized, fake_gopay):
    staff = staff_client("payments.view_payment", "payments.capture_payment", "payments.void_payment")
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(staff.user)
    assert strict.post(f"{PAYMENTS}{authorized.pk}/capture/", {"amount": "1000.00"}).status_code == 403
    assert strict.post(f"{PAYMENTS}{authorized.pk}/void/", {"confirm": "on"}).status_code == 403
    assert fake_gopay.posts(CAPTURE) == []
    assert fake_gopay.posts(VOID) == []


def test_anonymous_users_go_to_the_login_page(authorized, client):
    response = client.get(f"{PAYMENTS}{authorized.pk}/capture/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_a_payment_that_is_not_authorized_shows_no_actions_and_refuses(staff_client, authorized, fake_gopay):
    staff = staff_client("payments.view_payment", "payments.capture_payment", "payments.void_payment")
    staff.post(f"{PAYMENTS}{authorized.pk}/void/", {"confirm": "on"})
    page = staff.get(f"{PAYMENTS}{authorized.pk}/change/").content.decode()
    assert "Capture (full or part)" not in page
    response = staff.post(f"{PAYMENTS}{authorized.pk}/capture/", {"amount": ""})
    assert response.status_code == 302
    [*_, message] = _messages(response)
    assert message.startswith("Not captured. Payment")
    assert "not authorized" in message
