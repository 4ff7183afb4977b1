"""The signature matrix of /webhooks/stripe/ (RELIABILITY §6 rows 1 and 40), signed with Stripe's scheme (the
fake's `sign`) and checked by the real SDK: only authentic, fresh deliveries are stored; every rejection is a
400 that stores no WebhookEvent and no body (not in the database, not in a log record) and is counted by
reason. The clock is frozen for the SDK (time.time) and for us (timezone.now) alike."""

import json
from datetime import UTC, datetime

import pytest
import time_machine
from django.test import override_settings

from payments.models import WebhookEvent, WebhookRejection
from tests.payments.helpers import dump_database, log_texts
from tests.payments.stripe.conftest import WEBHOOK_SECRET
from tests.payments.stripe.fake import sign

pytestmark = pytest.mark.django_db

URL = "/webhooks/stripe/"
NOW = datetime(2026, 11, 2, 12, 0, 0, tzinfo=UTC)
CANARY = "body-canary-5e0a77"


def event_body(event_id: str = "evt_sig_1") -> bytes:
    """An event we ignore (nothing to do) with a canary that must never be stored or logged when rejected."""
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": "customer.created",
            "api_version": "2026-10-28.endive",
            "created": int(NOW.timestamp()),
            "data": {"object": {"id": "cus_1", "object": "customer", "description": CANARY}},
        }
    ).encode()


def header(body: bytes, *, secret: str = WEBHOOK_SECRET, age: int = 0) -> str:
    return sign(body, secret, int(NOW.timestamp()) - age)


def v1_of(signed_header: str) -> str:
    return signed_header.split("v1=", 1)[1]


def flip_one_byte(body: bytes) -> bytes:
    index = body.index(b"evt_sig_1") + 8  # "evt_sig_1" -> "evt_sig_0": the canary stays intact
    return body[:index] + bytes([body[index] ^ 0x01]) + body[index + 1 :]


def _cases():
    body = event_body()
    stamp = int(NOW.timestamp())
    good = v1_of(header(body))
    return {
        # name: (body sent, Stripe-Signature header or None, expected status, rejection reason)
        "valid": (body, header(body), 200, None),
        "wrong_secret": (body, header(body, secret="whsec_attacker"), 400, "bad_signature"),
        "flipped_byte": (flip_one_byte(body), header(body), 400, "bad_signature"),
        "299_s_old": (body, header(body, age=299), 200, None),
        "301_s_old": (body, header(body, age=301), 400, "stale_timestamp"),
        "10_min_in_future": (body, header(body, age=-600), 400, "stale_timestamp"),
        "no_header": (body, None, 400, "missing_signature"),
        "empty_header": (body, "", 400, "missing_signature"),
        "no_v1": (body, f"t={stamp}", 400, "bad_signature"),
        "only_v0": (body, f"t={stamp},v0={good}", 400, "bad_signature"),
        "no_timestamp": (body, f"v1={good}", 400, "malformed_signature"),
        "two_v1_one_valid": (body, f"t={stamp},v1={'0' * 64},v1={good}", 200, None),
        "two_v1_none_valid": (body, f"t={stamp},v1={'0' * 64},v1={'f' * 64}", 400, "bad_signature"),
        "signature_of_other_timestamp": (body, f"t={stamp - 1},v1={good}", 400, "bad_signature"),
    }


def post(client, body: bytes, signature: str | None):
    headers = {} if signature is None else {"Stripe-Signature": signature}
    return client.post(URL, data=body, content_type="application/json", headers=headers)


def assert_rejected_without_trace(response, reason: str, caplog) -> None:
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "webhook_rejected"
    assert reason in response.json()["error"]["message"]
    assert not WebhookEvent.objects.exists()
    assert CANARY not in dump_database()
    assert not any(CANARY in text for text in log_texts(caplog))


