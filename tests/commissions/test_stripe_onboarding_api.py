"""POST /api/v1/payees/<id>/stripe-onboarding: the payee's Express account once, a fresh Account Link per
request, replayed (not re-requested at Stripe) under the same Idempotency-Key; refusals with a code, and
nothing left behind. The payee's Connect status is readable (never writable) in the payee API."""

import uuid

import pytest
from django.utils import timezone

from commissions.models import Payee
from commissions.services import apply_connected_account_state
from core.models import AuditEntry, IdempotencyRecord
from payments.providers.registry import get_provider

pytestmark = pytest.mark.django_db


def _url(payee_id) -> str:
    return f"/api/v1/payees/{payee_id}/stripe-onboarding"


def _post(api, payee_id, key: str | None = None):
    headers = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": key}
    return api.post(_url(payee_id), format="json", **headers)


def _new_key() -> str:
    return str(uuid.uuid4())


def _error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    return body


def _accounts(fake) -> list[dict]:
    return [o for o in fake.objects.values() if o.get("object") == "account"]


def test_onboarding_returns_201_with_the_link_and_the_account(api, fake_stripe, payee):
    response = _post(api, payee.pk, _new_key())

    assert response.status_code == 201, response.content
    body = response.json()
    payee.refresh_from_db()
    assert body == {
        "object": "stripe_onboarding_link",
        "url": body["url"],
        "account": payee.stripe_account_id,
    }
    assert body["account"].startswith("acct_")
    assert body["url"].startswith(f"https://connect.stripe.com/setup/e/{body['account']}/")
    [account_post] = fake_stripe.posts("/v1/accounts")
    assert account_post.idempotency_key == f"tollgate-payee-{payee.pk}-account"
    assert account_post.params["type"] == "express"
    [link_post] = fake_stripe.posts("/v1/account_links")
    assert link_post.params["account"] == body["account"]
    # The payee comes back to (or renews the link from) the payee portal.
    assert link_post.params["return_url"] == link_post.params["refresh_url"] == "http://testserver/portal/"
    audit = AuditEntry.objects.get(action="payee.stripe_onboarding")
    assert (audit.actor_label, audit.object_id) == ("api:demo-marketplace", str(payee.pk))


def test_the_same_key_replays_without_calling_stripe_again_and_a_new_key_makes_a_new_link(api, fake_stripe, payee):
    key = _new_key()
    first = _post(api, payee.pk, key)
    calls = len(fake_stripe.requests)

    replay = _post(api, payee.pk, key)

    assert replay.status_code == 201
    assert replay["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()
    assert len(fake_stripe.requests) == calls

    again = _post(api, payee.pk, _new_key())

    assert again.status_code == 201
    assert again.json()["account"] == first.json()["account"]
    assert again.json()["url"] != first.json()["url"]
    assert len(fake_stripe.posts("/v1/accounts")) == 1
    assert len(fake_stripe.posts("/v1/account_links")) == 2
    assert len(_accounts(fake_stripe)) == 1


def test_unknown_payee_is_404_and_nothing_is_sent(api, fake_stripe):
    _error(_post(api, 987654, _new_key()), 404, "not_found")
    assert fake_stripe.requests == []
    assert IdempotencyRecord.objects.count() == 0


def test_the_idempotency_key_is_required(api, fake_stripe, payee):
    _error(_post(api, payee.pk), 400, "idempotency_key_required")
    assert fake_stripe.requests == []


@pytest.mark.parametrize("missing", ["STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRETS"])
def test_stripe_not_configured_is_409_provider_not_configured(api, fake_stripe, settings, payee, missing):
    setattr(settings, missing, "" if missing == "STRIPE_SECRET_KEY" else [])

    _error(_post(api, payee.pk, _new_key()), 409, "provider_not_configured")

    assert fake_stripe.requests == []
    payee.refresh_from_db()
    assert payee.stripe_account_id is None
    assert IdempotencyRecord.objects.count() == 0
    assert not AuditEntry.objects.filter(action="payee.stripe_onboarding").exists()


def test_a_stripe_refusal_is_400_provider_rejected_and_leaves_nothing(api, fake_stripe, payee):
    fake_stripe.idempotency[f"tollgate-payee-{payee.pk}-account"] = ({"type": "standard"}, 200, {"id": "acct_x"})

    _error(_post(api, payee.pk, _new_key()), 400, "provider_rejected")

    payee.refresh_from_db()
    assert (payee.stripe_account_id, payee.stripe_onboarding_links) == (None, 0)
    assert IdempotencyRecord.objects.count() == 0
    assert fake_stripe.posts("/v1/account_links") == []


def test_stripe_not_answering_is_503_and_the_retry_with_the_same_key_makes_one_account(api, fake_stripe, payee):
    # The link's answer is lost every time (the SDK's retries included): the account exists at Stripe, but
    # our transaction rolls back. The client's retry gets the same account back from Stripe's idempotency.
    fake_stripe.fail("/v1/account_links", "timeout", times=3)
    key = _new_key()

    _error(_post(api, payee.pk, key), 503, "provider_unavailable")

    payee.refresh_from_db()
    assert payee.stripe_account_id is None
    response = _post(api, payee.pk, key)
    assert response.status_code == 201, response.content
    assert len(_accounts(fake_stripe)) == 1
    assert response.json()["account"] == _accounts(fake_stripe)[0]["id"]
    assert {p.idempotency_key for p in fake_stripe.posts("/v1/accounts")} == {f"tollgate-payee-{payee.pk}-account"}


def test_payee_api_shows_the_connect_status_read_only(api, fake_stripe, payee):
    body = api.get(f"/api/v1/payees/{payee.pk}").json()
    assert (body["stripe_account_id"], body["stripe_charges_enabled"], body["stripe_payouts_enabled"]) == (
        None,
        False,
        False,
    )
    account = _post(api, payee.pk, _new_key()).json()["account"]
    event = fake_stripe.account_updated(account, enabled=True)[0]
    state = get_provider("stripe").interpret_event(payload=event).account_state
    assert apply_connected_account_state(state=state, now=timezone.now())

    body = api.get(f"/api/v1/payees/{payee.pk}").json()
    assert (body["stripe_account_id"], body["stripe_charges_enabled"], body["stripe_payouts_enabled"]) == (
        account,
        True,
        True,
    )
    assert body in api.get("/api/v1/payees").json()

    # Sent on create, the status is ignored: only Stripe sets it.
    payload = {
        "kind": "seller",
        "legal_name": "Sneaky s.r.o.",
        "country": "CZ",
        "email": "sneaky@example.com",
        "stripe_account_id": "acct_stolen",
        "stripe_payouts_enabled": True,
    }
    created = api.post("/api/v1/payees", payload, format="json", HTTP_IDEMPOTENCY_KEY=_new_key())
    assert created.status_code == 201, created.content
    assert (created.json()["stripe_account_id"], created.json()["stripe_payouts_enabled"]) == (None, False)
    sneaky = Payee.objects.get(pk=created.json()["id"])
    assert (sneaky.stripe_account_id, sneaky.stripe_payouts_enabled) == (None, False)
