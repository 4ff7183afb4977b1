"""The payee portal tests' world (two payees with orders, a shared order, refunds, payouts, statements) and
helpers, shared by test_portal.py and test_portal_pages.py."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.urls import reverse

from commissions.models import Payout, PayoutMethod, PayoutStatement
from ledger.money import format_money
from tests.factories import PayeeFactory, StaffFactory, UserFactory
from tests.invoicing.document_helpers import goods, pay_order, refund_order

IBAN = "CZ6508000000192000145399"
DASHBOARD = reverse("portal:dashboard")
ORDERS = reverse("portal:orders")
PAYOUTS = reverse("portal:payouts")
DOCUMENTS = reverse("portal:documents")
ONBOARDING = reverse("portal:stripe_onboarding")


def eur(minor: int) -> str:
    return format_money(minor, "EUR")


def make_payout(payee, amount: int, *, status=Payout.Status.PAID, when: datetime, currency="EUR", **fields):
    destination = {"method": payee.payout_method, "iban": payee.iban, "bank_account_holder": payee.bank_account_holder}
    return Payout.objects.create(
        payee=payee,
        amount_minor=amount,
        currency=currency,
        status=status,
        created_at=when,
        paid_at=when if status == Payout.Status.PAID else None,
        **{**destination, **fields},
    )


def make_statement(payee, *, pdf: bytes = b"%PDF-1.4 statement", month: int = 3) -> PayoutStatement:
    return PayoutStatement.objects.create(
        kind=PayoutStatement.Kind.MONTH,
        payee=payee,
        currency="EUR",
        period_start=datetime(2026, month, 1, tzinfo=UTC),
        period_end=datetime(2026, month + 1, 1, tzinfo=UTC),
        opening_minor=0,
        sales_minor=10000,
        refunds_minor=0,
        disputes_minor=0,
        commission_minor=1000,
        commission_vat_minor=210,
        adjustments_minor=0,
        payouts_minor=0,
        closing_minor=8790,
        pdf=pdf,
        sha256="a" * 64 if pdf else "",
        issued_at=datetime(2026, 4, 2, tzinfo=UTC),
    )


@pytest.fixture
def world(django_capture_on_commit_callbacks, time_machine):
    """Payee A (SEPA, an IBAN): an order of its own (partly refunded), an order shared with payee B, a CZK
    order, two payouts and a failed one, a statement. Payee B (Stripe, not onboarded): its own order. "Now"
    is 15 June 2026, so the chart runs July 2025 – June 2026."""
    a = PayeeFactory(
        legal_name="Alfa s.r.o.",
        portal_user=UserFactory(username="alfa"),
        payout_method=PayoutMethod.SEPA_CREDIT_TRANSFER,
        bank_account_holder="Alfa s.r.o.",
        iban=IBAN,
        bic="GIBACZPX",
    )
    b = PayeeFactory(legal_name="Beta s.r.o.", portal_user=UserFactory(username="beta"))
    time_machine.move_to(datetime(2025, 3, 10, 9, tzinfo=UTC))
    too_old = pay_order([goods(a, "Old amplifier", amount=7000)], reference="A-OLD")
    time_machine.move_to(datetime(2026, 3, 10, 9, tzinfo=UTC))
    own = pay_order([goods(a, "Amplifier", amount=12100)], reference="A-1", buyer_name="Jana Nováková")
    refund = refund_order(django_capture_on_commit_callbacks, own, 6050)
    shared = pay_order([goods(a, "Cable set", amount=2420), goods(b, "Speaker pair", amount=8000)], reference="AB-1")
    time_machine.move_to(datetime(2026, 5, 20, 9, tzinfo=UTC))
    crowns = pay_order([goods(a, "Tuner", amount=150000)], currency="CZK", reference="A-CZK")
    b_only = pay_order([goods(b, "Subwoofer", amount=30000)], reference="B-1")
    time_machine.move_to(datetime(2026, 6, 15, 9, tzinfo=UTC))
    payouts = [
        make_payout(a, 5000, when=datetime(2026, 4, 6, 8, tzinfo=UTC)),
        make_payout(a, 1500, when=datetime(2026, 4, 13, 8, tzinfo=UTC), status=Payout.Status.PROCESSING),
        make_payout(
            a,
            999,
            when=datetime(2026, 4, 20, 8, tzinfo=UTC),
            status=Payout.Status.FAILED,
            failure_message="IBAN closed",
        ),
    ]
    return {
        "a": a,
        "b": b,
        "staff": StaffFactory(username="staff", is_superuser=True),
        "too_old": too_old,
        "own": own,
        "refund": refund,
        "shared": shared,
        "crowns": crowns,
        "b_only": b_only,
        "payouts": payouts,
        "a_statement": make_statement(a),
        "b_statement": make_statement(b),
    }


def login(client, world, who: str):
    if who != "anonymous":
        client.force_login(world["staff"] if who == "staff" else world[who].portal_user)
    return client


def order_url(order) -> str:
    return reverse("portal:order_detail", args=[order.token])


def page_of(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    return response.content.decode()
