"""Store credit in the back office: the list with totals of what is left per currency, read-only money with
the spends inline, and the goodwill page behind its own permission."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.core import mail
from django.test import Client
from django.utils import timezone

from core.models import AuditEntry
from ledger.money import Money
from refunds.models import StoreCredit
from refunds.store_credit import issue_goodwill_credit, pay_with_store_credit
from tests.factories import StaffFactory
from tests.payments.helpers import make_order
from tests.refunds.store_credit_helpers import assert_conserved

pytestmark = pytest.mark.django_db

LIST = "/admin/refunds/storecredit/"
GOODWILL = "/admin/refunds/storecredit/issue-goodwill/"


def _staff(*perms: str) -> Client:
    user = StaffFactory()
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    client = Client()
    client.force_login(user)
    client.user = user
    return client


def _goodwill(amount_minor: int, currency: str = "EUR", email: str = "b@example.com") -> StoreCredit:
    now = timezone.now()
    return issue_goodwill_credit(
        buyer_email=email,
        amount=Money(amount_minor, currency),
        expires_at=now + timedelta(days=30),
        actor=None,
        reason="test",
        now=now,
    )


def test_the_list_shows_totals_of_what_is_left_and_searches_by_code(payee):
    first = _goodwill(10000)
    _goodwill(500, "CZK", email="other@example.com")
    pay_with_store_credit(order=make_order(payee, unit_amount_minor=2500), code=first.code, now=timezone.now())
    client = _staff("refunds.view_storecredit")

    page = client.get(LIST).content.decode()
    assert "€75.00" in page
    assert "Remaining" in page
    assert "Issue goodwill credit" not in page  # no permission for it
    found = client.get(LIST, {"q": first.code}).content.decode()
    assert first.code in found
    assert "other@example.com" not in found
    assert client.get(LIST, {"status__exact": "active", "currency__exact": "EUR"}).status_code == 200

    change = client.get(f"{LIST}{first.pk}/change/")
    assert change.status_code == 200
    body = change.content.decode()
    assert "€25.00" in body  # the spend, inline
    assert 'name="_save"' not in body  # read-only
    assert client.post(f"{LIST}{first.pk}/change/", {"remaining_minor": 999999}).status_code == 403


def test_goodwill_credit_needs_its_permission():
    client = _staff("refunds.view_storecredit")
    assert client.get(GOODWILL).status_code == 403
    assert client.post(GOODWILL, {"buyer_email": "x@example.com"}).status_code == 403
    assert not StoreCredit.objects.exists()


def test_staff_issue_goodwill_credit_audited_and_emailed(django_capture_on_commit_callbacks):
    client = _staff("refunds.view_storecredit", "refunds.issue_goodwill_credit")
    assert "Issue goodwill credit" in client.get(LIST).content.decode()
    assert client.get(GOODWILL).status_code == 200

    bad = client.post(
        GOODWILL, {"buyer_email": "b@example.com", "currency": "JPY", "amount": "10.5", "valid_days": 30, "reason": "x"}
    )
    assert bad.status_code == 200
    assert "at most 0 decimal places" in bad.content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            GOODWILL,
            {
                "buyer_email": "b@example.com",
                "currency": "EUR",
                "amount": "25.00",
                "valid_days": 30,
                "reason": "The concert started an hour late",
            },
        )
    credit = StoreCredit.objects.get()
    assert response.status_code == 302
    assert (credit.amount_minor, credit.remaining_minor, credit.issued_by) == (2500, 2500, client.user)
    assert AuditEntry.objects.filter(action="store_credit.goodwill", actor=client.user).count() == 1
    assert len(mail.outbox) == 1
    assert credit.code in mail.outbox[0].body
    assert "The concert started an hour late" in mail.outbox[0].body
    assert_conserved()
