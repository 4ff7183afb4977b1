"""VAT ids: format and check digits with python-stdnum; VIES only when enabled, with a fallback; the
orders API refuses an invalid buyer VAT id and the payees API and admin refuse an invalid payee VAT id."""

import pytest
import requests
import responses

from commissions.models import Payee
from invoicing.vat_ids import NOT_CONFIRMED, check_vat_id, is_valid_vat_id
from payments.models import Order
from tests.payments.helpers import new_key, order_payload, post_order

VALID = ["CZ25596641", "CZ 255 96 641", "DE136695976", "SK2020273893"]
WRONG_CHECK_DIGIT = ["CZ25596642", "DE136695977", "SK2020273894"]
GARBAGE = ["hello", "CZ", "XX123456789", "12345678", "CZ12345678901234"]


@pytest.mark.parametrize("value", VALID)
def test_valid_numbers(value):
    assert is_valid_vat_id(value)
    result = check_vat_id(value)
    assert result.valid
    assert result.number == value.replace(" ", "")


@pytest.mark.parametrize("value", WRONG_CHECK_DIGIT + GARBAGE + [""])
def test_invalid_numbers(value):
    assert not is_valid_vat_id(value)
    assert not check_vat_id(value).valid


VIES = "https://ec.europa.eu/taxation_customs/vies/rest-api/ms/CZ/vat/25596641"


def vies_answer(user_error: str, is_valid: bool) -> dict:
    """The shape of VIES's REST answer (GET /ms/{country}/vat/{number})."""
    return {
        "isValid": is_valid,
        "requestDate": "2026-11-24T09:00:00.000Z",
        "userError": user_error,
        "name": "---",
        "address": "---",
        "requestIdentifier": "",
        "originalVatNumber": "25596641",
        "vatNumber": "25596641",
    }


@responses.activate
def test_without_vies_a_format_valid_number_is_valid_but_not_confirmed(settings):
    settings.TOLLGATE_VIES_ENABLED = False
    result = check_vat_id("CZ25596641")
    assert len(responses.calls) == 0
    assert (result.valid, result.vies_confirmed, result.note) == (True, False, NOT_CONFIRMED)


@pytest.mark.parametrize(
    "failure",
    [
        requests.ConnectionError("no route to host"),
        requests.Timeout("read timed out"),
        {"status": 500, "body": "<html>Internal error</html>"},
        {"status": 200, "body": "not json"},
        {"status": 200, "json": vies_answer("MS_UNAVAILABLE", False)},
        {"status": 200, "json": vies_answer("TIMEOUT", False)},
        {"status": 200, "json": vies_answer("MS_MAX_CONCURRENT_REQ", False)},
        {"status": 200, "json": ["unexpected"]},
    ],
    ids=["connection", "timeout", "http-500", "not-json", "ms-unavailable", "vies-timeout", "busy", "odd-shape"],
)
@responses.activate
def test_vies_that_cannot_answer_falls_back_to_not_confirmed(settings, failure):
    settings.TOLLGATE_VIES_ENABLED = True
    if isinstance(failure, Exception):
        responses.get(VIES, body=failure)
    else:
        responses.get(VIES, **failure)
    result = check_vat_id("CZ25596641")
    assert len(responses.calls) == 1
    assert (result.valid, result.vies_confirmed, result.note) == (True, False, NOT_CONFIRMED)


@pytest.mark.parametrize(("user_error", "is_valid"), [("VALID", True), ("INVALID", False)])
@responses.activate
def test_a_definite_vies_answer_is_used_when_enabled(settings, user_error, is_valid):
    settings.TOLLGATE_VIES_ENABLED = True
    responses.get(VIES, json=vies_answer(user_error, is_valid))
    result = check_vat_id("CZ 255 96 641")
    assert (result.valid, result.vies_confirmed) == (is_valid, is_valid)
    assert responses.calls[0].request.url == VIES  # compact number, country apart


@responses.activate
def test_vies_is_not_asked_about_a_malformed_number(settings):
    settings.TOLLGATE_VIES_ENABLED = True
    assert not check_vat_id("CZ25596642").valid
    assert len(responses.calls) == 0


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["CZ25596642", "garbage"])
def test_the_orders_api_refuses_an_invalid_buyer_vat_id(api, payee, value):
    payload = order_payload(payee)
    payload["buyer"]["vat_id"] = value
    response = post_order(api, payload)
    assert response.status_code == 400, response.content
    body = response.json()["error"]
    assert body["code"] == "invalid_vat_id"
    assert "buyer.vat_id" in body["fields"]
    assert value not in response.content.decode()
    assert not Order.objects.exists()


@pytest.mark.django_db
def test_the_orders_api_accepts_a_valid_buyer_vat_id(api, payee):
    payload = order_payload(payee)
    payload["buyer"]["vat_id"] = "DE136695976"
    response = post_order(api, payload)
    assert response.status_code == 201, response.content


@pytest.mark.django_db
def test_the_payees_api_refuses_an_invalid_vat_id(api):
    payload = {"kind": "seller", "legal_name": "X", "country": "CZ", "email": "x@example.com", "vat_id": "CZ1"}
    response = api.post("/api/v1/payees", payload, format="json", HTTP_IDEMPOTENCY_KEY=new_key())
    assert response.status_code == 400, response.content
    assert "vat_id" in response.json()["error"]["fields"]
    assert not Payee.objects.filter(legal_name="X").exists()


@pytest.mark.django_db
def test_the_payees_api_accepts_a_valid_vat_id_and_oss(api):
    payload = {
        "kind": "seller",
        "legal_name": "X",
        "country": "CZ",
        "email": "x@example.com",
        "vat_id": "CZ25596641",
        "uses_oss": True,
    }
    response = api.post("/api/v1/payees", payload, format="json", HTTP_IDEMPOTENCY_KEY=new_key())
    assert response.status_code == 201, response.content
    assert response.json()["uses_oss"] is True
    assert Payee.objects.get(legal_name="X").uses_oss


@pytest.mark.django_db
def test_the_payee_admin_refuses_an_invalid_vat_id(admin_client, payee):
    response = admin_client.post(
        f"/admin/commissions/payee/{payee.pk}/change/",
        {
            "kind": payee.kind,
            "legal_name": payee.legal_name,
            "display_name": "",
            "country": "CZ",
            "email": payee.email,
            "vat_id": "CZ25596642",
            "status": payee.status,
            "dispute_loss_bearer": payee.dispute_loss_bearer,
            "dispute_fee_bearer": payee.dispute_fee_bearer,
        },
    )
    assert response.status_code == 200
    assert "Not a valid EU VAT id" in response.content.decode()
    payee.refresh_from_db()
    assert payee.vat_id == ""
