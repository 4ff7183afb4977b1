"""The payee portal (issue 8): each page's access matrix (payee A, payee B, staff without a payee, anonymous),
balances per currency, the 12-month chart, the masked IBAN, and the Stripe onboarding button and POST."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from django.test import Client
from django.urls import reverse

from commissions.models import PayoutMethod
from commissions.portal.selectors import mask_iban
from ledger.money import format_money
from tests.commissions import portal_helpers
from tests.commissions.portal_helpers import (
    DASHBOARD,
    DOCUMENTS,
    IBAN,
    ONBOARDING,
    ORDERS,
    PAYOUTS,
    eur,
    login,
    order_url,
    page_of,
)
from tests.factories import PayeeFactory, UserFactory
from tests.invoicing.document_helpers import invoice_of

pytestmark = pytest.mark.django_db
world = portal_helpers.world  # the fixture, shared with the other portal test module


# --- The access matrix -----------------------------------------------------------------------------------

LIST_PAGES = [DASHBOARD, ORDERS, PAYOUTS, DOCUMENTS]


@pytest.mark.parametrize("url", LIST_PAGES)
@pytest.mark.parametrize(("who", "status"), [("a", 200), ("b", 200), ("staff", 404), ("anonymous", 302)])
def test_who_may_see_the_list_pages(client, world, url, who, status):
    response = login(client, world, who).get(url)

    assert response.status_code == status
    if status == 302:
        assert response["Location"] == f"{reverse('portal:login')}?next={url}"


def _object_url(world, kind: str, owner: str) -> str:
    if kind == "order":
        return order_url(world["own"] if owner == "a" else world["b_only"])
    if kind == "shared_order":
        return order_url(world["shared"])
    if kind == "document":
        return reverse("portal:document_pdf", args=[invoice_of(world["own"] if owner == "a" else world["b_only"]).pk])
    return reverse("portal:statement_pdf", args=[world[f"{owner}_statement"].pk])


@pytest.mark.parametrize("kind", ["order", "document", "statement"])
@pytest.mark.parametrize(
    ("who", "owner", "status"),
    [
        ("a", "a", 200),
        ("a", "b", 404),
        ("b", "b", 200),
        ("b", "a", 404),
        ("staff", "a", 404),
        ("anonymous", "a", 302),
    ],
)
def test_who_may_open_an_order_a_document_or_a_statement(client, world, kind, who, owner, status):
    url = _object_url(world, kind, owner)
    response = login(client, world, who).get(url)

    assert response.status_code == status
    if status == 302:
        assert response["Location"] == f"{reverse('portal:login')}?next={url}"
    if status == 404:
        assert not response.content.startswith(b"%PDF")


@pytest.mark.parametrize(("who", "status"), [("a", 200), ("b", 200), ("staff", 404), ("anonymous", 302)])
def test_a_shared_order_opens_for_both_its_payees_only(client, world, who, status):
    assert login(client, world, who).get(order_url(world["shared"])).status_code == status


def test_an_unknown_or_unpaid_order_is_a_404(client, world):
    from payments.services.orders import create_order
    from tests.invoicing.helpers import line

    unpaid = create_order(
        currency="EUR",
        buyer_email="x@example.com",
        reference="OPEN-1",
        now=datetime(2026, 6, 15, tzinfo=UTC),
        lines=[line(world["a"], 1000)],
    )
    client = login(client, world, "a")
    assert client.get(order_url(unpaid)).status_code == 404
    assert client.get(reverse("portal:order_detail", args=["00000000-0000-0000-0000-000000000000"])).status_code == 404


@pytest.mark.parametrize(("who", "status"), [("a", 302), ("b", 302), ("staff", 404), ("anonymous", 302)])
def test_who_may_post_the_stripe_onboarding(client, world, settings, who, status):
    settings.STRIPE_SECRET_KEY = ""
    response = login(client, world, who).post(ONBOARDING)

    assert response.status_code == status
    if who == "anonymous":
        assert response["Location"] == f"{reverse('portal:login')}?next={ONBOARDING}"
    elif status == 302:
        assert response["Location"] == DASHBOARD


def test_the_onboarding_is_post_only(client, world):
    assert login(client, world, "b").get(ONBOARDING).status_code == 405


def test_a_login_without_a_payee_sees_no_payee_data(client, world):
    client = login(client, world, "staff")
    for url in [*LIST_PAGES, order_url(world["own"])]:
        response = client.get(url)
        assert response.status_code == 404
        assert "Alfa" not in response.content.decode()


# --- Dashboard: balances, chart, payout method, onboarding -----------------------------------------------


def test_the_dashboard_shows_balances_per_currency(client, world):
    from ledger.selectors import payee_balances

    page = page_of(login(client, world, "a"), DASHBOARD)
    balances = {balance.currency: balance for balance in payee_balances(world["a"].pk)}

    assert set(balances) == {"EUR", "CZK"}
    for currency, balance in balances.items():
        card = re.search(rf'data-currency="{currency}">(.*?)</div>', page, re.S).group(1)
        assert f"<dt>Pending</dt><dd>{format_money(balance.pending, currency)}</dd>" in card
        assert f"<dt>Available</dt><dd>{format_money(balance.available, currency)}</dd>" in card
        assert f"<dt>Reserved</dt><dd>{format_money(balance.reserved, currency)}</dd>" in card
    assert balances["EUR"].total > 0
    assert balances["CZK"].pending > 0


def _chart(page: str, currency: str) -> str:
    match = re.search(rf'<svg[^>]*data-currency="{currency}".*?</svg>', page, re.S)
    assert match, f"no {currency} chart"
    return match.group(0)


def _month(svg: str, key: str) -> dict[str, int]:
    group = re.search(rf'<g class="chart__month" data-month="{key}">(.*?)</g>', svg, re.S).group(1)
    return {
        series: int(amount) for series, amount in re.findall(r'data-series="(\w+)" data-amount-minor="(-?\d+)"', group)
    }


def test_the_chart_has_12_months_and_the_right_totals(client, world):
    page = page_of(login(client, world, "a"), DASHBOARD)
    svg = _chart(page, "EUR")
    months = re.findall(r'<g class="chart__month" data-month="(\d{4}-\d{2})">', svg)

    assert months == [f"2025-{m:02d}" for m in range(7, 13)] + [f"2026-{m:02d}" for m in range(1, 7)]
    assert 'role="img"' in svg
    assert "<title id=" in svg
    assert "<desc id=" in svg
    march_share = sum(
        line.payee_share_minor
        for order in (world["own"], world["shared"])
        for line in order.lines.filter(payee=world["a"])
    )
    assert _month(svg, "2026-03") == {"sales": march_share, "payouts": 0}
    # April: the paid and the processing payout, not the failed one.
    assert _month(svg, "2026-04") == {"sales": 0, "payouts": 6500}
    assert _month(svg, "2025-07") == {"sales": 0, "payouts": 0}
    assert f"Mar 2026 — Sales: {eur(march_share)}" in svg
    assert f"Apr 2026 — Payouts: {eur(6500)}" in svg
    assert _month(_chart(page, "CZK"), "2026-05")["sales"] == world["crowns"].lines.get().payee_share_minor
    assert "<script" not in page


def test_the_chart_counts_only_the_payees_own_lines_of_a_shared_order(client, world):
    page = page_of(login(client, world, "b"), DASHBOARD)
    b_march = world["shared"].lines.get(payee=world["b"]).payee_share_minor
    assert _month(_chart(page, "EUR"), "2026-03") == {"sales": b_march, "payouts": 0}
    assert 'data-currency="CZK"' not in page


def test_the_iban_is_masked_everywhere(client, world):
    client = login(client, world, "a")
    assert mask_iban(IBAN) == "CZ65 •••• •••• •••• 5399"
    assert mask_iban("cz65 0800 0000 1920 0014 5399") == "CZ65 •••• •••• •••• 5399"
    assert mask_iban("") == ""
    for url in [DASHBOARD, PAYOUTS, ORDERS, order_url(world["own"])]:
        page = page_of(client, url)
        assert IBAN not in page
        assert "0800 0000 1920 0014" not in page
        assert "19200014" not in page
    assert "CZ65 •••• •••• •••• 5399" in page_of(client, DASHBOARD)
    assert "CZ65 •••• •••• •••• 5399" in page_of(client, PAYOUTS)


@pytest.mark.parametrize(
    ("method", "payouts_enabled", "shown"),
    [
        (PayoutMethod.STRIPE_TRANSFER, False, True),
        (PayoutMethod.STRIPE_TRANSFER, True, False),
        (PayoutMethod.SEPA_CREDIT_TRANSFER, False, False),
        (PayoutMethod.PAYPAL, False, False),
    ],
)
def test_the_onboarding_button_shows_only_for_stripe_without_payouts(client, method, payouts_enabled, shown):
    payee = PayeeFactory(portal_user=UserFactory(), payout_method=method, stripe_payouts_enabled=payouts_enabled)
    client.force_login(payee.portal_user)
    page = page_of(client, DASHBOARD)

    assert ("Connect your Stripe account" in page) is shown
    assert (f'action="{ONBOARDING}"' in page) is shown


def test_onboarding_without_stripe_configured_says_so_plainly(client, world, settings):
    settings.STRIPE_SECRET_KEY = ""
    response = login(client, world, "b").post(ONBOARDING, follow=True)

    assert response.status_code == 200
    assert response.redirect_chain == [(DASHBOARD, 302)]
    assert "Stripe is not configured on this server" in response.content.decode()
    world["b"].refresh_from_db()
    assert world["b"].stripe_account_id is None


def test_onboarding_sends_the_payee_to_stripe(client, world, fake_stripe):
    response = login(client, world, "b").post(ONBOARDING)

    world["b"].refresh_from_db()
    assert response.status_code == 302
    assert world["b"].stripe_account_id.startswith("acct_")
    assert response["Location"].startswith(f"https://connect.stripe.com/setup/e/{world['b'].stripe_account_id}/")
    [link] = fake_stripe.posts("/v1/account_links")
    assert link.params["return_url"] == f"http://testserver{DASHBOARD}"


def test_onboarding_when_not_needed_changes_nothing(client, world, fake_stripe):
    response = login(client, world, "a").post(ONBOARDING, follow=True)

    assert response.redirect_chain == [(DASHBOARD, 302)]
    assert "Nothing to set up" in response.content.decode()
    assert not fake_stripe.requests


def test_onboarding_needs_the_csrf_token(world, settings):
    settings.STRIPE_SECRET_KEY = ""
    client = Client(enforce_csrf_checks=True)
    client.force_login(world["b"].portal_user)

    assert client.post(ONBOARDING).status_code == 403

    page = page_of(client, DASHBOARD)
    token = re.search(
        rf'action="{ONBOARDING}">\s*<input type="hidden" name="csrfmiddlewaretoken" value="([^"]+)"', page
    ).group(1)
    response = client.post(ONBOARDING, {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert response["Location"] == DASHBOARD


def test_signing_in_at_the_login_page_itself_lands_in_the_portal(client, world):
    """Without a ?next= (a bookmarked login page) the sign-in goes to the portal, not to Django's default
    /accounts/profile/ (a 404 here)."""
    user = world["a"].portal_user
    user.set_password("a-long-portal-password")
    user.save(update_fields=["password"])
    response = client.post(
        reverse("portal:login"), {"username": user.username, "password": "a-long-portal-password", "next": ""}
    )
    assert response.status_code == 302
    assert response["Location"] == DASHBOARD
    assert client.get(DASHBOARD).status_code == 200
