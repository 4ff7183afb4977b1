"""POST /api/v1/refunds and GET /api/v1/refunds/<id>: policy fee in the response, error codes, idempotent
replay, and only the client's own orders."""

from datetime import timedelta

import pytest

from refunds.models import Refund
from tests.factories import ApiClientFactory
from tests.payments.helpers import new_key
from tests.refunds.policy_helpers import make_policy, paid_order

pytestmark = pytest.mark.django_db

URL = "/api/v1/refunds"


def post(api, body, key=None):
    return api.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY=key or new_key())


def test_create_shows_the_fee_and_status(api, api_client_obj, payee, django_capture_on_commit_callbacks):
    make_policy()
    order = paid_order(payee, api_client=api_client_obj, event_in=timedelta(days=10), quantity=2)
    with django_capture_on_commit_callbacks(execute=True):
        response = post(api, {"order": str(order.token), "lines": [{"position": 1, "quantity": 1}]})
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["amount"], body["fee"], body["status"], body["method"]) == (9000, 1000, "approved", "original")
    assert body["lines"] == [{"position": 1, "amount": 10000, "fee": 1000}]
    detail = api.get(f"{URL}/{body['id']}")
    assert detail.status_code == 200
    assert detail.json()["status"] == "succeeded"


def test_idempotent_replay_and_reuse(api, api_client_obj, payee):
    order = paid_order(payee, api_client=api_client_obj)
    key = new_key()
    first = post(api, {"order": str(order.token), "amount": 1000}, key=key)
    again = post(api, {"order": str(order.token), "amount": 1000}, key=key)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert Refund.objects.count() == 1
    other = post(api, {"order": str(order.token), "amount": 2000}, key=key)
    assert (other.status_code, other.json()["error"]["code"]) == (422, "idempotency_key_reused")
    missing = api.post(URL, {"order": str(order.token), "amount": 1}, format="json")
    assert (missing.status_code, missing.json()["error"]["code"]) == (400, "idempotency_key_required")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"amount": 20000}, 409, "refund_exceeds_captured"),
        ({"amount": 0}, 400, "validation_error"),
        ({"amount": 100, "lines": [{"position": 1, "quantity": 1}]}, 400, "validation_error"),
        ({"lines": [{"position": 9, "quantity": 1}]}, 400, "unknown_order_line"),
        ({"method": "transfer"}, 400, "validation_error"),
    ],
)
def test_errors(api, api_client_obj, payee, body, status, code):
    order = paid_order(payee, api_client=api_client_obj)
    response = post(api, {"order": str(order.token), **body})
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)


def test_outside_policy_then_override(api, api_client_obj, payee):
    make_policy()
    order = paid_order(payee, api_client=api_client_obj, event_in=timedelta(days=1))
    refused = post(api, {"order": str(order.token)})
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "refund_outside_policy")
    forced = post(api, {"order": str(order.token), "override_reason": "Organizer agreed"})
    assert forced.status_code == 201
    assert (forced.json()["amount"], forced.json()["fee"]) == (10000, 0)


def test_unpaid_order_is_refused(api, api_client_obj, payee):
    from tests.payments.helpers import make_order

    order = make_order(payee, api_client=api_client_obj)
    response = post(api, {"order": str(order.token)})
    assert (response.status_code, response.json()["error"]["code"]) == (409, "order_not_refundable")


def test_other_clients_orders_and_refunds_are_not_found(api, payee):
    other = ApiClientFactory()
    order = paid_order(payee, api_client=other)
    assert post(api, {"order": str(order.token)}).status_code == 404
    from django.utils import timezone

    from refunds.services import request_policy_refund

    refund = request_policy_refund(order=order, amount_minor=100, now=timezone.now())
    assert api.get(f"{URL}/{refund.pk}").status_code == 404


def test_above_threshold_is_requested(api, api_client_obj, payee, settings):
    settings.TOLLGATE_REFUND_APPROVAL_THRESHOLD = {"default": 5000}
    order = paid_order(payee, api_client=api_client_obj)
    response = post(api, {"order": str(order.token)})
    assert (response.status_code, response.json()["status"]) == (201, "requested")
