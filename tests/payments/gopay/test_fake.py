"""The GoPay fake driven directly through the official SDK (only these tests use the SDK themselves): tokens and
scopes, creation and validation, buyer actions, refunds, pre-authorisation, recurrence, faults, token expiry,
and the answers' shapes against the reference samples."""

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import gopay
import time_machine
from gopay.http import AccessToken
from gopay.services import AbstractCache

from tests.payments.gopay.conftest import CLIENT_ID, CLIENT_SECRET, GATEWAY_URL, GOID
from tests.payments.gopay.fake import notify

# Copied from ../shared/holdout/gopay_samples (shapes after GoPay's SDKs; see NOTES.md there).
SAMPLES = Path(__file__).resolve().parents[2] / "fixtures" / "gopay"
REFUND = r"/payments/payment/\d+/refund"
STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d{4}")


def sdk(scope: str = "payment-all", services: dict | None = None, **config):
    """Build the SDK inside the fake (it fetches its token at construction)."""
    base = {
        "goid": GOID,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "gateway_url": GATEWAY_URL,
        "timeout": 5,
        "scope": scope,
    }
    return gopay.payments({**base, **config}, services)


def payment_request(amount: int = 150000, **extra) -> dict:
    return {
        "payer": {
            "allowed_payment_instruments": ["PAYMENT_CARD", "BANK_ACCOUNT"],
            "default_payment_instrument": "PAYMENT_CARD",
            "allowed_swifts": ["GIBACZPX", "FIOBCZPP"],
            "default_swift": "FIOBCZPP",
            "contact": {"first_name": "Jan", "last_name": "Novák", "email": "jan.novak@example.cz"},
        },
        "amount": amount,
        "currency": "CZK",
        "order_number": "TG-2026-000044",
        "order_description": "Vstupenky",
        "items": [{"type": "ITEM", "name": "Vstupenka", "amount": amount, "count": 2, "vat_rate": 21}],
        "callback": {
            "return_url": "https://tollgate.example/pay/gopay/return",
            "notification_url": "https://tollgate.example/webhooks/gopay",
        },
        "additional_params": [{"name": "order_id", "value": "44"}],
        "lang": "CS",
        **extra,
    }


def create(fake, **extra) -> int:
    response = sdk("payment-create").create_payment(payment_request(**extra))
    assert response.status_code == 200, response.json
    return response.json["id"]


def paid(fake, **extra) -> int:
    payment_id = create(fake, **extra)
    fake.pay(payment_id)
    return payment_id


class _Any:
    def __eq__(self, other):
        return True


ANY_MESSAGE = _Any()


def error_names(response) -> list[str]:
    return [e["error_name"] for e in response.json["errors"]]


# --- tokens and scopes --------------------------------------------------------------------------------------


def test_a_token_per_scope_and_a_wrong_secret_is_refused(fake_gopay):
    sdk("payment-create")
    sdk("payment-all")
    assert fake_gopay.token_requests == {"payment-create": 1, "payment-all": 1}
    assert sorted(t.scope for t in fake_gopay.tokens.values()) == ["payment-all", "payment-create"]

    wrong = sdk(client_secret="nope")
    assert fake_gopay.calls("POST", r"/oauth2/token")[-1].status == 401
    response = wrong.get_status(3299531053)  # the SDK sends "Bearer None"
    assert response.status_code == 401
    assert error_names(response) == ["AUTH_WRONG_TOKEN"]
    assert len(fake_gopay.tokens) == 2


def test_create_with_payment_create_then_status_with_payment_all(fake_gopay):
    response = sdk("payment-create").create_payment(payment_request())
    assert response.status_code == 200
    body = response.json
    assert body["id"] == 3299531053
    assert body["state"] == "CREATED"
    assert (body["amount"], body["currency"], body["order_number"]) == (150000, "CZK", "TG-2026-000044")
    assert body["target"] == {"type": "ACCOUNT", "goid": GOID}
    assert re.fullmatch(r"https://gw\.sandbox\.gopay\.com/gw/v3/[0-9a-f]{32}", body["gw_url"])
    assert body["payer"]["allowed_payment_instruments"] == ["PAYMENT_CARD", "BANK_ACCOUNT"]

    status = sdk().get_status(body["id"])
    assert status.status_code == 200
    assert status.json["state"] == "CREATED"
    assert "payment_instrument" not in status.json
    assert status.json["payer"] == {"contact": payment_request()["payer"]["contact"]}
    assert fake_gopay.scopes() == ["payment-create", "payment-all"]
    assert fake_gopay.objects[body["id"]]["_items"] == payment_request()["items"]
    assert fake_gopay.spec_errors == []


