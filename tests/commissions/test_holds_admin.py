"""The payee admin (issue 8): hold / lift / release-now actions behind `commissions.hold_payee`, each asking for
a reason on its own page; the payout and release settings with IBAN and BIC checked by python-stdnum."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from core.models import AuditEntry
from ledger import accounts
from ledger.selectors import account_balance, check_ledger
from payments.models import OrderLine
from tests.factories import staff_client
from tests.invoicing.helpers import line, pay

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/commissions/payee/"
IBAN = "CZ6508000000192000145399"


def holder():
    return staff_client("commissions.view_payee", "commissions.hold_payee")


def action(client, name: str, payee, **extra):
    return client.post(CHANGELIST, {"action": name, "_selected_action": [payee.pk], **extra})


def balances(payee):
    return (
        account_balance(accounts.payee_pending(payee.pk), "EUR").amount_minor,
        account_balance(accounts.payee_available(payee.pk), "EUR").amount_minor,
    )


# --- permission ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["hold_payouts", "lift_payout_hold", "release_pending_now"])
def test_the_actions_need_the_hold_permission(payee, name):
    pay(lines=[line(payee, 10000)])
    payee.payouts_held = name == "lift_payout_hold"
    payee.save()
    client = staff_client("commissions.view_payee", "commissions.change_payee")

    listing = client.get(CHANGELIST)
    assert name not in listing.content.decode()
    response = action(client, name, payee, apply="1", reason="because")

    # Django does not know the action for this user: the list again, no reason page, nothing ran.
    assert response.status_code in (200, 302)
    assert 'name="reason"' not in response.content.decode()
    payee.refresh_from_db()
    assert payee.payouts_held == (name == "lift_payout_hold")
    assert balances(payee)[1] == 0
    assert not AuditEntry.objects.filter(action__startswith="payee.").exists()
    # and without even view access to payees, the admin refuses outright
    assert action(staff_client(), name, payee, apply="1", reason="x").status_code == 403


def test_the_actions_are_listed_for_a_holder(payee):
    html = holder().get(CHANGELIST).content.decode()
    for name in ("hold_payouts", "lift_payout_hold", "release_pending_now"):
        assert f'value="{name}"' in html


# --- hold and lift ---------------------------------------------------------------------------------------


def test_hold_asks_for_a_reason_then_holds_with_an_audit_entry(payee):
    client = holder()
    page = action(client, "hold_payouts", payee)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="reason"' in html
    assert "csrfmiddlewaretoken" in html
    assert str(payee) in html

    again = action(client, "hold_payouts", payee, apply="1", reason="   ")
    assert again.status_code == 200
    assert "Give a reason" in again.content.decode()
    payee.refresh_from_db()
    assert not payee.payouts_held

    done = action(client, "hold_payouts", payee, apply="1", reason="Chargeback spike")
    assert done.status_code == 302
    payee.refresh_from_db()
    assert (payee.payouts_held, payee.hold_reason) == (True, "Chargeback spike")
    entry = AuditEntry.objects.get(action="payee.held")
    assert (entry.actor_id, entry.message, entry.object_id) == (client.user.pk, "Chargeback spike", str(payee.pk))
    change = client.get(f"{CHANGELIST}{payee.pk}/change/").content.decode()
    assert "Chargeback spike" in change

    lifted = action(client, "lift_payout_hold", payee, apply="1", reason="Resolved")
    assert lifted.status_code == 302
    payee.refresh_from_db()
    assert (payee.payouts_held, payee.hold_reason) == (False, "")
    assert AuditEntry.objects.get(action="payee.hold_lifted").message == "Resolved"


def test_release_now_from_the_admin(payee):
    pay(lines=[line(payee, 10000), line(payee, 2500)])
    share = sum(OrderLine.objects.values_list("payee_share_minor", flat=True))
    client = holder()
    assert action(client, "release_pending_now", payee).status_code == 200
    assert balances(payee) == (share, 0)

    response = action(client, "release_pending_now", payee, apply="1", reason="Delivered early, confirmed")
    assert response.status_code == 302
    assert balances(payee) == (0, share)
    entry = AuditEntry.objects.get(action="payee.released_now")
    assert (entry.actor_id, entry.amount_minor, entry.message) == (client.user.pk, share, "Delivered early, confirmed")
    assert check_ledger().ok


# --- payout and release settings ----------------------------------------------------------------------------


def form_data(payee, **changes):
    data = {
        "kind": payee.kind,
        "legal_name": payee.legal_name,
        "country": payee.country,
        "email": payee.email,
        "status": "active",
        "dispute_loss_bearer": "payee",
        "dispute_fee_bearer": "platform",
        "release_delay_days": "10",
        "event_release_delay_days": "2",
        "payout_method": "sepa_credit_transfer",
        "payout_schedule": "monthly",
        "payout_minimum_minor": "5000",
        "payout_method_verified": "on",
        "bank_account_holder": "Autozvuk Praha s.r.o.",
        "iban": "cz65 0800 0000 1920 0014 5399",
        "bic": "gibaczpx",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


@pytest.fixture
def editor():
    return staff_client("commissions.view_payee", "commissions.change_payee")


def test_payout_settings_are_saved_with_the_iban_checked_and_shown(editor, payee):
    response = editor.post(f"{CHANGELIST}{payee.pk}/change/", form_data(payee))
    assert response.status_code == 302, response.context["adminform"].form.errors
    payee.refresh_from_db()
    assert (payee.iban, payee.bic) == (IBAN, "GIBACZPX")
    assert (payee.release_delay_days, payee.event_release_delay_days) == (10, 2)
    assert (payee.payout_method, payee.payout_schedule, payee.payout_minimum_minor) == (
        "sepa_credit_transfer",
        "monthly",
        5000,
    )
    assert payee.payout_method_verified
    html = editor.get(f"{CHANGELIST}{payee.pk}/change/").content.decode()
    assert "CZ65 0800 0000 1920 0014 5399" in html
    # The hold is not editable in the form: only the audited actions change it.
    assert 'name="payouts_held"' not in html
    assert 'name="hold_reason"' not in html


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"iban": "CZ6508000000192000145398"}, "iban"),  # check digits
        ({"iban": "XX12"}, "iban"),
        ({"bic": "GIBA"}, "bic"),
        ({"iban": ""}, "iban"),  # SEPA needs one
        ({"bank_account_holder": ""}, "bank_account_holder"),
        ({"payout_method": "paypal", "paypal_email": ""}, "paypal_email"),
    ],
)
def test_bad_payout_details_are_refused(editor, payee, changes, field):
    response = editor.post(f"{CHANGELIST}{payee.pk}/change/", form_data(payee, **changes))
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    payee.refresh_from_db()
    assert payee.iban == ""


def test_new_bank_details_are_no_longer_verified(editor, payee):
    editor.post(f"{CHANGELIST}{payee.pk}/change/", form_data(payee))
    payee.refresh_from_db()
    assert payee.payout_method_verified
    other_iban = "DE89370400440532013000"
    response = editor.post(f"{CHANGELIST}{payee.pk}/change/", form_data(payee, iban=other_iban, bic="COBADEFFXXX"))
    assert response.status_code == 302
    payee.refresh_from_db()
    assert (payee.iban, payee.payout_method_verified) == (other_iban, False)


def test_a_held_payee_is_shown_held_in_the_list(payee):
    from commissions.release import hold_payee

    hold_payee(payee=payee, reason="KYC", actor=None, now=timezone.now() - timedelta(minutes=1))
    response = holder().get(CHANGELIST, {"payouts_held__exact": "1"})
    assert list(response.context_data["cl"].result_list) == [payee]
