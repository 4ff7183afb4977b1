"""Helpers for the recurring tests: a GoPay recurrence set up through the fake, its charges' children at the
fake, and what the ledger holds."""

from __future__ import annotations

import uuid

from django.db.models import Sum
from django.utils import timezone

from ledger.models import Entry, LedgerTransaction
from payments.models import Order
from recurring.models import Recurrence, RecurringCharge
from recurring.services import retry_failed_charges
from tests.payments.gopay.fake import FakeGoPay
from tests.payments.gopay.helpers import gopay_id, gopay_order, notify_and_process, start_gopay_payment

CREATE_RECURRENCE = r"/payments/payment/\d+/create-recurrence"
VOID_RECURRENCE = r"/payments/payment/\d+/void-recurrence"


def recurring_order(payee, **kwargs) -> Order:
    """A CZK order that sets up a recurrence: 1 × 299 Kč by default (a monthly membership)."""
    return gopay_order(payee, lines=kwargs.pop("lines", ((1, 29900),)), recurring=True, **kwargs)


def set_up_recurrence(fake: FakeGoPay, client, capture, payee, **kwargs) -> Recurrence:
    """The buyer pays a recurring order at GoPay; its notification arrives (twice) and sets the recurrence up."""
    order = recurring_order(payee, **kwargs)
    payment = start_gopay_payment(order)
    fake.pay(gopay_id(payment))
    for _ in range(2):
        notify_and_process(client, capture, gopay_id(payment))
    return Recurrence.objects.get(first_payment=payment)


def children(fake: FakeGoPay, recurrence: Recurrence) -> list[dict]:
    """The recurrence's child payments at GoPay, oldest first."""
    parent = int(recurrence.provider_ref)
    return [fake.payment(pid) for pid, obj in sorted(fake.objects.items()) if obj.get("parent_id") == parent]


def child_of(charge: RecurringCharge) -> int:
    charge.refresh_from_db()
    return int(charge.payment.provider_ref)


def settle(fake: FakeGoPay, client, capture, charge: RecurringCharge, outcome: str = "PAID", times: int = 2) -> None:
    """GoPay charges (or cancels) the charge's current child and notifies us, `times` times."""
    child = child_of(charge)
    fake.settle_recurrence(child, outcome)
    for _ in range(times):
        notify_and_process(client, capture, child)
    charge.refresh_from_db()


def run_beat(capture, now=None) -> dict:
    with capture(execute=True):
        return retry_failed_charges(now=now or timezone.now())


def captured_total(currency: str = "CZK") -> int:
    """Gross of every capture posted to the ledger."""
    keys = LedgerTransaction.objects.filter(kind="capture").values_list("pk", flat=True)
    return (
        Entry.objects.filter(
            transaction_id__in=keys, direction="debit", account__code="provider:gopay:clearing"
        ).aggregate(total=Sum("amount_minor"))["total"]
        or 0
    )


def key() -> str:
    return f"key-{uuid.uuid4()}"