def test_a_payment_create_token_is_refused_for_anything_but_creating(fake_gopay):
    payments = sdk("payment-create")
    payment_id = payments.create_payment(payment_request()).json["id"]
    response = payments.get_status(payment_id)
    assert response.status_code == 403
    assert error_names(response) == ["AUTH_WRONG_SCOPE"]
    assert fake_gopay.calls("GET")[-1].scope == "payment-create"


def test_unknown_payment_is_404(fake_gopay):
    response = sdk().get_status(1234567890)
    assert response.status_code == 404
    assert response.json["errors"][0]["scope"] == "G"
    assert error_names(response) == ["PAYMENT_NOT_FOUND"]


def test_token_expires_after_30_minutes(fake_gopay):
    class StickyCache(AbstractCache):
        """A client that never notices its token expired."""

        def __init__(self):
            self.tokens = {}

        def get_token(self, key):
            token = self.tokens.get(key)
            return token and AccessToken(token.token, datetime.now(), token.scope)  # noqa: DTZ005 (the SDK's naive time)

        def set_token(self, key, token):
            self.tokens[key] = token

    with time_machine.travel(datetime(2026, 8, 21, 12, 0, tzinfo=UTC), tick=False) as traveller:
        payment_id = create(fake_gopay)
        payments, sticky = sdk(), sdk(services={"cache": StickyCache()})
        assert payments.get_status(payment_id).status_code == 200
        assert sticky.get_status(payment_id).status_code == 200
        traveller.shift(timedelta(minutes=29))
        assert sticky.get_status(payment_id).status_code == 200
        traveller.shift(timedelta(minutes=2))
        stale = sticky.get_status(payment_id)
        assert stale.status_code == 401
        assert error_names(stale) == ["AUTH_WRONG_TOKEN"]
        assert payments.get_status(payment_id).status_code == 200  # the SDK fetched a new token
    assert fake_gopay.token_requests["payment-all"] == 3


# --- creation -----------------------------------------------------------------------------------------------


def test_creation_is_validated_like_gopay(fake_gopay):
    request = payment_request()
    request["items"][0]["amount"] = 75000  # a unit price where the line total belongs
    del request["payer"]["contact"]["email"]
    del request["callback"]["notification_url"]
    request["currency"] = "CHF"
    response = sdk("payment-create").create_payment(request)
    assert response.status_code == 409
    fields = {e["field"] for e in response.json["errors"]}
    assert fields == {"currency", "callback.notification_url", "payer.contact.email", "items"}
    assert {e["scope"] for e in response.json["errors"]} == {"F"}
    assert fake_gopay.objects == {}

    response = sdk("payment-create").create_payment(payment_request(amount=0))
    assert response.status_code == 409
    assert "amount" in {e["field"] for e in response.json["errors"]}


def test_unknown_keys_are_spec_errors(fake_gopay):
    create(fake_gopay)
    assert fake_gopay.spec_errors == []
    create(fake_gopay, metadata={"order": 44})
    assert fake_gopay.spec_errors == ["/payments/payment: unknown key 'metadata'"]
    fake_gopay.spec_errors.clear()


# --- the buyer pays; refunds --------------------------------------------------------------------------------


def test_pay_then_status_paid(fake_gopay):
    payment_id = paid(fake_gopay)
    body = sdk().get_status(payment_id).json
    assert body["state"] == "PAID"
    assert body["payment_instrument"] == "PAYMENT_CARD"
    assert body["payer"]["payment_card"]["card_number"] == "444444******4448"


def test_partial_refund_then_the_rest(fake_gopay):
    payment_id = paid(fake_gopay)
    payments = sdk()
    first = payments.refund_payment(payment_id, 50000)
    assert (first.status_code, first.json) == (200, {"id": payment_id, "result": "FINISHED"})
    assert fake_gopay.posts(REFUND)[-1].body == {"amount": "50000"}
    assert payments.get_status(payment_id).json["state"] == "PARTIALLY_REFUNDED"
    assert payments.refund_payment(payment_id, 100000).json["result"] == "FINISHED"
    assert payments.get_status(payment_id).json["state"] == "REFUNDED"

    history = payments.get_history_of_refunds(payment_id).json
    assert [r["amount"] for r in history] == [50000, 100000]
    assert {r["state"] for r in history} == {"SUCCESS"}
    assert all(STAMP.fullmatch(r["date_requested"]) and STAMP.fullmatch(r["date_last_change"]) for r in history)
    assert fake_gopay.refunded(payment_id) == 150000
    assert error_names(payments.refund_payment(payment_id, 1)) == ["PAYMENT_WRONG_STATE"]


