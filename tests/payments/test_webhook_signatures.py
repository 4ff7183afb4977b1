"""The signature matrix of /webhooks/sandbox/ (RELIABILITY §6 row 1, row 40): only authentic, fresh
deliveries are stored; every rejection is a 400 that stores no row and no body anywhere (not in the
inbox, not in the rejection counters, not in a log record) and is counted with its reason."""

import time
from datetime import UTC, datetime

import pytest
import time_machine
from django.test import override_settings

from payments.models import WebhookEvent, WebhookRejection
from payments.providers.sandbox.signing import HEADER, compute_signature
from tests.payments.helpers import WEBHOOK_URL, dump_database, encode, log_texts, post_webhook, signed_headers

pytestmark = pytest.mark.django_db

SECRET = "whsec_sandbox_test"  # config/settings/test.py
NOW = datetime(2026, 3, 2, 12, 0, 0, tzinfo=UTC)
CANARY = "body-canary-7d1f0c"


def event_body(event_id="evt_sig_1"):
    payload = {
        "id": event_id,
        "object": "event",
        "type": "session.note",
        "created": int(NOW.timestamp()),
        "data": {"object": {"note": CANARY}},
    }
    return encode(payload)


def header_for(body, *, secret=SECRET, age=0):
    stamp = int(NOW.timestamp()) - age
    return {HEADER: f"t={stamp},v1={compute_signature(payload=body, secret=secret, timestamp=stamp)}"}


def flip_one_byte(body: bytes) -> bytes:
    index = body.index(b"evt_sig_1") + 8  # "evt_sig_1" -> "evt_sig_0": the canary text stays intact
    return body[:index] + bytes([body[index] ^ 0x01]) + body[index + 1 :]


def _cases():
    body = event_body()
    stamp = int(NOW.timestamp())
    good = compute_signature(payload=body, secret=SECRET, timestamp=stamp)
    return {
        # name: (body to send, headers, expected status, rejection reason or None)
        "valid": (body, header_for(body), 200, None),
        "wrong_secret": (body, header_for(body, secret="whsec_attacker"), 400, "bad_signature"),
        "flipped_byte": (flip_one_byte(body), header_for(body), 400, "bad_signature"),
        "301_s_old": (body, header_for(body, age=301), 400, "stale_timestamp"),
        "299_s_old": (body, header_for(body, age=299), 200, None),
        "300_s_old": (body, header_for(body, age=300), 200, None),
        "10_min_in_future": (body, header_for(body, age=-600), 400, "stale_timestamp"),
        "missing_header": (body, {}, 400, "missing_signature"),
        "empty_header": (body, {HEADER: ""}, 400, "missing_signature"),
        "no_v1": (body, {HEADER: f"t={stamp}"}, 400, "malformed_signature"),
        "v0_only": (body, {HEADER: f"t={stamp},v0={good}"}, 400, "malformed_signature"),
        "no_timestamp": (body, {HEADER: f"v1={good}"}, 400, "malformed_signature"),
        "bad_timestamp": (body, {HEADER: f"t=yesterday,v1={good}"}, 400, "malformed_signature"),
        "two_v1_one_valid": (body, {HEADER: f"t={stamp},v1={'0' * 64},v1={good}"}, 200, None),
        "two_v1_none_valid": (body, {HEADER: f"t={stamp},v1={'0' * 64},v1={'f' * 64}"}, 400, "bad_signature"),
        "signature_of_other_timestamp": (body, {HEADER: f"t={stamp - 1},v1={good}"}, 400, "bad_signature"),
    }


