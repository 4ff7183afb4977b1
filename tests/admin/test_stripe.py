"""Stripe in the back office: our rows show Stripe's references linked to the Stripe dashboard (test or live
by the configured key, in a new tab without an opener), sandbox rows show theirs as plain text; disputes,
payouts and connected accounts' bank payouts have their own view-only pages; the payee page shows its
Connect status. The rows are made through the services, against the fake Stripe."""

import re

import pytest
from django.utils import timezone

from commissions.models import ConnectedAccountPayout, Payee, Payout
from commissions.payouts import create_payout, send_payout
from commissions.services import apply_connected_account_state, record_bank_payout, start_stripe_onboarding
from ledger import accounts
from ledger.money import Money
from ledger.selectors import account_balance
from ledger.services import credit, debit, post_transaction
from payments.models import Payment, PaymentStatus
from payments.providers.base import ProviderDisputeState
from payments.providers.registry import get_provider
from payments.services.checkout import start_payment, sync_payment_from_provider
from refunds.disputes import apply_provider_dispute
from refunds.models import Dispute, Refund, RefundStatus
from refunds.services import execute_refund, request_refund

pytestmark = pytest.mark.django_db

TEST_DASHBOARD = "https://dashboard.stripe.com/test/"
LIVE_DASHBOARD = "https://dashboard.stripe.com/"


def _text(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def _link(url: str, text: str) -> str:
    return f'<a href="{url}" target="_blank" rel="noopener noreferrer">{text}</a>'


def _event_state(event):
    return get_provider("stripe").interpret_event(payload=event)


@pytest.fixture
def stripe_books(fake_stripe, make_order, payee):
    """Through the fake Stripe: an EUR order paid by Checkout, partly refunded, disputed; the payee onboarded
    (account.updated with requirements still due), paid out by transfer, and its account's bank payout."""
    now = timezone.now()
    order = make_order(unit_amount_minor=15000)  # 300.00: enough left for a 200.00 payout after the hold
    payment = start_payment(order=order, provider_name="stripe", now=now)
    fake_stripe.pay(payment.provider_ref)
    payment = sync_payment_from_provider(payment=payment, now=now)
    assert payment.status == PaymentStatus.SUCCEEDED
    refund = request_refund(order=order, amount_minor=1000, reason="requested_by_customer", now=now)
    refund = execute_refund(refund_id=refund.pk, now=now)
    assert refund.status == RefundStatus.SUCCEEDED
    created = _event_state(fake_stripe.open_dispute(payment.provider_payment_ref, amount=5000)[0])
    dispute = apply_provider_dispute(payment=payment, state=created.dispute_state, now=now)

    start_stripe_onboarding(payee=payee, return_url="http://testserver/", refresh_url="http://testserver/", now=now)
    payee.refresh_from_db()
    account = _event_state(fake_stripe.account_updated(payee.stripe_account_id, enabled=False)[0])
    assert apply_connected_account_state(state=account.account_state, now=now)
    pending = account_balance(accounts.payee_pending(payee.pk), "EUR")
    post_transaction(  # the release (delivery window passed): pending -> available
        idempotency_key=f"release:test:{payee.pk}",
        kind="release",
        entries=[debit(accounts.payee_pending(payee.pk), pending), credit(accounts.payee_available(payee.pk), pending)],
        occurred_at=now,
        memo="released for the test",
    )
    payout = create_payout(payee=payee, amount=Money(20000, "EUR"), now=now)
    payout = send_payout(payout_id=payout.pk, now=now)
    assert payout.status == Payout.Status.PAID
    bank = _event_state(fake_stripe.bank_payout(payee.stripe_account_id, 20000, "eur")[0])
    bank_payout = record_bank_payout(state=bank.bank_payout_state, now=now)
    payee.refresh_from_db()
    return {
        "order": order,
        "payment": payment,
        "refund": refund,
        "dispute": dispute,
        "payee": payee,
        "payout": payout,
        "bank_payout": bank_payout,
        "fake": fake_stripe,
    }


@pytest.fixture
def sandbox_dispute(make_paid_order):
    """A sandbox order, paid, refunded in part and disputed: all its references plain text."""
    order = make_paid_order()
    payment = order.payments.get()
    refund = request_refund(order=order, amount_minor=500, reason="requested_by_customer", now=timezone.now())
    execute_refund(refund_id=refund.pk, now=timezone.now())
    state = ProviderDisputeState(
        provider_ref="sbx_dp_0001",
        payment_ref=payment.provider_payment_ref or payment.provider_ref,
        amount=Money(2000, "EUR"),
        status="open",
        reason="product_not_received",
    )
    return apply_provider_dispute(payment=payment, state=state, now=timezone.now())


# --- links to the dashboard -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "dashboard"),
    [("sk_test_fake", TEST_DASHBOARD), ("sk_live_51Abc", LIVE_DASHBOARD), ("rk_live_9", LIVE_DASHBOARD)],
)
def test_stripe_references_link_to_the_dashboard_of_the_keys_mode(admin_client, stripe_books, settings, key, dashboard):
    settings.STRIPE_SECRET_KEY = key
    payment, refund, dispute = stripe_books["payment"], stripe_books["refund"], stripe_books["dispute"]
    payee, payout = stripe_books["payee"], stripe_books["payout"]
    payment.refresh_from_db()
    session, intent, charge = payment.provider_ref, payment.provider_payment_ref, payment.provider_charge_ref
    assert session.startswith("cs_test_")
    assert intent.startswith("pi_")
    assert charge.startswith("ch_")
    assert refund.provider_ref.startswith("re_")
    assert dispute.provider_ref.startswith("dp_")
    assert payee.stripe_account_id.startswith("acct_")
    assert payout.provider_ref.startswith("tr_")

    pages = {
        f"/admin/payments/payment/{payment.pk}/change/": [
            _link(f"{dashboard}checkout/sessions/{session}", session),
            _link(f"{dashboard}payments/{intent}", intent),
            _link(f"{dashboard}payments/{charge}", charge),
        ],
        f"/admin/refunds/refund/{refund.pk}/change/": [
            _link(f"{dashboard}refunds/{refund.provider_ref}", refund.provider_ref)
        ],
        "/admin/refunds/dispute/": [_link(f"{dashboard}disputes/{dispute.provider_ref}", dispute.provider_ref)],
        f"/admin/refunds/dispute/{dispute.pk}/change/": [
            _link(f"{dashboard}disputes/{dispute.provider_ref}", dispute.provider_ref),
            _link(f"{dashboard}payments/{intent}", intent),
        ],
        "/admin/commissions/payout/": [
            _link(f"{dashboard}connect/transfers/{payout.provider_ref}", payout.provider_ref)
        ],
        f"/admin/commissions/payout/{payout.pk}/change/": [
            _link(f"{dashboard}connect/transfers/{payout.provider_ref}", payout.provider_ref)
        ],
        f"/admin/commissions/payee/{payee.pk}/change/": [
            _link(f"{dashboard}connect/accounts/{payee.stripe_account_id}", payee.stripe_account_id)
        ],
        "/admin/commissions/connectedaccountpayout/": [
            _link(f"{dashboard}connect/accounts/{payee.stripe_account_id}", payee.stripe_account_id)
        ],
    }
    for url, links in pages.items():
        text = _text(admin_client.get(url))
        for link in links:
            assert link in text, (url, link)
        if dashboard == LIVE_DASHBOARD:
            assert "dashboard.stripe.com/test/" not in text, url


