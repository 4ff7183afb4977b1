"""Idempotency-Key on API writes (DESIGN §11, draft-ietf-httpapi-idempotency-key-header): replay, reuse,
missing key, per-client keys, release on failure, in-flight conflicts, stale takeover, and purging."""

import json
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone
from rest_framework.test import APIClient, APIRequestFactory

from core.idempotency import purge_idempotency_records, request_fingerprint
from core.models import ApiClientKey, IdempotencyRecord
from payments.models import Order, OrderLine
from tests.factories import ApiClientFactory
from tests.payments.helpers import ORDERS_URL, line, new_key, order_payload, post_order, write_counts

pytestmark = pytest.mark.django_db


@pytest.fixture
def other_api(db):
    client_obj = ApiClientFactory(name="other-marketplace")
    _, key = ApiClientKey.objects.create_key(name="other", client=client_obj)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    client.client_obj = client_obj
    return client


def fingerprint_of(payload, path=ORDERS_URL, method="post"):
    request = getattr(APIRequestFactory(), method)(path, payload, format="json")
    return request_fingerprint(request)


def in_progress_record(client_obj, key, fingerprint, *, locked_at):
    return IdempotencyRecord.objects.create(
        client=client_obj,
        key=key,
        fingerprint=fingerprint,
        method="POST",
        path=ORDERS_URL,
        locked_at=locked_at,
        created_at=locked_at,
    )


def test_same_key_same_body_ten_times_replays_the_first_response(api, payee):
    key, payload = new_key(), order_payload(payee, reference="R-1")
    responses = [post_order(api, payload, key=key) for _ in range(10)]

    first = responses[0]
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first
    for replay in responses[1:]:
        assert replay.status_code == 201
        assert replay["Idempotent-Replayed"] == "true"
        assert replay.json() == first.json()
    assert Order.objects.count() == 1
    assert OrderLine.objects.count() == 1
    record = IdempotencyRecord.objects.get()
    assert record.status == IdempotencyRecord.Status.COMPLETED
    assert record.response_status == 201
    assert record.response_body["id"] == first.json()["id"]