@pytest.mark.parametrize("case", list(_cases()))
def test_signature_matrix(client, case, caplog):
    caplog.set_level("DEBUG")
    body, headers, status, reason = _cases()[case]
    with time_machine.travel(NOW, tick=False):
        response = post_webhook(client, body, headers)

    assert response.status_code == status, response.content
    if status == 200:
        assert response.json() == {"received": 1, "duplicates": 0}
        event = WebhookEvent.objects.get()
        assert event.event_id == "evt_sig_1"
        assert event.payload["data"]["object"]["note"] == CANARY
        assert not WebhookRejection.objects.exists()
        return
    assert response.json()["error"]["code"] == "webhook_rejected"
    assert reason in response.json()["error"]["message"]
    assert not WebhookEvent.objects.exists()
    rejection = WebhookRejection.objects.get()
    assert (rejection.provider, rejection.reason, rejection.count) == ("sandbox", reason, 1)
    assert rejection.last_ip == "127.0.0.1"
    assert CANARY not in dump_database()
    assert not any(CANARY in text for text in log_texts(caplog))
    assert any(reason in text for text in log_texts(caplog))  # the rejection itself is logged


@pytest.mark.parametrize(
    ("body", "signed", "reason"),
    [
        (b"\xff\xfe\x00garbage " + CANARY.encode(), False, "missing_signature"),
        (b"\xff\xfe\x00garbage " + CANARY.encode(), True, "malformed_payload"),
        (b'{"id": "evt_x", "note": "' + CANARY.encode() + b'\xc3\x28"}', True, "malformed_payload"),
        (b"[1, 2, 3]", True, "malformed_payload"),
        (
            b'{"id": "evt_x", "type": "payment.succeeded", "data": {"object": {"id": "sbx_1"}}}',
            True,
            "malformed_payload",
        ),
        (b"", True, "malformed_payload"),
    ],
)
def test_non_utf8_or_malformed_body_is_400_never_500(client, body, signed, reason, caplog):
    caplog.set_level("DEBUG")
    headers = signed_headers(body, secret=SECRET) if signed else {}
    response = post_webhook(client, body, headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "webhook_rejected"
    assert not WebhookEvent.objects.exists()
    assert WebhookRejection.objects.get().reason == reason
    assert not any(CANARY in text for text in log_texts(caplog))


def test_rejections_are_counted_per_reason_and_day(client):
    body = event_body()
    for _ in range(3):
        post_webhook(client, body, signed_headers(body, secret="whsec_wrong"))
    post_webhook(client, body, {})
    counts = dict(WebhookRejection.objects.values_list("reason", "count"))
    assert counts == {"bad_signature": 3, "missing_signature": 1}


def test_get_and_unknown_provider_are_refused(client):
    assert client.get(WEBHOOK_URL).status_code == 405
    response = client.post("/webhooks/nosuchpsp/", data=b"{}", content_type="application/json")
    assert response.status_code == 404
    assert not WebhookEvent.objects.exists()


def test_secret_rotation_accepts_both_during_overlap_and_refuses_the_old_one_after(client):
    now = int(time.time())
    old_body, new_body, late_body = event_body("evt_old"), event_body("evt_new"), event_body("evt_late")
    with override_settings(SANDBOX_WEBHOOK_SECRET="whsec_new, whsec_old"):
        assert (
            post_webhook(client, old_body, signed_headers(old_body, secret="whsec_old", timestamp=now)).status_code
            == 200
        )
        assert (
            post_webhook(client, new_body, signed_headers(new_body, secret="whsec_new", timestamp=now)).status_code
            == 200
        )
    with override_settings(SANDBOX_WEBHOOK_SECRET="whsec_new"):
        response = post_webhook(client, late_body, signed_headers(late_body, secret="whsec_old", timestamp=now))
        assert response.status_code == 400
        assert "bad_signature" in response.json()["error"]["message"]
    assert set(WebhookEvent.objects.values_list("event_id", flat=True)) == {"evt_old", "evt_new"}


def test_no_secret_configured_refuses_everything(client):
    body = event_body()
    with override_settings(SANDBOX_WEBHOOK_SECRET=""):
        response = post_webhook(client, body, signed_headers(body, secret=SECRET))
    assert response.status_code == 400
    assert not WebhookEvent.objects.exists()