def test_every_dashboard_link_opens_a_new_tab_without_an_opener(admin_client, stripe_books):
    for url in [
        f"/admin/payments/payment/{stripe_books['payment'].pk}/change/",
        f"/admin/refunds/dispute/{stripe_books['dispute'].pk}/change/",
        f"/admin/commissions/payee/{stripe_books['payee'].pk}/change/",
        "/admin/commissions/payout/",
    ]:
        anchors = re.findall(r'<a [^>]*href="https://dashboard\.stripe\.com/[^"]*"[^>]*>', _text(admin_client.get(url)))
        assert anchors, url
        for anchor in anchors:
            assert 'target="_blank"' in anchor, anchor
            assert 'rel="noopener noreferrer"' in anchor, anchor


def test_sandbox_rows_show_their_references_as_plain_text(admin_client, sandbox_dispute):
    payment = sandbox_dispute.payment
    refund = Refund.objects.get(payment=payment)
    assert payment.provider_ref
    assert refund.provider_ref
    pages = {
        f"/admin/payments/payment/{payment.pk}/change/": [payment.provider_ref],
        f"/admin/refunds/refund/{refund.pk}/change/": [refund.provider_ref],
        "/admin/refunds/dispute/": ["sbx_dp_0001"],
        f"/admin/refunds/dispute/{sandbox_dispute.pk}/change/": ["sbx_dp_0001"],
    }
    for url, refs in pages.items():
        text = _text(admin_client.get(url))
        assert "dashboard.stripe.com" not in text, url
        for ref in refs:
            assert ref in text, (url, ref)
            assert f">{ref}</a>" not in text, (url, ref)


