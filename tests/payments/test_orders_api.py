"""The orders and payees API (/api/v1/): happy paths, tenant isolation, and every refusal leaving nothing
behind (no order, no line, no idempotency record, no audit entry)."""

import json
import uuid

import pytest
from rest_framework.test import APIClient

from commissions.models import Payee
from core.models import ApiClientKey, AuditEntry, IdempotencyRecord
from payments.models import Order, OrderStatus, PaymentStatus
from payments.providers.sandbox.models import SandboxSession
from tests.factories import ApiClientFactory, PayeeFactory
from tests.payments.helpers import (
    ORDERS_URL,
    PAN_FIELDS,
    PAN_FORMATS,
    line,
    new_key,
    order_payload,
    order_payload_with_pan,
    post_order,
    session_of,
    start_sandbox_payment,
    write_counts,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def other_api(db):
    client_obj = ApiClientFactory(name="other-marketplace")
    _, key = ApiClientKey.objects.create_key(name="other", client=client_obj)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return client


def assert_error(response, status, code):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    return body


# --- create, read, cancel ------------------------------------------------------------------------------


def test_create_order_returns_201_with_checkout_url_and_exact_line_split(api, api_client_obj, payee):
    reduced = PayeeFactory(legal_name="Akustika Brno s.r.o.", commission_bps=850)
    payload = order_payload(
        payee,
        reference="MKT-1001",
        description="Car audio",
        metadata={"cart": "c-77"},
        lines=[
            line(payee, quantity=2, unit_amount=12900),
            line(reduced, description="Cable kit", quantity=1, unit_amount=999),
        ],
    )
    response = post_order(api, payload)

    assert response.status_code == 201, response.content
    body = response.json()
    order = Order.objects.get()
    assert body["id"] == str(order.token)
    assert body["object"] == "order"
    assert body["status"] == "open"
    assert body["reference"] == "MKT-1001"
    assert body["metadata"] == {"cart": "c-77"}
    assert body["checkout_url"] == f"http://testserver/checkout/{order.token}/"
    assert body["total"] == 2 * 12900 + 999 == order.total_minor
    assert body["buyer"] == {
        "email": "buyer@example.com",
        "country": "CZ",
        "vat_id": "",
        "name": "",
        "address": "",
    }
    assert order.api_client == api_client_obj
    # 10 % of 258.00 = 25.80, VAT 21 % = 5.42; 8.5 % of 9.99 = 0.85 (half-up), VAT 0.18 (half-up).
    splits = [(x["amount"], x["commission"], x["commission_vat"], x["payee_share"]) for x in body["lines"]]
    assert splits == [(25800, 2580, 542, 22678), (999, 85, 18, 896)]
    assert [x["commission_bps"] for x in body["lines"]] == [1000, 850]
    assert [x["payee"] for x in body["lines"]] == [payee.pk, reduced.pk]
    for row in order.lines.all():
        assert row.commission_minor + row.commission_vat_minor + row.payee_share_minor == row.amount_minor
    assert AuditEntry.objects.filter(action="order.create", object_id=str(order.pk)).count() == 1
    assert IdempotencyRecord.objects.get().status == IdempotencyRecord.Status.COMPLETED

    # the checkout page it points to exists
    assert APIClient().get(f"/checkout/{order.token}/").status_code == 200


def test_read_order(api, payee):
    created = post_order(api, order_payload(payee)).json()
    response = api.get(f"{ORDERS_URL}/{created['id']}")
    assert response.status_code == 200
    assert response.json() == created


def test_cancel_open_order_then_cancel_again_conflicts(api, payee):
    token = post_order(api, order_payload(payee)).json()["id"]
    response = api.post(f"{ORDERS_URL}/{token}/cancel", HTTP_IDEMPOTENCY_KEY=new_key())
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "canceled"
    assert response.json()["canceled_at"]
    assert Order.objects.get().status == OrderStatus.CANCELED

    again = api.post(f"{ORDERS_URL}/{token}/cancel", HTTP_IDEMPOTENCY_KEY=new_key())
    assert_error(again, 409, "order_not_cancelable")
    assert Order.objects.get().status == OrderStatus.CANCELED
    assert AuditEntry.objects.filter(action="order.cancel").count() == 1


def test_cancel_replays_under_its_key_and_expires_the_provider_checkout(
    api, payee, webhook_relay, django_capture_on_commit_callbacks
):
    token = post_order(api, order_payload(payee)).json()["id"]
    order = Order.objects.get(token=token)
    payment = start_sandbox_payment(order)
    key = new_key()
    with django_capture_on_commit_callbacks(execute=True):
        first = api.post(f"{ORDERS_URL}/{token}/cancel", HTTP_IDEMPOTENCY_KEY=key)
    assert first.status_code == 200
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.CANCELED
    assert session_of(payment).status == SandboxSession.Status.EXPIRED  # closed at the provider too
    assert webhook_relay.deliveries == [("/webhooks/sandbox/", 200)]  # its payment.expired event is harmless
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.CANCELED

    replay = api.post(f"{ORDERS_URL}/{token}/cancel", HTTP_IDEMPOTENCY_KEY=key)
    assert replay.status_code == 200
    assert replay["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()
    assert first.json()["payments"][0]["status"] == "canceled"


def test_another_clients_order_is_not_found(api, other_api, payee):
    token = post_order(api, order_payload(payee)).json()["id"]
    assert_error(other_api.get(f"{ORDERS_URL}/{token}"), 404, "not_found")
    assert_error(other_api.post(f"{ORDERS_URL}/{token}/cancel", HTTP_IDEMPOTENCY_KEY=new_key()), 404, "not_found")
    assert Order.objects.get().status == OrderStatus.OPEN
    # unknown token: the same answer
    assert_error(api.get(f"{ORDERS_URL}/{uuid.uuid4()}"), 404, "not_found")


@pytest.mark.parametrize("authorization", [None, "Api-Key not-a-real-key", "Bearer abc", "Api-Key "])
def test_missing_or_invalid_api_key_is_401(payee, authorization):
    client = APIClient()
    if authorization is not None:
        client.credentials(HTTP_AUTHORIZATION=authorization)
    before = write_counts()
    assert_error(post_order(client, order_payload(payee)), 401, "authentication_required")
    assert_error(client.get(f"{ORDERS_URL}/{uuid.uuid4()}"), 401, "authentication_required")
    assert_error(client.get("/api/v1/payees"), 401, "authentication_required")
    assert write_counts() == before


def test_revoked_key_and_inactive_client_are_401(api_client_obj, payee):
    key_obj, key = ApiClientKey.objects.create_key(name="revoked", client=api_client_obj)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    assert client.get("/api/v1/payees").status_code == 200
    key_obj.revoked = True
    key_obj.save()
    assert_error(client.get("/api/v1/payees"), 401, "authentication_required")

    _, key2 = ApiClientKey.objects.create_key(name="second", client=api_client_obj)
    api_client_obj.is_active = False
    api_client_obj.save()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key2}")
    assert_error(client.get("/api/v1/payees"), 401, "authentication_required")


# --- payees ---------------------------------------------------------------------------------------------


def test_create_and_read_payee(api):
    payload = {"kind": "organizer", "legal_name": "Festival Brno z.s.", "country": "CZ", "email": "fest@example.com"}
    response = api.post("/api/v1/payees", payload, format="json", HTTP_IDEMPOTENCY_KEY=new_key())
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["object"] == "payee"
    assert body["kind"] == "organizer"
    assert body["status"] == "active"
    payee = Payee.objects.get(pk=body["id"])
    assert payee.legal_name == "Festival Brno z.s."

    assert api.get(f"/api/v1/payees/{payee.pk}").json() == body
    assert body in api.get("/api/v1/payees").json()
    assert_error(api.get("/api/v1/payees/999999"), 404, "not_found")


def test_invalid_payee_is_400_and_stores_nothing(api):
    before = Payee.objects.count()
    payload = {"kind": "seller", "legal_name": "X", "country": "cz", "email": "not-an-email", "commission_bps": 10001}
    response = api.post("/api/v1/payees", payload, format="json", HTTP_IDEMPOTENCY_KEY=new_key())
    body = assert_error(response, 400, "validation_error")
    assert set(body["error"]["fields"]) == {"country", "email", "commission_bps"}
    assert Payee.objects.count() == before
    assert IdempotencyRecord.objects.count() == 0


# --- refusals leave nothing behind ------------------------------------------------------------------------


def _invalid_cases(payee):
    return {
        "unknown_payee": (order_payload(payee, lines=[line(payee, payee=987654)]), 400, "unknown_payee"),
        "currency_not_enabled": (order_payload(payee, currency="KWD"), 400, "currency_not_enabled"),
        "currency_unknown": (order_payload(payee, currency="XYZ"), 400, "currency_not_enabled"),
        "negative_amount": (
            order_payload(payee, lines=[line(payee, unit_amount=-100)]),
            400,
            "amount_must_be_positive",
        ),
        "zero_amount": (order_payload(payee, lines=[line(payee, unit_amount=0)]), 400, "amount_must_be_positive"),
        "zero_quantity": (order_payload(payee, lines=[line(payee, quantity=0)]), 400, "quantity_must_be_positive"),
        "500_lines": (order_payload(payee, lines=[line(payee)] * 500), 400, "too_many_lines"),
        "float_amount": (order_payload(payee, lines=[line(payee, unit_amount=12.5)]), 400, "validation_error"),
        "string_amount": (order_payload(payee, lines=[line(payee, unit_amount="1290")]), 400, "validation_error"),
        "float_quantity": (order_payload(payee, lines=[line(payee, quantity=1.0)]), 400, "validation_error"),
        "no_lines": (order_payload(payee, lines=[]), 400, "no_lines"),
        "bad_email": (order_payload(payee, buyer={"email": "nope"}), 400, "validation_error"),
        "not_an_object": ([1, 2, 3], 400, "validation_error"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "unknown_payee",
        "currency_not_enabled",
        "currency_unknown",
        "negative_amount",
        "zero_amount",
        "zero_quantity",
        "500_lines",
        "float_amount",
        "string_amount",
        "float_quantity",
        "no_lines",
        "bad_email",
        "not_an_object",
    ],
)
def test_invalid_order_is_refused_with_its_code_and_leaves_nothing(api, payee, case):
    payload, status, code = _invalid_cases(payee)[case]
    before = write_counts()
    assert_error(post_order(api, payload), status, code)
    assert write_counts() == before


def test_float_amount_names_the_field(api, payee):
    body = assert_error(
        post_order(api, order_payload(payee, lines=[line(payee, unit_amount=12.5)])), 400, "validation_error"
    )
    assert "lines[0].unit_amount" in body["error"]["fields"]


def test_error_points_at_the_offending_line(api, payee):
    payload = order_payload(payee, lines=[line(payee), line(payee, payee=987654)])
    body = assert_error(post_order(api, payload), 400, "unknown_payee")
    assert list(body["error"]["fields"]) == ["lines[1].payee"]


def test_ten_megabyte_body_is_413_and_leaves_nothing(api, payee):
    body = json.dumps(order_payload(payee, description="x" * (10 * 1024 * 1024))).encode()
    before = write_counts()
    response = api.post(ORDERS_URL, data=body, content_type="application/json", HTTP_IDEMPOTENCY_KEY=new_key())
    assert_error(response, 413, "request_too_large")
    assert write_counts() == before


@pytest.mark.parametrize(
    ("content_type", "data"),
    [
        ("text/plain", b'{"currency": "EUR"}'),
        ("application/x-www-form-urlencoded", b"currency=EUR"),
        ("application/xml", b"<order/>"),
    ],
)
def test_wrong_content_type_is_415_and_leaves_nothing(api, content_type, data):
    before = write_counts()
    response = api.post(ORDERS_URL, data=data, content_type=content_type, HTTP_IDEMPOTENCY_KEY=new_key())
    assert_error(response, 415, "unsupported_media_type")
    assert write_counts() == before


@pytest.mark.parametrize("data", [b'{"currency": "EUR",', b"not json", b'{"a": 1}}', b"\xff\xfe{}"])
def test_malformed_json_is_400_and_leaves_nothing(api, data):
    before = write_counts()
    response = api.post(ORDERS_URL, data=data, content_type="application/json", HTTP_IDEMPOTENCY_KEY=new_key())
    assert_error(response, 400, "malformed_json")
    assert write_counts() == before


@pytest.mark.parametrize("pan", PAN_FORMATS)
@pytest.mark.parametrize("where", PAN_FIELDS)
def test_card_number_in_any_field_is_400_card_data_forbidden(api, payee, where, pan):
    before = write_counts()
    assert_error(post_order(api, order_payload_with_pan(payee, where, pan)), 400, "card_data_forbidden")
    assert write_counts() == before


def test_card_number_as_json_integer_is_400_card_data_forbidden(api, payee):
    payload = order_payload(payee, lines=[line(payee, unit_amount=4111111111111111)])
    body = json.dumps(payload).encode()
    assert b"4111111111111111," in body or b"4111111111111111}" in body  # a bare JSON number, not a string
    before = write_counts()
    response = api.post(ORDERS_URL, data=body, content_type="application/json", HTTP_IDEMPOTENCY_KEY=new_key())
    assert_error(response, 400, "card_data_forbidden")
    assert write_counts() == before


def test_duplicate_reference_for_the_same_client_is_409(api, other_api, payee):
    assert post_order(api, order_payload(payee, reference="MKT-1")).status_code == 201
    before = write_counts()
    assert_error(post_order(api, order_payload(payee, reference="MKT-1")), 409, "duplicate_reference")
    assert write_counts() == before
    # references are per API client
    assert post_order(other_api, order_payload(payee, reference="MKT-1")).status_code == 201
    assert Order.objects.filter(reference="MKT-1").count() == 2


# --- error shape of an unexpected failure -------------------------------------------------------------


def test_unexpected_exception_is_a_generic_500_with_an_error_id(api, payee, monkeypatch, caplog):
    def explode(**kwargs):
        raise RuntimeError("db password is hunter2 at /srv/tollgate/payments/services/orders.py")

    monkeypatch.setattr("payments.api.views.create_order", explode)
    before = write_counts()
    response = post_order(api, order_payload(payee))

    assert response.status_code == 500
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == "internal_error"
    error_id = body["error"]["error_id"]
    assert error_id
    assert error_id in body["error"]["message"]
    text = response.content.decode()
    for leak in ("Traceback", "RuntimeError", "hunter2", "orders.py", 'File "'):
        assert leak not in text
    assert write_counts() == before  # the idempotency key is released
    # the details go to the log, under the same id
    assert any(error_id in record.getMessage() and record.exc_info for record in caplog.records)