def test_refund_exceeding_the_rest_is_refused(fake_gopay):
    payment_id = paid(fake_gopay)
    fake_gopay.portal_refund(payment_id, 100000)
    response = sdk().refund_payment(payment_id, 60000)
    assert response.status_code == 409
    assert response.json["errors"][0] | {"message": ""} == {
        "scope": "F",
        "field": "amount",
        "error_code": 332,
        "error_name": "PAYMENT_REFUND_AMOUNT_EXCEEDED",
        "message": "",
    }
    assert fake_gopay.refunded(payment_id) == 100000
    assert len(fake_gopay.posts(REFUND)) == 1  # the portal's refund is not a request


def test_refund_not_supported(fake_gopay):
    payment_id = paid(fake_gopay)
    fake_gopay.mark_refund_not_supported(payment_id)
    response = sdk().refund_payment(payment_id, 100)
    assert response.status_code == 409
    assert response.json["errors"] == [
        {"scope": "G", "error_code": 330, "error_name": "PAYMENT_REFUND_NOT_SUPPORTED", "message": ANY_MESSAGE}
    ]


def test_accepted_refund_is_requested_until_gopay_finishes_it(fake_gopay):
    payment_id = paid(fake_gopay)
    fake_gopay.refund_result = "ACCEPTED"
    payments = sdk()
    assert payments.refund_payment(payment_id, 150000).json == {"id": payment_id, "result": "ACCEPTED"}
    assert payments.get_history_of_refunds(payment_id).json[0]["state"] == "REQUESTED"
    assert payments.get_status(payment_id).json["state"] == "PAID"
    assert error_names(payments.refund_payment(payment_id, 1)) == ["PAYMENT_REFUND_AMOUNT_EXCEEDED"]
    fake_gopay.finish_refunds(payment_id, ok=False)
    assert fake_gopay.refunded(payment_id) == 0
    assert payments.refund_payment(payment_id, 150000).json["result"] == "ACCEPTED"
    assert fake_gopay.finish_refunds(payment_id)["state"] == "REFUNDED"

    fake_gopay.refund_result = "FAILED"
    other = paid(fake_gopay)
    assert payments.refund_payment(other, 100).json == {"id": other, "result": "FAILED"}
    assert fake_gopay.refund_history(other) == []


# --- faults -------------------------------------------------------------------------------------------------


def test_lost_answer_refund_is_applied(fake_gopay):
    payment_id = paid(fake_gopay)
    payments = sdk()
    fake_gopay.fail(REFUND, "lost")
    response = payments.refund_payment(payment_id, 50000)
    assert response.status_code == 0
    assert [r["amount"] for r in payments.get_history_of_refunds(payment_id).json] == [50000]
    assert fake_gopay.posts(REFUND)[-1].status == 200


def test_status0_applies_nothing(fake_gopay):
    payment_id = paid(fake_gopay)
    payments = sdk()
    fake_gopay.fail(REFUND, "status0")
    assert payments.refund_payment(payment_id, 50000).status_code == 0
    assert fake_gopay.refund_history(payment_id) == []
    assert fake_gopay.payment(payment_id)["state"] == "PAID"
    assert fake_gopay.posts(REFUND)[-1].status == 0
    assert payments.refund_payment(payment_id, 50000).status_code == 200  # once only


def test_500_and_a_revoked_token(fake_gopay):
    payment_id = paid(fake_gopay)
    payments = sdk()
    fake_gopay.fail(r"/payments/payment/\d+", "500")
    response = payments.get_status(payment_id)
    assert (response.status_code, error_names(response)) == (500, ["SYSTEM_ERROR"])

    fake_gopay.fail(r"/payments/payment/\d+", "401")
    assert payments.get_status(payment_id).status_code == 401
    assert payments.get_status(payment_id).status_code == 401  # the SDK keeps its (now revoked) token
    assert sdk().get_status(payment_id).status_code == 200

    fake_gopay.fail(r"/oauth2/token", "500", times=2)  # at construction, and again before the call
    assert sdk().get_status(payment_id).status_code == 401
    fake_gopay.fail(r"/oauth2/token", "status0")
    assert sdk().get_status(payment_id).status_code == 200  # the SDK asks again before the call


