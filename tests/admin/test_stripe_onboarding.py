"""The payee list's "Start Stripe onboarding" action: one Express account per payee (whatever happens),
a fresh Account Link each time, shown to staff; only for staff holding `commissions.onboard_payee`; a
Stripe that is not configured, refuses or does not answer is a message, never a 500."""

import pytest
from django.contrib.messages import get_messages

from commissions.models import Payee
from core.models import AuditEntry

pytestmark = pytest.mark.django_db

PAYEES = "/admin/commissions/payee/"
ONBOARDER = ("commissions.view_payee", "commissions.onboard_payee")


def _onboard(client, *payees):
    return client.post(
        PAYEES, {"action": "start_onboarding", "_selected_action": [str(p.pk) for p in payees], "index": "0"}
    )


def _messages(response) -> list[tuple[str, str]]:
    return [(m.level_tag, str(m)) for m in get_messages(response.wsgi_request)]


def test_onboarding_creates_one_express_account_and_a_link_and_shows_it(staff_client, fake_stripe, payee):
    client = staff_client(*ONBOARDER)
    assert 'value="start_onboarding"' in client.get(PAYEES).content.decode()

    response = _onboard(client, payee)

    assert response.status_code == 302
    [account_post] = fake_stripe.posts("/v1/accounts")
    assert account_post.idempotency_key == f"tollgate-payee-{payee.pk}-account"
    assert account_post.params["type"] == "express"
    assert account_post.params["country"] == "CZ"
    assert account_post.params["metadata"] == {"payee_id": str(payee.pk)}
    [link_post] = fake_stripe.posts("/v1/account_links")
    payee.refresh_from_db()
    assert payee.stripe_account_id.startswith("acct_")
    back = f"http://testserver/admin/commissions/payee/{payee.pk}/change/"
    assert link_post.params == {
        "account": payee.stripe_account_id,
        "type": "account_onboarding",
        "return_url": back,
        "refresh_url": back,
    }
    assert link_post.idempotency_key == f"tollgate-payee-{payee.pk}-link-1"

    [(level, message)] = _messages(response)
    assert level == "success"
    url = f"https://connect.stripe.com/setup/e/{payee.stripe_account_id}/"
    assert url in message
    assert payee.stripe_account_id in message
    assert 'target="_blank" rel="noopener noreferrer"' in message
    audit = AuditEntry.objects.get(action="payee.stripe_onboarding")
    assert (audit.actor_id, audit.object_id, audit.message) == (client.user.pk, str(payee.pk), payee.stripe_account_id)


def test_onboarding_again_makes_a_new_link_for_the_same_account(staff_client, fake_stripe, payee):
    client = staff_client(*ONBOARDER)
    first = _messages(_onboard(client, payee))[-1][1]
    payee.refresh_from_db()
    account = payee.stripe_account_id

    second = _messages(_onboard(client, payee))[-1][1]

    assert len(fake_stripe.posts("/v1/accounts")) == 1
    links = fake_stripe.posts("/v1/account_links")
    assert [p.idempotency_key for p in links] == [f"tollgate-payee-{payee.pk}-link-{n}" for n in (1, 2)]
    assert {p.params["account"] for p in links} == {account}
    assert first != second
    payee.refresh_from_db()
    assert (payee.stripe_account_id, payee.stripe_onboarding_links) == (account, 2)
    assert len([o for o in fake_stripe.objects.values() if o.get("object") == "account"]) == 1


def test_onboarding_needs_its_own_permission_and_a_forged_post_changes_nothing(staff_client, fake_stripe, payee):
    for perms in [("commissions.view_payee",), ("commissions.view_payee", "commissions.change_payee")]:
        client = staff_client(*perms)
        assert 'value="start_onboarding"' not in client.get(PAYEES).content.decode(), perms

        response = _onboard(client, payee)

        assert response.status_code in (200, 302), perms
        assert fake_stripe.requests == [], perms
        payee.refresh_from_db()
        assert (payee.stripe_account_id, payee.stripe_onboarding_links) == (None, 0)
        assert not AuditEntry.objects.filter(action="payee.stripe_onboarding").exists()


def test_onboarding_is_for_one_payee_at_a_time(staff_client, fake_stripe, payee, other_payee):
    client = staff_client(*ONBOARDER)

    response = _onboard(client, payee, other_payee)

    assert _messages(response) == [("warning", "Select exactly one payee to start its Stripe onboarding.")]
    assert fake_stripe.requests == []
    assert not Payee.objects.exclude(stripe_account_id=None).exists()


@pytest.mark.parametrize("missing", ["STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRETS"])
def test_stripe_not_configured_is_a_message_not_an_error_page(staff_client, fake_stripe, settings, payee, missing):
    setattr(settings, missing, "" if missing == "STRIPE_SECRET_KEY" else [])
    client = staff_client(*ONBOARDER)

    response = _onboard(client, payee)

    assert response.status_code == 302
    [(level, message)] = _messages(response)
    assert level == "error"
    assert "Stripe is not configured" in message
    assert fake_stripe.requests == []
    payee.refresh_from_db()
    assert payee.stripe_account_id is None


def test_stripe_not_configured_at_all_without_the_fake(staff_client, settings, payee):
    settings.STRIPE_SECRET_KEY = ""
    response = _onboard(staff_client(*ONBOARDER), payee)
    assert response.status_code == 302
    assert "Stripe is not configured" in _messages(response)[0][1]


def test_a_stripe_refusal_is_shown(staff_client, fake_stripe, payee):
    # Stripe has seen this account key with other parameters: an idempotency_error, never retried.
    fake_stripe.idempotency[f"tollgate-payee-{payee.pk}-account"] = ({"type": "standard"}, 200, {"id": "acct_x"})
    client = staff_client(*ONBOARDER)

    response = _onboard(client, payee)

    assert response.status_code == 302
    [(level, message)] = _messages(response)
    assert level == "error"
    assert message.startswith(f"{payee}: Stripe refused the onboarding:")
    assert len(fake_stripe.posts("/v1/accounts")) == 1
    assert fake_stripe.posts("/v1/account_links") == []
    payee.refresh_from_db()
    assert payee.stripe_account_id is None


def test_stripe_not_answering_is_shown_and_a_retry_creates_no_second_account(staff_client, fake_stripe, payee):
    # Stripe cannot be reached, the SDK's own retries (same idempotency key) included.
    fake_stripe.fail("/v1/accounts", "timeout", times=3)
    client = staff_client(*ONBOARDER)

    response = _onboard(client, payee)

    [(level, message)] = _messages(response)
    assert level == "error"
    assert "Stripe did not answer" in message
    payee.refresh_from_db()
    assert payee.stripe_account_id is None

    response = _onboard(client, payee)

    assert _messages(response)[-1][0] == "success"
    payee.refresh_from_db()
    assert len([o for o in fake_stripe.objects.values() if o.get("object") == "account"]) == 1
    assert {p.idempotency_key for p in fake_stripe.posts("/v1/accounts")} == {f"tollgate-payee-{payee.pk}-account"}
    assert payee.stripe_account_id in fake_stripe.objects


def test_the_message_escapes_what_it_shows(staff_client, fake_stripe, payee):
    Payee.objects.filter(pk=payee.pk).update(legal_name="<b>Evil</b> s.r.o.")
    payee.refresh_from_db()

    [(level, message)] = _messages(_onboard(staff_client(*ONBOARDER), payee))

    assert level == "success"
    assert "&lt;b&gt;Evil&lt;/b&gt; s.r.o." in message
    assert "<b>" not in message
