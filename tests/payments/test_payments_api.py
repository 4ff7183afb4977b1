"""The payments API for pre-authorized payments: `POST /api/v1/payments/<id>/capture` and `/void`, with
`Idempotency-Key`, scoped to the API client's own orders, errors in the API's shape; and `capture_method` on the
orders API. GoPay is the fake of tests/payments/gopay (the official SDK talking HTTP to it)."""

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from core.models import ApiClientKey, AuditEntry, IdempotencyRecord
from payments.models import Order, OrderStatus, PaymentStatus
from payments.services.checkout import start_payment
from tests.factories import ApiClientFactory
from tests.payments.gopay.helpers import assert_conserved, gopay_id, notify_and_process
from tests.payments.helpers import line, new_key, order_payload, post_order

pytestmark = pytest.mark.django_db
CAPTURE = r"/payments/payment/\d+/capture"


def assert_error(response, status, code):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    return body


def post(client, url, payload=None, *, key="auto"):
    headers = {}
    if key is not None:
        headers["HTTP_IDEMPOTENCY_KEY"] = new_key() if key == "auto" else key
    return client.post(url, payload, format="json", **headers)


@pytest.fixture
def authorized(api, payee, fake_gopay, client, django_capture_on_commit_callbacks):
    """An order made through the API with capture_method manual, authorized by the buyer at GoPay."""
    response = post_order(
        api,
        order_payload(
            payee, currency="CZK", capture_method="manual", lines=[line(payee, quantity=2, unit_amount=75000)]
        ),
    )
    assert response.status_code == 201, response.content
    assert response.json()["capture_method"] == "manual"
    order = Order.objects.get(token=response.json()["id"])
    payment = start_payment(order=order, provider_name="gopay", now=timezone.now())
    fake_gopay.pay(gopay_id(payment))
    notify_and_process(client, django_capture_on_commit_callbacks, gopay_id(payment))
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.AUTHORIZED
    return payment


def url(payment, action):
    return f"/api/v1/payments/{payment.pk}/{action}"


def test_orders_accept_and_show_capture_method(api, payee):
    response = post_order(api, order_payload(payee))
    assert response.json()["capture_method"] == "automatic"
    response = post_order(api, order_payload(payee, capture_method="later"))
    body = assert_error(response, 400, "validation_error")
    assert "capture_method" in body["error"]["fields"]


def test_the_order_shows_the_authorized_payment(api, authorized):
    body = api.get(f"/api/v1/orders/{authorized.order.token}").json()
    [payment] = body["payments"]
    assert (payment["status"], payment["amount_authorized"], payment["amount_captured"]) == ("authorized", 150000, 0)
    assert payment["authorization_expires_at"]
    assert body["status"] == "open"


def test_capture_part_then_replay_with_the_same_key(api, authorized, fake_gopay):
    key = new_key()
    response = post(api, url(authorized, "capture"), {"amount": 100000}, key=key)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["order"] == str(authorized.order.token)
    assert (body["status"], body["amount_captured"], body["amount_authorized"], body["amount_refunded"]) == (
        "succeeded",
        100000,
        0,
        0,
    )
    order = api.get(f"/api/v1/orders/{authorized.order.token}").json()
    assert (order["status"], order["amount_refunded"]) == ("partially_refunded", 50000)

    replay = post(api, url(authorized, "capture"), {"amount": 100000}, key=key)
    assert replay.status_code == 200
    assert replay["Idempotent-Replayed"] == "true"
    assert replay.json() == body
    assert len(fake_gopay.posts(CAPTURE)) == 1
    assert_error(post(api, url(authorized, "capture"), {"amount": 90000}, key=key), 422, "idempotency_key_reused")
    audit = AuditEntry.objects.get(action="payment.capture")
    assert audit.actor_label == "api:demo-marketplace"
    assert_conserved(fake_gopay)


def test_capture_everything_without_a_body(api, authorized, fake_gopay):
    response = post(api, url(authorized, "capture"))
    assert response.status_code == 200, response.content
    assert (response.json()["status"], response.json()["amount_captured"]) == ("succeeded", 150000)
    assert Order.objects.get(pk=authorized.order_id).status == OrderStatus.PAID
    assert_conserved(fake_gopay)


def test_void(api, authorized, fake_gopay):
    response = post(api, url(authorized, "void"))
    assert response.status_code == 200, response.content
    assert (response.json()["status"], response.json()["failure_code"]) == ("canceled", "authorization_voided")
    assert len(fake_gopay.posts(r"/payments/payment/\d+/void-authorization")) == 1
    assert_conserved(fake_gopay)


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"amount": 150001}, 409, "capture_exceeds_authorized"),
        ({"amount": 0}, 400, "amount_must_be_positive"),
        ({"amount": "100"}, 400, "validation_error"),
        ({"amount": 12.5}, 400, "validation_error"),
    ],
)
def test_a_refused_capture_sends_nothing_and_keeps_no_key(api, authorized, fake_gopay, payload, status, code):
    before = IdempotencyRecord.objects.count()
    assert_error(post(api, url(authorized, "capture"), payload), status, code)
    assert fake_gopay.posts(CAPTURE) == []
    assert IdempotencyRecord.objects.count() == before
    authorized.refresh_from_db()
    assert authorized.status == PaymentStatus.AUTHORIZED


def test_gopay_not_answering_is_a_503_and_the_key_can_be_retried(api, authorized, fake_gopay):
    fake_gopay.fail(CAPTURE, "status0")
    key = new_key()
    body = assert_error(post(api, url(authorized, "capture"), key=key), 503, "provider_unavailable")
    assert "the capture may have happened" in body["error"]["message"]
    failure = AuditEntry.objects.get(action="payment.capture")
    assert failure.outcome == AuditEntry.Outcome.FAILURE  # kept: no transaction around the provider call
    response = post(api, url(authorized, "capture"), key=key)
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "succeeded"
    assert_conserved(fake_gopay)


def test_gopay_refusing_is_a_409_with_its_message(api, authorized, fake_gopay):
    fake_gopay.expire_authorization(gopay_id(authorized))
    body = assert_error(post(api, url(authorized, "void")), 409, "provider_rejected")
    assert "The authorization has been voided." in body["error"]["message"]


def test_only_the_clients_own_payments(authorized, fake_gopay):
    other = ApiClientFactory(name="other-marketplace")
    _, key = ApiClientKey.objects.create_key(name="other", client=other)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    for action in ("capture", "void"):
        assert_error(post(client, url(authorized, action)), 404, "not_found")
    assert fake_gopay.posts(CAPTURE) == []


def test_an_idempotency_key_is_required(api, authorized):
    assert_error(post(api, url(authorized, "capture"), key=None), 400, "idempotency_key_required")
    assert_error(post(api, url(authorized, "void"), key=None), 400, "idempotency_key_required")


def test_a_payment_that_is_not_authorized(api, payee, fake_gopay):
    response = post_order(api, order_payload(payee, currency="CZK"))
    order = Order.objects.get(token=response.json()["id"])
    payment = start_payment(order=order, provider_name="gopay", now=timezone.now())
    assert_error(post(api, url(payment, "capture")), 409, "payment_not_authorized")
    assert_error(post(api, url(payment, "void")), 409, "payment_not_authorized")