# --- pre-authorisation --------------------------------------------------------------------------------------


def test_preauthorization_partial_capture(fake_gopay):
    response = sdk("payment-create").create_payment(payment_request(preauthorization=True))
    assert response.json["preauthorization"] == {"requested": True, "state": "REQUESTED"}
    payment_id = response.json["id"]
    fake_gopay.pay(payment_id)
    payments = sdk()
    body = payments.get_status(payment_id).json
    assert (body["state"], body["preauthorization"]["state"]) == ("AUTHORIZED", "AUTHORIZED")

    too_much = payments.capture_authorization_partial(payment_id, {"amount": 200000, "items": []})
    assert too_much.status_code == 409
    items = [{"type": "ITEM", "name": "Vstupenka", "amount": 100000, "count": 1}]
    captured = payments.capture_authorization_partial(payment_id, {"amount": 100000, "items": items})
    assert captured.json == {"id": payment_id, "result": "FINISHED"}
    body = payments.get_status(payment_id).json
    assert (body["state"], body["amount"], body["preauthorization"]["state"]) == ("PAID", 100000, "CAPTURED")
    assert fake_gopay.objects[payment_id]["_authorized_amount"] == 150000
    assert error_names(payments.capture_authorization(payment_id)) == ["PAYMENT_CAPTURE_DONE"]
    assert error_names(payments.refund_payment(payment_id, 100001)) == ["PAYMENT_REFUND_AMOUNT_EXCEEDED"]


def test_full_capture_void_and_expiry(fake_gopay):
    full, void, lapsed = (create(fake_gopay, preauthorization=True) for _ in range(3))
    for payment_id in (full, void, lapsed):
        fake_gopay.pay(payment_id)
    payments = sdk()
    assert payments.capture_authorization(full).json == {"id": full, "result": "FINISHED"}
    assert fake_gopay.payment(full)["amount"] == 150000
    assert payments.void_authorization(void).json == {"id": void, "result": "FINISHED"}
    body = payments.get_status(void).json
    assert (body["state"], body["preauthorization"]["state"]) == ("CANCELED", "CANCELED")
    assert error_names(payments.capture_authorization(void)) == ["PAYMENT_AUTH_VOID"]
    fake_gopay.expire_authorization(lapsed)
    assert error_names(payments.void_authorization(lapsed)) == ["PAYMENT_AUTH_VOID"]
    assert error_names(payments.capture_authorization(paid(fake_gopay))) == ["PAYMENT_WRONG_STATE"]


# --- recurrence ---------------------------------------------------------------------------------------------


def next_charge(amount: int = 29900) -> dict:
    return {
        "amount": amount,
        "currency": "CZK",
        "order_number": "TG-SUB-000007-2",
        "order_description": "Členství – měsíc 2",
        "items": [{"type": "ITEM", "name": "Členství", "amount": amount, "count": 1, "vat_rate": 21}],
    }


def test_on_demand_recurrence(fake_gopay):
    recurrence = {"recurrence_cycle": "ON_DEMAND", "recurrence_date_to": "2027-08-31"}
    created = sdk("payment-create").create_payment(payment_request(29900, recurrence=recurrence)).json
    assert created["recurrence"] == {**recurrence, "recurrence_state": "REQUESTED"}
    parent = created["id"]
    payments = sdk()
    assert error_names(payments.create_recurrence(parent, next_charge())) == ["PAYMENT_WRONG_STATE"]
    fake_gopay.pay(parent)
    assert payments.get_status(parent).json["recurrence"]["recurrence_state"] == "STARTED"

    child = payments.create_recurrence(parent, next_charge())
    assert child.status_code == 200
    assert (child.json["parent_id"], child.json["state"], child.json["amount"]) == (parent, "CREATED", 29900)
    assert child.json["id"] != parent
    assert "gw_url" not in child.json
    settled = fake_gopay.settle_recurrence(child.json["id"])
    assert (settled["state"], settled["payment_instrument"]) == ("PAID", "PAYMENT_CARD")
    assert payments.get_status(child.json["id"]).json["parent_id"] == parent

    assert payments.void_recurrence(parent).json == {"id": parent, "result": "FINISHED"}
    assert payments.get_status(parent).json["recurrence"]["recurrence_state"] == "STOPPED"
    stopped = payments.create_recurrence(parent, next_charge())
    assert stopped.status_code == 409
    assert stopped.json["errors"][0]["error_code"] == 342
    assert error_names(stopped) == ["PAYMENT_RECURRENCE_STOPPED"]
    assert fake_gopay.scopes()[0] == "payment-create"
    assert set(fake_gopay.scopes()[1:]) == {"payment-all"}


