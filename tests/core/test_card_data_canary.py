"""PAN canary (RELIABILITY §6 row 34, PCI DSS 3.3.1, ASVS 7.1.1): a Luhn-valid card number, plain,
spaced or dashed, sent anywhere we accept input is refused with `card_data_forbidden` (a page for people,
JSON for machines), and afterwards its digits are in no table and in no log record."""

import logging

import pytest
from rest_framework.test import APIClient

from core.models import ApiClientKey
from payments.models import Order, WebhookEvent
from tests.factories import ApiClientFactory, PaymentLinkLineFactory
from tests.payments.helpers import (
    ORDERS_URL,
    PAN_ANYWHERE,
    PAN_FIELDS,
    PAN_FORMATS,
    dump_database,
    event_payload,
    log_texts,
    make_order,
    new_key,
    order_payload_with_pan,
    post_event,
    post_order,
    session_of,
    start_sandbox_payment,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def raw_log_records(monkeypatch):
    """Take the masking filter off the configured handlers: it rewrites each record in place, so caplog
    would only ever see masked text. Without it, caplog sees what the code really logged."""
    from core.card_guard import CardNumberLogFilter

    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in logging.root.manager.loggerDict)]
    for handler in {h for lg in loggers if isinstance(lg, logging.Logger) for h in lg.handlers}:
        kept = [f for f in handler.filters if not isinstance(f, CardNumberLogFilter)]
        monkeypatch.setattr(handler, "filters", kept)


@pytest.fixture
def world(client, payee):
    """Some ordinary rows, so the dump has something in it, and the things the requests aim at."""
    api_client_obj = ApiClientFactory(name="canary-marketplace")
    _, key = ApiClientKey.objects.create_key(name="canary", client=api_client_obj)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    PaymentLinkLineFactory(payee=payee, link__slug="amp")
    order = make_order(payee, api_client=api_client_obj, reference="CANARY-1")
    payment = start_sandbox_payment(order)
    return {"api": api, "client": client, "payee": payee, "order": order, "session": session_of(payment)}


def assert_html_refusal(response, pan):
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert "enter card numbers here" in page
    assert "card details on the payment provider" in page
    assert not PAN_ANYWHERE.search(page)  # not echoed back


def assert_json_refusal(response):
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "card_data_forbidden"
    assert not PAN_ANYWHERE.search(response.content.decode())


def assert_nowhere(caplog):
    dump = dump_database()
    assert "CANARY-1" in dump  # the dump really covers the tables
    assert not PAN_ANYWHERE.search(dump), PAN_ANYWHERE.search(dump)
    for text in log_texts(caplog):
        assert not PAN_ANYWHERE.search(text), text
    assert any("card-like data" in record.getMessage() for record in caplog.records)  # the refusal is logged


@pytest.mark.parametrize("pan", PAN_FORMATS)
@pytest.mark.parametrize("where", PAN_FIELDS)
def test_api_fields(world, caplog, where, pan):
    caplog.set_level("DEBUG")
    orders_before = Order.objects.count()
    assert_json_refusal(post_order(world["api"], order_payload_with_pan(world["payee"], where, pan)))
    assert Order.objects.count() == orders_before
    assert_nowhere(caplog)


def test_api_pan_as_json_number(world, caplog):
    caplog.set_level("DEBUG")
    body = (
        b'{"currency":"EUR","buyer":{"email":"b@example.com"},"lines":[{"payee":%d,"description":"x",'
        b'"quantity":1,"unit_amount":4111111111111111}]}' % world["payee"].pk
    )
    response = world["api"].post(ORDERS_URL, data=body, content_type="application/json", HTTP_IDEMPOTENCY_KEY=new_key())
    assert_json_refusal(response)
    assert_nowhere(caplog)


