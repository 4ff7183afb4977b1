"""The recurrences API: scoping (a client sees only recurrences its own orders set up), the error shape, the
Idempotency-Key, and `recurring` on the orders API."""

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from core.errors import DomainError
from core.models import ApiClientKey
from payments.services.checkout import start_payment
from recurring.models import RecurringCharge
from tests.factories import ApiClientFactory
from tests.payments.helpers import order_payload, post_order
from tests.recurring.helpers import CREATE_RECURRENCE, VOID_RECURRENCE, key, recurring_order, set_up_recurrence

pytestmark = pytest.mark.django_db


def client_for(api_client) -> APIClient:
    _, secret = ApiClientKey.objects.create_key(name="k", client=api_client)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {secret}")
    return client


@pytest.fixture
def others_recurrence(fake_gopay, client, capture, payee):
    return set_up_recurrence(fake_gopay, client, capture, payee, api_client=ApiClientFactory(name="other-shop"))


def test_another_clients_recurrence_is_not_found(fake_gopay, api, others_recurrence):
    url = f"/api/v1/recurrences/{others_recurrence.pk}"
    for response in (
        api.get(url),
        api.post(f"{url}/charges", {}, format="json", HTTP_IDEMPOTENCY_KEY=key()),
        api.post(f"{url}/stop", {}, format="json", HTTP_IDEMPOTENCY_KEY=key()),
    ):
        assert response.status_code == 404
        assert response.json() == {"error": {"code": "not_found", "message": "No such recurrence."}}
    assert not fake_gopay.posts(CREATE_RECURRENCE)
    assert not fake_gopay.posts(VOID_RECURRENCE)
    assert not RecurringCharge.objects.exists()

    owner = client_for(others_recurrence.first_order.api_client)
    assert owner.get(url).status_code == 200
    assert api.get("/api/v1/recurrences/999999").status_code == 404


def test_a_recurrence_from_an_order_made_outside_the_api_is_nobodys(fake_gopay, client, capture, payee, api):
    recurrence = set_up_recurrence(fake_gopay, client, capture, payee)  # e.g. from a payment link
    assert api.get(f"/api/v1/recurrences/{recurrence.pk}").status_code == 404


def test_writes_need_an_idempotency_key(fake_gopay, client, capture, payee, api, api_client_obj):
    recurrence = set_up_recurrence(fake_gopay, client, capture, payee, api_client=api_client_obj)
    for path in ("charges", "stop"):
        response = api.post(f"/api/v1/recurrences/{recurrence.pk}/{path}", {}, format="json")
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "idempotency_key_required"
    assert not fake_gopay.posts(CREATE_RECURRENCE)
    assert not fake_gopay.posts(VOID_RECURRENCE)


def test_a_recurrence_is_shown_with_its_charges(fake_gopay, client, capture, payee, api, api_client_obj):
    recurrence = set_up_recurrence(fake_gopay, client, capture, payee, api_client=api_client_obj)
    made = api.post(
        f"/api/v1/recurrences/{recurrence.pk}/charges", {"amount": 12300}, format="json", HTTP_IDEMPOTENCY_KEY=key()
    ).json()
    body = api.get(f"/api/v1/recurrences/{recurrence.pk}").json()
    assert body["object"] == "recurrence"
    assert body["id"] == recurrence.pk
    assert body["status"] == "active"
    assert body["provider"] == "gopay"
    assert body["cycle"] == "on_demand"
    assert body["valid_until"] == "2099-12-31"
    assert body["currency"] == "CZK"
    assert body["charges"] == [made | {"status": "processing"}]
    assert set(made) >= {"order", "payment", "attempts", "next_attempt_at", "needs_review", "last_error"}


def test_the_orders_api_takes_and_shows_recurring(fake_gopay, api, payee):
    response = post_order(api, order_payload(payee, currency="CZK", recurring=True))
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["recurring"] is True
    assert body["recurrence"] is None
    plain = post_order(api, order_payload(payee)).json()
    assert plain["recurring"] is False
    assert plain["recurrence"] is None


def test_a_recurring_order_needs_a_payment_method_that_can(api, payee, settings):
    settings.TOLLGATE_CHECKOUT_PROVIDERS = ["sandbox"]
    response = post_order(api, order_payload(payee, recurring=True))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "recurring_not_available"


def test_a_recurring_order_cannot_be_paid_with_a_method_without_recurrence(fake_gopay, payee):
    order = recurring_order(payee)
    with pytest.raises(DomainError) as refused:
        start_payment(order=order, provider_name="sandbox", now=timezone.now())
    assert refused.value.code == "recurring_not_available"
