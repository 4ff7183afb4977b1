"""Two checkouts spend one code at the same instant (PostgreSQL row locks): exactly one pays."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from core.errors import DomainError, ErrorCode
from ledger.money import Money
from payments.models import OrderStatus
from refunds.models import StoreCredit, StoreCreditStatus
from refunds.store_credit import issue_goodwill_credit, pay_with_store_credit
from tests.factories import PayeeFactory
from tests.payments.concurrency import run_concurrently
from tests.payments.helpers import make_order
from tests.refunds.store_credit_helpers import assert_conserved

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("same_order", [False, True])
def test_two_concurrent_spends_of_one_code_one_wins(same_order):
    payee = PayeeFactory()
    now = timezone.now()
    credit = issue_goodwill_credit(
        buyer_email="buyer@example.com",
        amount=Money(10000, "EUR"),
        expires_at=now + timedelta(days=30),
        actor=None,
        reason="concurrency test",
        now=now,
    )
    first = make_order(payee, unit_amount_minor=8000)
    orders = [first, first] if same_order else [first, make_order(payee, unit_amount_minor=8000)]

    def spend(index: int):
        try:
            return pay_with_store_credit(order=orders[index], code=credit.code, now=timezone.now()).pk
        except DomainError as exc:
            return exc.code

    results = run_concurrently(2, spend)

    paid = [r for r in results if isinstance(r, int)]
    refused = [r for r in results if not isinstance(r, int)]
    assert len(paid) == 1, results
    expected = ErrorCode.ORDER_NOT_OPEN if same_order else ErrorCode.STORE_CREDIT_INSUFFICIENT
    assert refused == [expected]
    credit = StoreCredit.objects.get(pk=credit.pk)
    assert (credit.remaining_minor, credit.status, credit.spends.count()) == (2000, StoreCreditStatus.ACTIVE, 1)
    statuses = sorted(o.status for o in type(first).objects.filter(pk__in={o.pk for o in orders}))
    assert statuses.count(OrderStatus.PAID) == 1
    assert_conserved()
