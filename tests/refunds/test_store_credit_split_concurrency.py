"""Two browser sessions apply one code at the same instant (PostgreSQL row locks): never more than what is left
of the credit is applied, and nothing moves in the ledger until the rest is paid."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from ledger.money import Money
from refunds.models import ReservationStatus, StoreCredit, StoreCreditReservation
from refunds.store_credit import available_minor, issue_goodwill_credit
from tests.factories import PayeeFactory
from tests.payments.concurrency import run_concurrently
from tests.payments.helpers import make_order
from tests.refunds.store_credit_helpers import assert_conserved

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("same_order", [False, True])
def test_two_sessions_applying_one_code_never_apply_more_than_is_left(same_order):
    payee = PayeeFactory()
    now = timezone.now()
    credit = issue_goodwill_credit(
        buyer_email="buyer@example.com",
        amount=Money(5000, "EUR"),
        expires_at=now + timedelta(days=30),
        actor=None,
        reason="concurrency test",
        now=now,
    )
    first = make_order(payee, unit_amount_minor=8000)
    orders = [first, first] if same_order else [first, make_order(payee, unit_amount_minor=8000)]

    def apply(index: int) -> int:
        client = Client()  # its own browser session
        url = reverse("checkout:page", args=[orders[index].token])
        return client.post(url, {"store_credit_code": credit.code}, REMOTE_ADDR=f"10.0.0.{index + 1}").status_code

    results = run_concurrently(2, apply)

    assert sorted(results) == [303, 400], results
    live = StoreCreditReservation.objects.filter(credit=credit, status=ReservationStatus.RESERVED)
    assert [r.amount_minor for r in live] == [5000]
    credit = StoreCredit.objects.get(pk=credit.pk)
    assert (credit.remaining_minor, available_minor(credit)) == (5000, 0)
    assert_conserved()
