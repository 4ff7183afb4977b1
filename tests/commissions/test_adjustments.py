"""Staff adjustments of a payee's balance (`commissions.adjustments`): a credit or debit of the payee's available
balance against `platform:payee_adjustments`, with a reason, behind `commissions.adjust_payee_balance`; posted
once per one-time token; a debit may leave a debt that the next payout run nets; the statement shows it under
"Adjustments" with the reason; and the payee admin's "Adjust balance…" page."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from commissions.adjustments import adjust_payee_balance
from commissions.models import PayoutRun
from commissions.payouts import runs
from commissions.statements.figures import statement_figures
from core.audit import AuditEntry
from core.errors import DomainError, ErrorCode
from ledger import accounts
from ledger.errors import LedgerConflict
from ledger.models import LedgerTransaction
from ledger.money import Money
from ledger.selectors import account_balance, check_ledger
from tests.commissions.payout_helpers import available, fund, staff, stripe_payee
from tests.factories import staff_client

pytestmark = pytest.mark.django_db

PERM = "commissions.adjust_payee_balance"
ADMIN_PERMS = ("commissions.view_payee", "commissions.change_payee", PERM)


def expense(currency="EUR") -> int:
    return account_balance(accounts.PLATFORM_PAYEE_ADJUSTMENTS, currency).amount_minor


def adjust(
    payee, amount_minor: int, currency="EUR", *, reason="Goodwill for a delayed release", actor=None, token=None
):
    return adjust_payee_balance(
        payee=payee,
        amount=Money(amount_minor, currency),
        reason=reason,
        actor=actor or staff(PERM),
        now=timezone.now(),
        token=token or uuid.uuid4().hex,
    )


def nothing_written():
    return not LedgerTransaction.objects.filter(kind="payee_adjustment").exists() and not (
        AuditEntry.objects.filter(action="payee.balance_adjusted").exists()
    )


# --- the service -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("amount", [1250, -1250], ids=["credit", "debit"])
def test_an_adjustment_moves_available_by_exactly_the_amount_against_the_expense_account(amount):
    payee = stripe_payee()
    fund(payee, 5000)

    tx = adjust(payee, amount)

    assert available(payee) == 5000 + amount
    # Money is conserved: what the payee gained (or lost) the platform's expense account shows (or recovers).
    assert expense() == amount
    assert (available(payee) - 5000) - expense() == 0
    assert check_ledger().ok
    assert (tx.kind, tx.memo) == ("payee_adjustment", "Goodwill for a delayed release")
    assert tx.metadata["payee"] == payee.pk
    assert tx.metadata["reason"] == "Goodwill for a delayed release"
    entry = AuditEntry.objects.get(action="payee.balance_adjusted")
    assert (entry.object_id, entry.amount_minor, entry.currency) == (str(payee.pk), amount, "EUR")
    assert entry.message == "Goodwill for a delayed release"
    assert tx.metadata["actor"] == entry.actor_id


def test_a_debit_may_take_available_below_zero_and_the_next_payout_nets_the_debt():
    payee = stripe_payee()
    fund(payee, 2000)

    adjust(payee, -5000, reason="Chargeback fee recovered")
    assert available(payee) == -3000
    assert check_ledger().ok

    fund(payee, 10000)  # new sales
    run = runs.start_run(trigger=PayoutRun.Trigger.STAFF, actor=None, now=timezone.now(), payee_ids=[payee.pk])

    assert run.payouts.get().amount_minor == 7000
    assert available(payee) == 0
    assert check_ledger().ok


@pytest.mark.parametrize(
    ("kwargs", "code", "status"),
    [
        ({"reason": ""}, ErrorCode.VALIDATION_ERROR, 400),
        ({"reason": "   "}, ErrorCode.VALIDATION_ERROR, 400),
        ({"reason": "x" * 301}, ErrorCode.VALIDATION_ERROR, 400),
        ({"amount_minor": 0}, ErrorCode.VALIDATION_ERROR, 400),
        ({"amount_minor": 10**15 + 1}, ErrorCode.AMOUNT_TOO_LARGE, 400),
        ({"token": "not a token!"}, ErrorCode.VALIDATION_ERROR, 400),
        ({"actor": "no-permission"}, ErrorCode.PERMISSION_DENIED, 403),
        ({"actor": "anonymous"}, ErrorCode.PERMISSION_DENIED, 403),
    ],
    ids=["no-reason", "blank-reason", "long-reason", "zero", "too-large", "bad-token", "no-permission", "anonymous"],
)
def test_bad_input_is_refused_with_its_code_and_nothing_is_written(kwargs, code, status):
    from django.contrib.auth.models import AnonymousUser

    payee = stripe_payee()
    actor = {"no-permission": staff("commissions.change_payee"), "anonymous": AnonymousUser()}.get(
        kwargs.pop("actor", None), staff(PERM)
    )
    args = {"reason": "Correction", "amount_minor": 1000, "token": uuid.uuid4().hex, **kwargs}

    with pytest.raises(DomainError) as exc:
        adjust(payee, args["amount_minor"], reason=args["reason"], actor=actor, token=args["token"])

    assert (exc.value.code, exc.value.status) == (code, status)
    assert nothing_written()
    assert available(payee) == 0


def test_a_currency_the_ledger_does_not_accept_is_refused():
    payee = stripe_payee()
    forged = Money(1000, "EUR")
    object.__setattr__(forged, "currency", "XXX")  # Money itself refuses "XXX"; the service checks again

    with pytest.raises(DomainError) as exc:
        adjust_payee_balance(payee=payee, amount=forged, reason="x", actor=staff(PERM), now=timezone.now(), token="t1")

    assert (exc.value.code, exc.value.status) == (ErrorCode.CURRENCY_NOT_ENABLED, 400)
    assert nothing_written()


def test_the_same_token_posts_once_and_audits_once():
    payee = stripe_payee()
    actor = staff(PERM)

    first = adjust(payee, 1500, actor=actor, token="form-token-1")
    again = adjust(payee, 1500, actor=actor, token="form-token-1")

    assert first.pk == again.pk
    assert available(payee) == 1500
    assert LedgerTransaction.objects.filter(kind="payee_adjustment").count() == 1
    assert AuditEntry.objects.filter(action="payee.balance_adjusted").count() == 1
    # Another amount under a used token is a conflict, not a second posting.
    with pytest.raises(LedgerConflict):
        adjust(payee, 2500, actor=actor, token="form-token-1")
    assert available(payee) == 1500
    # A new token is a new adjustment.
    adjust(payee, 1500, actor=actor, token="form-token-2")
    assert available(payee) == 3000
    assert check_ledger().ok


def test_the_statement_shows_the_adjustment_under_adjustments_with_the_reason():
    payee = stripe_payee()
    credit_tx = adjust(payee, 2500, reason="Compensation for the delayed release in October")
    debit_tx = adjust(payee, -700, reason="Label printing fee")

    figures = statement_figures(
        payee_id=payee.pk,
        currency="EUR",
        start=credit_tx.posted_at - timedelta(seconds=1),
        end=debit_tx.posted_at + timedelta(seconds=1),
    )

    assert figures.figures["adjustments"] == 2500 - 700
    items = {item.transaction_id: item for item in figures.items}
    assert (items[str(credit_tx.pk)].label, items[str(credit_tx.pk)].memo) == (
        "Adjustment",
        "Compensation for the delayed release in October",
    )
    assert items[str(credit_tx.pk)].figures == {"adjustments": 2500}
    assert items[str(debit_tx.pk)].figures == {"adjustments": -700}
    assert items[str(debit_tx.pk)].memo == "Label printing fee"
    assert figures.closing == figures.opening + 1800


# --- the admin page ------------------------------------------------------------------------------------------


def adjust_url(payee) -> str:
    return f"/admin/commissions/payee/{payee.pk}/adjust-balance/"


def page_token(response) -> str:
    html = response.content.decode()
    marker = 'name="token" value="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


def post(client, payee, **fields):
    token = page_token(client.get(adjust_url(payee)))
    data = {"currency": "EUR", "direction": "credit", "amount": "12.50", "reason": "Goodwill", "token": token}
    return client.post(adjust_url(payee), data | fields)


def test_the_page_needs_the_adjust_permission(payee):
    client = staff_client("commissions.view_payee", "commissions.change_payee")

    assert client.get(adjust_url(payee)).status_code == 403
    response = client.post(
        adjust_url(payee),
        {"currency": "EUR", "direction": "credit", "amount": "10.00", "reason": "x", "token": str(uuid.uuid4())},
    )
    assert response.status_code == 403
    assert "adjust-balance" not in client.get(f"/admin/commissions/payee/{payee.pk}/change/").content.decode()
    assert nothing_written()


def test_the_page_renders_with_a_csrf_token_and_a_one_time_token(payee):
    client = staff_client(*ADMIN_PERMS)

    change_page = client.get(f"/admin/commissions/payee/{payee.pk}/change/").content.decode()
    assert adjust_url(payee) in change_page
    response = client.get(adjust_url(payee))

    assert response.status_code == 200
    html = response.content.decode()
    assert "csrfmiddlewaretoken" in html
    assert 'name="reason"' in html
    assert "Shown to the payee" in html
    uuid.UUID(page_token(response))
    assert page_token(client.get(adjust_url(payee))) != page_token(response)


def test_a_view_only_user_with_the_permission_may_adjust(payee):
    client = staff_client("commissions.view_payee", PERM)

    response = post(client, payee)

    assert response.status_code == 302
    assert available(payee) == 1250


def test_posting_credits_redirects_to_the_payee_and_audits(payee):
    client = staff_client(*ADMIN_PERMS)

    response = post(client, payee, amount="12.50", reason="Shipping label refund")

    assert response.status_code == 302
    assert response["Location"] == f"/admin/commissions/payee/{payee.pk}/change/"
    assert available(payee) == 1250
    assert check_ledger().ok
    entry = AuditEntry.objects.get(action="payee.balance_adjusted")
    assert (entry.actor_id, entry.amount_minor, entry.message) == (client.user.pk, 1250, "Shipping label refund")
    followed = client.get(response["Location"]).content.decode()
    assert "The available EUR balance is now €12.50" in followed


def test_a_double_submit_posts_once(payee):
    client = staff_client(*ADMIN_PERMS)
    token = page_token(client.get(adjust_url(payee)))
    data = {"currency": "EUR", "direction": "credit", "amount": "5.00", "reason": "Goodwill", "token": token}

    assert client.post(adjust_url(payee), data).status_code == 302
    assert client.post(adjust_url(payee), data).status_code == 302

    assert available(payee) == 500
    assert LedgerTransaction.objects.filter(kind="payee_adjustment").count() == 1


@pytest.mark.parametrize(
    ("fields", "field_error"),
    [
        ({"amount": "12.345"}, "at most 2 decimal places"),
        ({"amount": "abc"}, "Enter digits"),
        ({"amount": "1e3"}, "Enter digits"),
        ({"amount": "-5.00"}, "Enter digits"),
        ({"amount": "1_000"}, "Enter digits"),
        ({"amount": "0.00"}, "greater than zero"),
        ({"amount": "99999999999999999"}, "too large"),
        ({"amount": "1.5", "currency": "JPY"}, "at most 0 decimal places"),
        ({"currency": "XXX"}, "Select a valid choice"),
        ({"reason": ""}, "This field is required"),
        ({"reason": "x" * 301}, "at most 300 characters"),
        ({"direction": "sideways"}, "Select a valid choice"),
        ({"token": "not-a-uuid"}, "This form has expired"),
    ],
    ids=[
        "three-decimals",
        "letters",
        "exponent",
        "signed",
        "underscore",
        "zero",
        "huge",
        "jpy-decimals",
        "currency",
        "no-reason",
        "long-reason",
        "direction",
        "token",
    ],
)
def test_bad_input_shows_a_form_error_and_writes_nothing(payee, fields, field_error):
    client = staff_client(*ADMIN_PERMS)

    response = post(client, payee, **fields)

    assert response.status_code == 200
    assert field_error in response.content.decode()
    assert nothing_written()


def test_a_debit_below_zero_asks_for_a_confirmation_first():
    payee = stripe_payee()
    fund(payee, 1000)
    client = staff_client(*ADMIN_PERMS)
    token = page_token(client.get(adjust_url(payee)))
    data = {"currency": "EUR", "direction": "debit", "amount": "25.00", "reason": "Fee recovered", "token": token}

    warned = client.post(adjust_url(payee), data)

    assert warned.status_code == 200
    html = warned.content.decode()
    assert "below zero" in html
    assert "-€15.00" in html or "−€15.00" in html
    assert 'type="checkbox" name="confirm_negative"' in html
    assert nothing_written()

    confirmed = client.post(adjust_url(payee), data | {"confirm_negative": "on"})

    assert confirmed.status_code == 302
    assert available(payee) == -1500
    assert expense() == -2500
    assert check_ledger().ok


def test_a_debit_within_the_balance_needs_no_confirmation():
    payee = stripe_payee()
    fund(payee, 5000)
    client = staff_client(*ADMIN_PERMS)

    response = post(client, payee, direction="debit", amount="20.00")

    assert response.status_code == 302
    assert available(payee) == 3000


def test_the_currency_choices_are_the_payees_and_the_enabled_ones(settings):
    settings.TOLLGATE_ENABLED_CURRENCIES = ["EUR", "CZK"]
    payee = stripe_payee()
    fund(payee, 1000, "KWD")  # a currency no longer enabled, but the payee has a balance in it
    client = staff_client(*ADMIN_PERMS)

    html = client.get(adjust_url(payee)).content.decode()
    assert all(f'value="{c}"' in html for c in ("KWD", "EUR", "CZK"))

    response = post(client, payee, currency="KWD", amount="1.234")
    assert response.status_code == 302
    assert available(payee, "KWD") == 2234