def test_recurrence_outcomes(fake_gopay):
    recurrence = {"recurrence_cycle": "ON_DEMAND", "recurrence_date_to": "2027-08-31"}
    parent = paid(fake_gopay, recurrence=recurrence)
    payments = sdk()
    fake_gopay.recurrence_charge_outcome = "PAID_AT_ONCE"
    at_once = payments.create_recurrence(parent, next_charge(150000)).json
    assert at_once["state"] == "CREATED"
    assert fake_gopay.payment(at_once["id"])["state"] == "PAID"
    fake_gopay.recurrence_charge_outcome = "CANCELED"
    declined = payments.create_recurrence(parent, next_charge(150000)).json["id"]
    assert fake_gopay.settle_recurrence(declined)["state"] == "CANCELED"
    mismatch = payments.create_recurrence(parent, {**next_charge(150000), "amount": 1})
    assert {e["field"] for e in mismatch.json["errors"]} == {"items"}
    fake_gopay.stop_recurrence(parent)
    assert error_names(payments.void_recurrence(parent)) == ["PAYMENT_RECURRENCE_STOPPED"]


# --- shapes against the reference samples -------------------------------------------------------------------


def test_answers_have_the_samples_shapes(fake_gopay):
    def keys(doc, *, nested=("payer", "recurrence")) -> dict:
        return {k: sorted(doc[k]) if k in nested else None for k in doc}

    def sample(name):
        return json.loads((SAMPLES / name).read_text())

    payments = sdk()
    created = sdk("payment-create").create_payment(payment_request())
    assert keys(created.json) == keys(sample("create_payment_response.json"))
    assert keys(payments.get_status(created.json["id"]).json) == keys(sample("payment_status_CREATED.json"))
    fake_gopay.pay(created.json["id"])
    assert keys(payments.get_status(created.json["id"]).json) == keys(sample("payment_status_PAID.json"))
    payments.refund_payment(created.json["id"], 1000)
    history = payments.get_history_of_refunds(created.json["id"]).json
    assert keys(history[0]) == keys(sample("refund_history_response.json")[0])

    bank = create(fake_gopay)
    fake_gopay.pay(bank, instrument="BANK_ACCOUNT")
    assert keys(payments.get_status(bank).json) == keys(sample("payment_status_PAID_bank_account.json"))

    recurrence = {"recurrence_cycle": "ON_DEMAND", "recurrence_date_to": "2027-08-31"}
    request = payment_request(29900, recurrence=recurrence)
    request["payer"]["allowed_payment_instruments"] = ["PAYMENT_CARD"]
    for key in ("allowed_swifts", "default_swift"):
        request["payer"].pop(key)
    parent = sdk("payment-create").create_payment(request).json
    sample_parent = sample("recurrence_create_payment_response.json")
    assert set(parent) == set(sample_parent)
    fake_gopay.pay(parent["id"])
    status = payments.get_status(parent["id"]).json
    assert keys(status) == keys(sample("recurrence_parent_status_PAID_STARTED.json"))
    child = payments.create_recurrence(parent["id"], next_charge())
    assert keys(child.json) == keys(sample("recurrence_next_payment_response.json"))
    fake_gopay.settle_recurrence(child.json["id"])
    assert keys(payments.get_status(child.json["id"]).json) == keys(sample("recurrence_child_status_PAID.json"))
    assert set(payments.void_recurrence(parent["id"]).json) == set(sample("recurrence_void_response.json"))


def test_notify_is_a_bare_get_with_the_id():
    class Client:
        def get(self, path, data):
            return path, data

    assert notify(Client(), 3299531053) == ("/webhooks/gopay/", {"id": 3299531053})
    assert notify(Client(), 3, parent_id=1) == ("/webhooks/gopay/", {"id": 3, "parent_id": 1})