def test_replay_matches_even_with_other_key_order_and_spacing(api, payee):
    key, payload = new_key(), order_payload(payee)
    first = post_order(api, payload, key=key)
    reordered = json.dumps(dict(reversed(list(payload.items()))), indent=4).encode()
    replay = api.post(ORDERS_URL, data=reordered, content_type="application/json", HTTP_IDEMPOTENCY_KEY=key)
    assert replay.status_code == 201
    assert replay["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()
    assert Order.objects.count() == 1


def test_same_key_other_body_is_422_and_changes_nothing(api, payee):
    key = new_key()
    first = post_order(api, order_payload(payee), key=key)
    assert first.status_code == 201
    before = write_counts()
    response = post_order(api, order_payload(payee, lines=[line(payee, quantity=3)]), key=key)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert write_counts() == before
    # the stored response still replays for the original body
    assert post_order(api, order_payload(payee), key=key).json() == first.json()


def test_same_key_on_another_endpoint_is_422(api, payee):
    key = new_key()
    token = post_order(api, order_payload(payee), key=key).json()["id"]
    response = api.post(f"{ORDERS_URL}/{token}/cancel", HTTP_IDEMPOTENCY_KEY=key)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert Order.objects.get().status == "open"


@pytest.mark.parametrize("key", [None, ""])
def test_missing_key_is_400_and_writes_nothing(api, payee, key):
    before = write_counts()
    headers = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": key}
    response = api.post(ORDERS_URL, order_payload(payee), format="json", **headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "idempotency_key_required"
    assert write_counts() == before


def test_missing_key_on_cancel_is_400(api, payee):
    token = post_order(api, order_payload(payee)).json()["id"]
    response = api.post(f"{ORDERS_URL}/{token}/cancel")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "idempotency_key_required"
    assert Order.objects.get().status == "open"


@pytest.mark.parametrize("key", ["x" * 256, "has space", "tab\tkey", "ключ"])
def test_malformed_key_is_400(api, payee, key):
    before = write_counts()
    response = post_order(api, order_payload(payee), key=key)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "idempotency_key_invalid"
    assert write_counts() == before


def test_keys_are_per_api_client(api, other_api, payee):
    key = new_key()
    mine = post_order(api, order_payload(payee), key=key)
    theirs = post_order(other_api, order_payload(payee), key=key)
    assert mine.status_code == theirs.status_code == 201
    assert "Idempotent-Replayed" not in theirs
    assert mine.json()["id"] != theirs.json()["id"]
    assert Order.objects.count() == 2
    assert IdempotencyRecord.objects.filter(key=key).count() == 2
    # and a different body under the same key is fine for the other client
    other_body = post_order(other_api, order_payload(payee, lines=[line(payee, quantity=2)]), key=new_key())
    assert other_body.status_code == 201


def test_failed_request_releases_the_key_for_a_corrected_retry(api, payee):
    key = new_key()
    bad = post_order(api, order_payload(payee, lines=[line(payee, unit_amount=0)]), key=key)
    assert bad.status_code == 400
    assert IdempotencyRecord.objects.count() == 0

    good = post_order(api, order_payload(payee), key=key)
    assert good.status_code == 201
    assert "Idempotent-Replayed" not in good
    assert Order.objects.count() == 1


def test_conflict_releases_the_key_too(api, payee):
    assert post_order(api, order_payload(payee, reference="R-9")).status_code == 201
    key = new_key()
    assert post_order(api, order_payload(payee, reference="R-9"), key=key).status_code == 409
    assert not IdempotencyRecord.objects.filter(key=key).exists()
    assert post_order(api, order_payload(payee, reference="R-10"), key=key).status_code == 201


def test_fingerprint_helper_matches_what_the_api_computes(api, api_client_obj, payee):
    payload = order_payload(payee)
    key = new_key()
    assert post_order(api, payload, key=key).status_code == 201
    assert IdempotencyRecord.objects.get(key=key).fingerprint == fingerprint_of(payload)
    assert fingerprint_of(payload) != fingerprint_of(order_payload(payee, currency="CZK"))
    assert fingerprint_of(payload) != fingerprint_of(payload, path=f"{ORDERS_URL}/x/cancel")


def test_request_still_in_flight_is_409_in_use(api, api_client_obj, payee):
    key, payload = new_key(), order_payload(payee)
    in_progress_record(api_client_obj, key, fingerprint_of(payload), locked_at=timezone.now())
    response = post_order(api, payload, key=key)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_key_in_use"
    assert Order.objects.count() == 0
    record = IdempotencyRecord.objects.get()
    assert record.status == IdempotencyRecord.Status.IN_PROGRESS  # the owner's claim is untouched

    # another body under that in-flight key is a reuse, not a wait
    response = post_order(api, order_payload(payee, currency="CZK"), key=key)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"


def test_stale_in_flight_record_is_taken_over(api, api_client_obj, payee):
    key, payload = new_key(), order_payload(payee)
    stale_at = timezone.now() - settings.TOLLGATE_IDEMPOTENCY_LOCK_TIMEOUT - timedelta(seconds=5)
    in_progress_record(api_client_obj, key, fingerprint_of(payload), locked_at=stale_at)

    response = post_order(api, payload, key=key)
    assert response.status_code == 201
    assert Order.objects.count() == 1
    record = IdempotencyRecord.objects.get()
    assert record.status == IdempotencyRecord.Status.COMPLETED
    assert record.locked_at > stale_at
    assert post_order(api, payload, key=key).json() == response.json()


def test_in_flight_record_just_inside_the_timeout_is_not_taken_over(api, api_client_obj, payee):
    key, payload = new_key(), order_payload(payee)
    recent = timezone.now() - settings.TOLLGATE_IDEMPOTENCY_LOCK_TIMEOUT + timedelta(seconds=5)
    in_progress_record(api_client_obj, key, fingerprint_of(payload), locked_at=recent)
    assert post_order(api, payload, key=key).status_code == 409
    assert Order.objects.count() == 0


def test_purge_deletes_only_records_older_than_the_ttl(api_client_obj):
    now = timezone.now()
    ttl = settings.TOLLGATE_IDEMPOTENCY_KEY_TTL
    assert ttl >= timedelta(hours=24)  # DESIGN §11: kept at least 24 h
    ages = {"old": ttl + timedelta(minutes=1), "edge": ttl - timedelta(minutes=1), "new": timedelta(minutes=5)}
    for name, age in ages.items():
        IdempotencyRecord.objects.create(
            client=api_client_obj,
            key=name,
            fingerprint="f" * 64,
            method="POST",
            path=ORDERS_URL,
            status=IdempotencyRecord.Status.COMPLETED,
            response_status=201,
            response_body={},
            locked_at=now - age,
            created_at=now - age,
        )
    assert purge_idempotency_records(now=now) == 1
    assert set(IdempotencyRecord.objects.values_list("key", flat=True)) == {"edge", "new"}
    assert purge_idempotency_records(now=now) == 0


def test_purged_key_can_be_used_again(api, payee):
    key, payload = new_key(), order_payload(payee, reference="R-P")
    first = post_order(api, payload, key=key)
    assert first.status_code == 201
    later = timezone.now() + settings.TOLLGATE_IDEMPOTENCY_KEY_TTL + timedelta(hours=1)
    assert purge_idempotency_records(now=later) == 1
    # the key is free again; the order itself is still protected by its reference
    again = post_order(api, payload, key=key)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "duplicate_reference"
    assert Order.objects.count() == 1