@pytest.mark.parametrize("pan", PAN_FORMATS)
def test_api_idempotency_key_header_and_path(world, caplog, pan):
    caplog.set_level("DEBUG")
    # as a path segment
    assert_json_refusal(world["api"].get(f"/api/v1/payees/{pan.replace(' ', '%20')}"))
    # as a query parameter of a read
    assert_json_refusal(world["api"].get(f"{ORDERS_URL}/{world['order'].token}", {"expand": pan}))
    assert_nowhere(caplog)


@pytest.mark.parametrize("pan", PAN_FORMATS)
@pytest.mark.parametrize("field", ["email", "quantity", "country"])
def test_payment_link_form(world, caplog, field, pan):
    caplog.set_level("DEBUG")
    data = {"email": "buyer@example.com", "quantity": "1", "country": "CZ"}
    data[field] = pan if field != "email" else f"{pan.replace(' ', '')}@example.com"
    orders_before = Order.objects.count()
    assert_html_refusal(world["client"].post("/pay/amp/", data), pan)
    assert Order.objects.count() == orders_before
    assert_nowhere(caplog)


@pytest.mark.parametrize("pan", PAN_FORMATS)
def test_checkout_form(world, caplog, pan):
    caplog.set_level("DEBUG")
    order = world["order"]
    payments_before = order.payments.count()
    assert_html_refusal(world["client"].post(f"/checkout/{order.token}/", {"method": pan, "note": "x"}), pan)
    assert order.payments.count() == payments_before
    assert_nowhere(caplog)


@pytest.mark.parametrize("pan", PAN_FORMATS)
@pytest.mark.parametrize(
    "path", ["/checkout/{token}/", "/checkout/{token}/return/", "/pay/amp/", "/admin/payments/order/"]
)
def test_query_string(world, caplog, pan, path):
    caplog.set_level("DEBUG")
    response = world["client"].get(path.format(token=world["order"].token), {"q": pan})
    assert_html_refusal(response, pan)
    assert_nowhere(caplog)


def test_query_string_asking_for_json_gets_json(world, caplog):
    caplog.set_level("DEBUG")
    response = world["client"].get(
        f"/checkout/{world['order'].token}/", {"q": PAN_FORMATS[1]}, headers={"Accept": "application/json"}
    )
    assert_json_refusal(response)
    assert_nowhere(caplog)


@pytest.mark.parametrize("pan", PAN_FORMATS)
def test_signed_webhook_with_pan_in_metadata(world, caplog, pan):
    caplog.set_level("DEBUG")
    payload = event_payload(world["session"], "succeeded")
    payload["data"]["object"]["metadata"]["note"] = f"buyer said {pan}"
    response = post_event(world["client"], payload)  # correctly signed: authenticity is not the question
    assert_json_refusal(response)
    assert not WebhookEvent.objects.exists()
    assert_nowhere(caplog)


@pytest.mark.parametrize("pan", PAN_FORMATS)
def test_canary_checks_can_fail(world, caplog, pan):
    """The dump and log checks do find the PAN when it is there (so a leak would fail the tests above)."""
    caplog.set_level("DEBUG")
    Order.objects.filter(pk=world["order"].pk).update(description=f"x {pan} y")  # bypasses every guard
    assert PAN_ANYWHERE.search(dump_database())
    logging.getLogger("tollgate.test").debug("leaked %s", pan)
    assert any(PAN_ANYWHERE.search(text) for text in log_texts(caplog))
    assert not PAN_ANYWHERE.search("4111111111111112 and 4111 1111 1111 111")


@pytest.mark.parametrize("pan", ["4111111111111111", "4111-1111-1111-1111"])  # keys cannot hold spaces
def test_idempotency_key_header(world, caplog, pan):
    """The key is stored (IdempotencyRecord.key), so a card number in it must be refused like any field."""
    caplog.set_level("DEBUG")
    payload = order_payload_with_pan(world["payee"], "description", "ok")
    orders_before = Order.objects.count()
    assert_json_refusal(post_order(world["api"], payload, key=f"retry:{pan}"))
    assert Order.objects.count() == orders_before
    assert_nowhere(caplog)