@pytest.mark.parametrize("case", list(_cases()))
def test_signature_matrix(client, fake_stripe, case, caplog):
    caplog.set_level("DEBUG")
    body, signature, status, reason = _cases()[case]
    with time_machine.travel(NOW, tick=False):
        response = post(client, body, signature)

    if status == 200:
        assert response.status_code == 200, response.content
        assert response.json() == {"received": 1, "duplicates": 0}
        event = WebhookEvent.objects.get()
        assert (event.provider, event.event_id) == ("stripe", "evt_sig_1")
        assert event.payload["data"]["object"]["description"] == CANARY
        assert not WebhookRejection.objects.exists()
        return
    assert_rejected_without_trace(response, reason, caplog)
    rejection = WebhookRejection.objects.get()
    assert (rejection.provider, rejection.reason, rejection.count) == ("stripe", reason, 1)
    assert any(reason in text for text in log_texts(caplog))  # the rejection itself is logged


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"\xff\xfe\x00 not utf-8 " + CANARY.encode(), "malformed_payload"),
        (b'{"id": "evt_x", "note": "' + CANARY.encode() + b'\xc3\x28"}', "malformed_payload"),
        (b"[1, 2, 3]", "malformed_payload"),
        (
            b'{"id": "evt_x", "type": "charge.refunded", "data": {"object": "' + CANARY.encode() + b'"}}',
            "malformed_payload",
        ),
        (b"", "malformed_payload"),
    ],
)
def test_a_correctly_signed_but_non_utf8_or_malformed_body_is_400_never_500(client, fake_stripe, body, reason, caplog):
    caplog.set_level("DEBUG")
    response = post(client, body, sign(body, WEBHOOK_SECRET))
    assert_rejected_without_trace(response, reason, caplog)
    assert WebhookRejection.objects.get().reason == reason


def test_non_utf8_body_with_a_bad_signature_is_400_too(client, fake_stripe):
    body = b"\xff\xfe garbage"
    assert post(client, body, sign(body, "whsec_attacker")).status_code == 400
    assert not WebhookEvent.objects.exists()


def test_rejections_are_counted_per_reason(client, fake_stripe):
    body = event_body()
    for _ in range(3):
        post(client, body, sign(body, "whsec_wrong"))
    post(client, body, None)
    post(client, body, sign(body, WEBHOOK_SECRET, 1))  # 1970
    counts = dict(WebhookRejection.objects.values_list("reason", "count"))
    assert counts == {"bad_signature": 3, "missing_signature": 1, "stale_timestamp": 1}
    assert not WebhookEvent.objects.exists()


def test_secret_rotation_accepts_both_during_the_overlap_and_refuses_the_old_one_after(client, fake_stripe):
    with override_settings(STRIPE_WEBHOOK_SECRETS=["whsec_new", "whsec_old"]):
        for event_id, secret in [("evt_old", "whsec_old"), ("evt_new", "whsec_new")]:
            body = event_body(event_id)
            assert post(client, body, sign(body, secret)).status_code == 200
        # Stripe signs with both secrets during the roll: one v1 per secret.
        body = event_body("evt_both")
        both = f"{sign(body, 'whsec_new')},v1={v1_of(sign(body, 'whsec_old'))}"
        assert post(client, body, both).status_code == 200
        # A stale delivery is stale under either secret.
        body = event_body("evt_stale")
        response = post(client, body, sign(body, "whsec_old", 1))
        assert response.status_code == 400
        assert "stale_timestamp" in response.json()["error"]["message"]
    with override_settings(STRIPE_WEBHOOK_SECRETS=["whsec_new"]):
        body = event_body("evt_late")
        response = post(client, body, sign(body, "whsec_old"))
        assert response.status_code == 400
        assert "bad_signature" in response.json()["error"]["message"]
    assert set(WebhookEvent.objects.values_list("event_id", flat=True)) == {"evt_old", "evt_new", "evt_both"}


def test_no_secret_configured_refuses_everything(client, fake_stripe):
    body = event_body()
    with override_settings(STRIPE_WEBHOOK_SECRETS=[]):
        response = post(client, body, sign(body, WEBHOOK_SECRET))
    assert response.status_code == 400
    assert not WebhookEvent.objects.exists()


def test_a_duplicate_delivery_is_answered_200_and_stored_once(client, fake_stripe):
    body = event_body()
    first = post(client, body, sign(body, WEBHOOK_SECRET))
    again = post(client, body, sign(body, WEBHOOK_SECRET))
    assert (first.json(), again.json()) == ({"received": 1, "duplicates": 0}, {"received": 0, "duplicates": 1})
    assert WebhookEvent.objects.count() == 1
