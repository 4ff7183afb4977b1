"""Commission rules in the admin: staff with the permission add and end rules, overlapping periods of one
scope are refused, every change has history, and a rule used on order lines keeps its terms."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from commissions.models import CommissionRule
from core.models import AuditEntry
from payments.services.orders import LineInput, create_order
from tests.admin.conftest import staff_client  # noqa: F401
from tests.factories import PayeeFactory

pytestmark = pytest.mark.django_db

BASE = "/admin/commissions/commissionrule/"
PERMS = ("commissions.view_commissionrule", "commissions.add_commissionrule", "commissions.change_commissionrule")


def form(*, payee=None, kind="", currency="", bps=800, start="2026-01-01", end="", **extra):
    data = {
        "payee": payee.pk if payee else "",
        "line_kind": kind,
        "currency": currency,
        "percent_bps": bps,
        "fixed_minor": 0,
        "fixed_per": "line",
        "min_minor": "",
        "max_minor": "",
        "valid_from_0": start,
        "valid_from_1": "00:00:00",
        "valid_to_0": end,
        "valid_to_1": "00:00:00" if end else "",
        "note": "",
    }
    data.update(extra)
    return data


@pytest.fixture
def seller():
    return PayeeFactory(legal_name="Autozvuk Praha s.r.o.")


@pytest.fixture
def editor(staff_client):  # noqa: F811
    return staff_client(*PERMS, "commissions.view_payee")


def errors_of(response) -> str:
    assert response.status_code == 200  # the form again, with its errors
    return str(response.context["adminform"].form.errors)


def test_staff_with_the_permission_add_a_rule_with_history_and_audit(editor, seller):
    assert editor.get(f"{BASE}add/").status_code == 200
    response = editor.post(f"{BASE}add/", form(payee=seller, kind="goods", bps=850, note="Negotiated"))

    assert response.status_code == 302, errors_of(response)
    rule = CommissionRule.objects.get()
    assert (rule.payee, rule.line_kind, rule.percent_bps, rule.valid_to) == (seller, "goods", 850, None)
    assert rule.history.count() == 1
    assert rule.history.get().history_user == editor.user
    assert AuditEntry.objects.filter(action="admin.commissionrule.create", object_id=str(rule.pk)).exists()
    assert editor.get(f"{BASE}{rule.pk}/history/").status_code == 200
    assert editor.get(BASE).status_code == 200


def test_an_overlapping_rule_of_the_same_scope_is_refused_with_a_clear_message(editor, seller):
    assert editor.post(f"{BASE}add/", form(payee=seller, start="2026-01-01")).status_code == 302
    response = editor.post(f"{BASE}add/", form(payee=seller, bps=900, start="2026-06-01"))

    message = errors_of(response)
    first = CommissionRule.objects.get()
    assert f"overlaps rule #{first.pk} of the same scope" in message
    assert "End that rule first" in message
    assert CommissionRule.objects.count() == 1


def test_ending_the_old_rule_then_adding_the_new_one_is_accepted(editor, seller):
    editor.post(f"{BASE}add/", form(payee=seller, start="2026-01-01"))
    old = CommissionRule.objects.get()
    ended = editor.post(f"{BASE}{old.pk}/change/", form(payee=seller, start="2026-01-01", end="2026-06-01"))
    assert ended.status_code == 302, errors_of(ended)
    added = editor.post(f"{BASE}add/", form(payee=seller, bps=900, start="2026-06-01"))
    assert added.status_code == 302, errors_of(added)
    assert CommissionRule.objects.count() == 2
    assert old.history.count() == 2


@pytest.mark.parametrize(
    "other_scope",
    [{"kind": "service"}, {"currency": "EUR"}, {"payee": None}],
)
def test_rules_of_another_scope_may_overlap(editor, seller, other_scope):
    editor.post(f"{BASE}add/", form(payee=seller))
    scope = {"payee": seller, **other_scope}
    response = editor.post(f"{BASE}add/", form(**scope, bps=500))
    assert response.status_code == 302, errors_of(response)


def test_min_above_max_is_refused(editor, seller):
    response = editor.post(f"{BASE}add/", form(payee=seller, currency="EUR", min_minor=500, max_minor=100))
    assert "The maximum must not be below the minimum." in errors_of(response)
    assert not CommissionRule.objects.exists()


@pytest.mark.parametrize("amounts", [{"fixed_minor": 30}, {"min_minor": 100}, {"max_minor": 1000}])
def test_amounts_need_a_currency(editor, seller, amounts):
    response = editor.post(f"{BASE}add/", form(payee=seller, **amounts))
    assert "needs a currency" in errors_of(response)
    assert not CommissionRule.objects.exists()


def test_an_unknown_currency_is_refused_and_a_known_one_upper_cased(editor, seller):
    assert "not a currency we know" in errors_of(editor.post(f"{BASE}add/", form(payee=seller, currency="XXQ")))
    response = editor.post(f"{BASE}add/", form(payee=seller, currency="eur", fixed_minor=30))
    assert response.status_code == 302, errors_of(response)
    assert CommissionRule.objects.get().currency == "EUR"


def test_valid_to_before_valid_from_is_refused(editor, seller):
    response = editor.post(f"{BASE}add/", form(payee=seller, start="2026-06-01", end="2026-01-01"))
    assert "must be after" in errors_of(response)


def test_a_rule_used_on_order_lines_keeps_its_terms(editor, seller):
    now = timezone.now()
    rule = CommissionRule.objects.create(payee=seller, percent_bps=500, valid_from=now - timedelta(days=1))
    create_order(
        currency="EUR",
        lines=[LineInput(payee_id=seller.pk, description="Amp", quantity=1, unit_amount_minor=10000)],
        buyer_email="buyer@example.com",
        now=now,
    )
    page = editor.get(f"{BASE}{rule.pk}/change/")
    assert page.status_code == 200
    assert 'name="percent_bps"' not in page.content.decode()
    assert "1 order line(s) in 1 order(s)" in page.content.decode()

    too_early = (now - timedelta(hours=1)).strftime("%Y-%m-%d")
    response = editor.post(f"{BASE}{rule.pk}/change/", {"valid_to_0": too_early, "valid_to_1": "00:00:00"})
    assert "used this rule: end it after that" in errors_of(response)

    end = (now + timedelta(days=1)).strftime("%Y-%m-%d")
    response = editor.post(f"{BASE}{rule.pk}/change/", {"valid_to_0": end, "valid_to_1": "00:00:00", "note": "x"})
    assert response.status_code == 302, errors_of(response)
    rule.refresh_from_db()
    assert rule.percent_bps == 500
    assert rule.valid_to is not None


def test_rules_are_never_deleted(admin_client, seller):
    rule = CommissionRule.objects.create(payee=seller, percent_bps=500, valid_from=timezone.now())
    assert admin_client.get(f"{BASE}{rule.pk}/delete/").status_code == 403


@pytest.mark.parametrize(
    ("value", "expected"),
    [("now", {"current"}), ("future", {"future"}), ("ended", {"ended"}), (None, {"current", "future", "ended"})],
)
def test_the_in_force_filter(admin_client, seller, value, expected):
    now = timezone.now()
    rules = {
        "current": CommissionRule.objects.create(percent_bps=1, valid_from=now - timedelta(days=1)),
        "future": CommissionRule.objects.create(payee=seller, percent_bps=2, valid_from=now + timedelta(days=1)),
        "ended": CommissionRule.objects.create(
            payee=seller, line_kind="goods", percent_bps=3, valid_from=now - timedelta(days=9), valid_to=now
        ),
    }
    response = admin_client.get(BASE, {"in_force": value} if value else {})
    assert response.status_code == 200
    shown = set(response.context["cl"].result_list)
    assert shown == {rules[name] for name in expected}


def test_search_and_filters_render(admin_client, seller):
    CommissionRule.objects.create(payee=seller, percent_bps=1, valid_from=timezone.now(), note="negotiated 2026")
    for query in [{"q": "Autozvuk"}, {"q": "negotiated"}, {"line_kind": "goods"}, {"currency": "EUR"}]:
        assert admin_client.get(BASE, query).status_code == 200, query
    assert admin_client.get(BASE, {"q": "Autozvuk"}).context["cl"].result_count == 1


def test_staff_without_the_permission_get_403(staff_client, seller):  # noqa: F811
    client = staff_client("commissions.view_payee")
    rule = CommissionRule.objects.create(payee=seller, percent_bps=500, valid_from=timezone.now())
    assert client.get(BASE).status_code == 403
    assert client.get(f"{BASE}add/").status_code == 403
    assert client.post(f"{BASE}add/", form(payee=seller)).status_code == 403
    assert client.post(f"{BASE}{rule.pk}/change/", form(payee=seller, bps=1)).status_code == 403
    assert CommissionRule.objects.count() == 1


def test_view_only_staff_cannot_change_a_rule(staff_client, seller):  # noqa: F811
    client = staff_client("commissions.view_commissionrule")
    rule = CommissionRule.objects.create(payee=seller, percent_bps=500, valid_from=timezone.now())
    assert client.get(f"{BASE}{rule.pk}/change/").status_code == 200
    assert client.post(f"{BASE}{rule.pk}/change/", form(payee=seller, bps=1)).status_code == 403
    rule.refresh_from_db()
    assert rule.percent_bps == 500
