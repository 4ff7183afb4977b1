"""PostgreSQL: many requests with one Idempotency-Key at the same instant create exactly one order
(RELIABILITY §6 row 13; ASVS 11.1.6 no check-then-act races)."""

import pytest
from rest_framework.test import APIClient

from core.models import ApiClientKey, IdempotencyRecord
from payments.models import Order, OrderLine
from tests.payments.concurrency import run_concurrently
from tests.payments.helpers import ORDERS_URL, new_key, order_payload

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 20
ROUNDS = 5


def _fire(raw_key, payload, key):
    def work(index):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
        response = client.post(ORDERS_URL, payload, format="json", HTTP_IDEMPOTENCY_KEY=key)
        return response.status_code, response.json(), response.get("Idempotent-Replayed")

    return run_concurrently(THREADS, work)


def test_concurrent_posts_with_one_key_create_exactly_one_order(api_client_obj, payee):
    _, raw_key = ApiClientKey.objects.create_key(name="concurrency", client=api_client_obj)
    for round_no in range(ROUNDS):
        key, payload = new_key(), order_payload(payee, reference=f"CONC-{round_no}")
        results = _fire(raw_key, payload, key)

        statuses = sorted(status for status, _, _ in results)
        assert set(statuses) <= {201, 409}, statuses
        created = [(body, replayed) for status, body, replayed in results if status == 201]
        conflicts = [body for status, body, _ in results if status == 409]
        assert created, "no request succeeded"
        assert sum(1 for _, replayed in created if replayed is None) == 1  # exactly one original
        assert all(body == created[0][0] for body, _ in created)
        assert all(body["error"]["code"] == "idempotency_key_in_use" for body in conflicts)

        assert Order.objects.filter(reference=f"CONC-{round_no}").count() == 1
        order = Order.objects.get(reference=f"CONC-{round_no}")
        assert str(order.token) == created[0][0]["id"]
        assert OrderLine.objects.filter(order=order).count() == 1
        record = IdempotencyRecord.objects.get(key=key)
        assert record.status == IdempotencyRecord.Status.COMPLETED

        # afterwards every retry is the replay
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
        late = client.post(ORDERS_URL, payload, format="json", HTTP_IDEMPOTENCY_KEY=key)
        assert (late.status_code, late.json(), late["Idempotent-Replayed"]) == (201, created[0][0], "true")
    assert Order.objects.count() == ROUNDS


def test_concurrent_posts_with_distinct_keys_and_one_reference_create_one_order(api_client_obj, payee):
    """Without a shared key, the per-client reference is what stops duplicates: 1 created, the rest 409."""
    _, raw_key = ApiClientKey.objects.create_key(name="concurrency", client=api_client_obj)
    payload = order_payload(payee, reference="CONC-REF")

    def work(index):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
        response = client.post(ORDERS_URL, payload, format="json", HTTP_IDEMPOTENCY_KEY=new_key())
        return response.status_code, response.json()

    results = run_concurrently(THREADS, work)
    assert sorted(status for status, _ in results) == [201] + [409] * (THREADS - 1)
    assert {body["error"]["code"] for status, body in results if status == 409} == {"duplicate_reference"}
    assert Order.objects.filter(reference="CONC-REF").count() == 1
    # the failed requests released their keys
    assert IdempotencyRecord.objects.count() == 1
