"""Helpers for the GoPay tests: CZK orders paid through the fake, notifications, and the conservation check
(the ledger's invariants, and our GoPay clearing account = what the fake holds: captured − refunded)."""

from __future__ import annotations

from django.db.models import Q
from django.utils import timezone

from ledger import accounts
from ledger.selectors import account_balance, check_ledger
from payments.models import Order, Payment, PaymentStatus
from payments.services.checkout import start_payment
from payments.services.orders import LineInput, create_order
from tests.payments.gopay.fake import FakeGoPay, notify


def gopay_order(payee, *, currency: str = "CZK", lines=((2, 75000),), **kwargs) -> Order:
    """An open order of (quantity, unit amount) lines sold by `payee` (default 2 × 750 Kč = 1 500 Kč)."""
    return create_order(
        currency=currency,
        buyer_email="jan.novak@example.cz",
        buyer_country="CZ",
        now=kwargs.pop("now", None) or timezone.now(),
        lines=[
            LineInput(payee_id=payee.pk, description=f"Vstupenka {n}", quantity=quantity, unit_amount_minor=unit)
            for n, (quantity, unit) in enumerate(lines, start=1)
        ],
        **kwargs,
    )


def start_gopay_payment(order: Order) -> Payment:
    return start_payment(order=order, provider_name="gopay", now=timezone.now())


def gopay_id(payment: Payment) -> int:
    return int(payment.provider_ref)


def notify_and_process(client, capture, payment_id: int, **extra):
    """GoPay's GET notification, with the processing task run on commit (eager Celery)."""
    with capture(execute=True):
        return notify(client, payment_id, **extra)


def clearing_at_fake(fake: FakeGoPay, currency: str = "CZK") -> int:
    """What GoPay holds for us: every PAID payment's amount minus what was refunded of it."""
    held = 0
    for payment_id in fake.objects:
        status = fake.payment(payment_id)
        if status["currency"] != currency or status["state"] not in ("PAID", "PARTIALLY_REFUNDED", "REFUNDED"):
            continue
        held += status["amount"] - fake.refunded(payment_id)
    return held


def assert_conserved(fake: FakeGoPay, currency: str = "CZK") -> None:
    report = check_ledger()
    assert report.ok, report
    ours = account_balance(accounts.provider_clearing("gopay"), currency).amount_minor
    assert ours == clearing_at_fake(fake, currency), (ours, clearing_at_fake(fake, currency))


def succeeded_gopay_payments():
    return Payment.objects.filter(Q(provider="gopay") & Q(status=PaymentStatus.SUCCEEDED))