# --- disputes -------------------------------------------------------------------------------------------


def test_dispute_list_shows_the_dispute_its_order_payment_money_and_totals(admin_client, stripe_books, sandbox_dispute):
    dispute = stripe_books["dispute"]
    response = admin_client.get("/admin/refunds/dispute/")
    text = _text(response)
    assert response.context_data["cl"].result_count == 2
    row = re.search(rf"<tr[^>]*>(?:(?!</tr>).)*{dispute.provider_ref}(?:(?!</tr>).)*</tr>", text, re.S).group(0)
    for shown in [
        f'href="/admin/payments/order/{dispute.order_id}/change/">{dispute.order.short_token}</a>',
        f'href="/admin/payments/payment/{dispute.payment_id}/change/">#{dispute.payment_id}</a>',
        "€50.00",  # disputed
        "Open (needs response)",
        "fraudulent",
    ]:
        assert shown in row, shown
    # 50.00 of the 248.00 still unrefunded: the payee's share of it is held (226.78 - 8.79 refunded) * 50/248
    assert dispute.held_minor > 0
    assert f"€{dispute.held_minor // 100}.{dispute.held_minor % 100:02d}" in row
    evidence_due = timezone.localtime(dispute.evidence_due_by)
    assert evidence_due.strftime("%Y") in row
    totals = re.sub(r"\s+", " ", re.search(r'<div class="tollgate-totals".*?</div>', text, re.S).group(0))
    assert "<dt>Disputed</dt> <dd>€70.00</dd>" in totals  # 50.00 at Stripe + 20.00 in the sandbox


def test_disputes_are_filtered_and_searched(admin_client, stripe_books, sandbox_dispute):
    def count(**query):
        response = admin_client.get("/admin/refunds/dispute/", query)
        assert response.status_code == 200, query
        return response.context_data["cl"].result_count

    dispute = stripe_books["dispute"]
    assert count(status="open") == 2
    assert count(status="lost") == 0
    assert count(reason="fraudulent") == 1
    assert count(currency="EUR") == 2
    assert count(q=dispute.provider_ref) == 1
    assert count(q=str(dispute.order.token)) == 1
    assert count(q=str(sandbox_dispute.order.token)[:8]) == 1
    assert count(payment__id__exact=dispute.payment_id) == 1  # the payment page's "Disputes of this payment"


def test_disputes_are_view_only_and_never_deleted(admin_client, stripe_books):
    dispute = stripe_books["dispute"]
    base = "/admin/refunds/dispute/"
    assert admin_client.get(f"{base}add/").status_code == 403
    assert admin_client.post(f"{base}{dispute.pk}/change/", {"status": "won"}).status_code == 403
    assert admin_client.post(f"{base}{dispute.pk}/delete/", {"post": "yes"}).status_code == 403
    assert 'value="delete_selected"' not in _text(admin_client.get(base))
    page = _text(admin_client.get(f"{base}{dispute.pk}/change/"))
    assert 'name="_save"' not in page
    for shown in ["€50.00", "needs_response", "fraudulent"]:
        assert shown in page, shown
    assert admin_client.get(f"{base}{dispute.pk}/history/").status_code == 200
    dispute.refresh_from_db()
    assert dispute.status == "open"
    assert Dispute.objects.count() == 1


# --- payouts --------------------------------------------------------------------------------------------


def test_payout_list_shows_payee_amount_status_transfer_and_totals(admin_client, stripe_books):
    payout, payee = stripe_books["payout"], stripe_books["payee"]
    response = admin_client.get("/admin/commissions/payout/")
    text = _text(response)
    for shown in [
        f'href="/admin/commissions/payee/{payee.pk}/change/">{payee}</a>',
        "€200.00",
        "Paid",
        payout.provider_ref,
    ]:
        assert shown in text, shown
    totals = re.sub(r"\s+", " ", re.search(r'<div class="tollgate-totals".*?</div>', text, re.S).group(0))
    assert "<dt>Amount</dt> <dd>€200.00</dd>" in totals
    assert "<dt>Reversed</dt> <dd>€0.00</dd>" in totals
    assert admin_client.get("/admin/commissions/payout/", {"status": "failed"}).context_data["cl"].result_count == 0
    assert admin_client.get("/admin/commissions/payout/", {"currency": "EUR"}).context_data["cl"].result_count == 1


def test_payouts_and_bank_payouts_are_view_only(admin_client, stripe_books):
    payout, bank_payout = stripe_books["payout"], stripe_books["bank_payout"]
    for base, obj in [
        ("/admin/commissions/payout/", payout),
        ("/admin/commissions/connectedaccountpayout/", bank_payout),
    ]:
        assert admin_client.get(f"{base}add/").status_code == 403, base
        assert admin_client.post(f"{base}{obj.pk}/change/", {"status": "failed"}).status_code == 403, base
        assert admin_client.post(f"{base}{obj.pk}/delete/", {"post": "yes"}).status_code == 403, base
        assert 'name="_save"' not in _text(admin_client.get(f"{base}{obj.pk}/change/")), base
    payout.refresh_from_db()
    bank_payout.refresh_from_db()
    assert (payout.status, bank_payout.status) == (Payout.Status.PAID, "paid")


def test_bank_payout_list_shows_the_payee_and_the_money(admin_client, stripe_books):
    bank_payout, payee = stripe_books["bank_payout"], stripe_books["payee"]
    text = _text(admin_client.get("/admin/commissions/connectedaccountpayout/"))
    for shown in [bank_payout.provider_ref, str(payee), "€200.00", "paid"]:
        assert shown in text, shown
    assert ConnectedAccountPayout.objects.count() == 1


# --- the payee's Connect status -------------------------------------------------------------------------


def test_payee_page_shows_its_connect_status_and_requirements_in_words(admin_client, stripe_books):
    payee = stripe_books["payee"]
    text = _text(admin_client.get(f"/admin/commissions/payee/{payee.pk}/change/"))
    section = text[text.index("Stripe Connect") :]
    for shown in [
        "Charges enabled",
        "Payouts enabled",
        "Details submitted",
        "Requirements currently due",
        "<li>External account <code>external_account</code></li>",
        "<li>Tos acceptance › date <code>tos_acceptance.date</code></li>",
        "Disabled: Requirements › past due",
        "Payouts to this payee",
    ]:
        assert shown in section, shown
    assert section.count('alt="False"') >= 3  # charges, payouts, details submitted

    enabled = stripe_books["fake"].account_updated(payee.stripe_account_id, enabled=True)[0]
    account = _event_state(enabled)
    apply_connected_account_state(state=account.account_state, now=timezone.now())
    text = _text(admin_client.get(f"/admin/commissions/payee/{payee.pk}/change/"))
    section = text[text.index("Stripe Connect") :]
    assert "<li>" not in section.split("Ledger")[0]
    assert 'alt="True"' in section
    assert Payee.objects.get(pk=payee.pk).stripe_payouts_enabled


def test_requirements_from_stripe_are_escaped(admin_client, payee):
    Payee.objects.filter(pk=payee.pk).update(
        stripe_account_id="acct_hostile",
        stripe_requirements={"currently_due": ["<script>alert(1)</script>"], "disabled_reason": "<b>x</b>"},
        stripe_synced_at=timezone.now(),
    )
    text = _text(admin_client.get(f"/admin/commissions/payee/{payee.pk}/change/"))
    assert "<script>alert(1)</script>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<b>x</b>" not in text


def test_a_payee_not_onboarded_says_so_and_the_add_page_has_no_connect_section(admin_client, payee):
    text = _text(admin_client.get(f"/admin/commissions/payee/{payee.pk}/change/"))
    assert "Not onboarded yet" in text
    assert "dashboard.stripe.com" not in text
    assert "Stripe Connect" not in _text(admin_client.get("/admin/commissions/payee/add/"))


def test_payment_page_links_to_its_disputes(admin_client, stripe_books):
    payment = stripe_books["payment"]
    text = _text(admin_client.get(f"/admin/payments/payment/{payment.pk}/change/"))
    assert f"/admin/refunds/dispute/?payment__id__exact={payment.pk}" in text
    assert Payment.objects.filter(provider="stripe").count() == 1


def test_stripe_pages_carry_no_inline_script_or_style(admin_client, stripe_books):
    for url in [
        f"/admin/commissions/payee/{stripe_books['payee'].pk}/change/",
        "/admin/commissions/payout/",
        f"/admin/commissions/payout/{stripe_books['payout'].pk}/change/",
        "/admin/commissions/connectedaccountpayout/",
        "/admin/refunds/dispute/",
        f"/admin/refunds/dispute/{stripe_books['dispute'].pk}/change/",
    ]:
        text = _text(admin_client.get(url))
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), url
        assert 'style="' not in text, url
