"""The platform's monthly commission invoices: one per payee, month and currency, VAT by the payee's
situation (domestic, reverse charge, outside the EU), matching the ledger's commission and VAT to the cent."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine
from django.db.models import Case, F, Sum, When
from django.utils import timezone

from invoicing.models import DocumentKind, Invoice
from invoicing.services.commission import issue_monthly_commission_invoices, previous_month
from invoicing.tasks import issue_monthly_commission_invoices as monthly_task
from ledger import accounts
from ledger.models import Entry
from refunds.models import Refund, RefundStatus
from refunds.services import request_refund
from tests.factories import PayeeFactory
from tests.invoicing.helpers import line, pay, run_on_commit

pytestmark = pytest.mark.django_db

OCTOBER = datetime(2026, 10, 10, 12, 0, tzinfo=UTC)
NOVEMBER_1 = datetime(2026, 11, 1, 3, 30, tzinfo=UTC)


def ledger_movement(spec, currency: str, since: datetime, until: datetime) -> int:
    """Credits − debits on an income/liability account over [since, until)."""
    signed = Case(When(direction="credit", then=F("amount_minor")), default=-F("amount_minor"))
    total = Entry.objects.filter(
        account__code=spec.code,
        currency=currency,
        transaction__occurred_at__gte=since,
        transaction__occurred_at__lt=until,
    ).aggregate(total=Sum(signed))["total"]
    return total or 0


def fees_kept_by_platform(currency: str) -> int:
    return sum(
        refund.fee_minor
        for refund in Refund.objects.filter(status=RefundStatus.SUCCEEDED, currency=currency, fee_to="platform")
    )


@pytest.fixture
def october_activity():
    domestic = PayeeFactory(country="CZ", legal_name="Domácí s.r.o.")
    reverse = PayeeFactory(country="DE", vat_id="DE136695976", legal_name="Reverse GmbH")
    outside = PayeeFactory(country="US", legal_name="Outside Inc.")
    unregistered = PayeeFactory(country="SK", legal_name="Bez DIČ")  # EU, no VAT id: platform VAT
    with time_machine.travel(OCTOBER, tick=True):
        orders = [
            pay(lines=[line(domestic, 12345), line(reverse, 9999)]),
            pay(lines=[line(domestic, 100), line(outside, 54321), line(unregistered, 7777)]),
            pay(lines=[line(reverse, 250000, quantity=2)]),
            pay(lines=[line(domestic, 3333)], currency="CZK"),
        ]
        run_on_commit(
            request_refund, order=orders[0], amount_minor=5000, reason="requested_by_customer", now=timezone.now()
        )
        run_on_commit(
            request_refund,
            order=orders[2],
            amount_minor=orders[2].total_minor,
            reason="requested_by_customer",
            now=timezone.now(),
        )
    return {
        "domestic": domestic,
        "reverse": reverse,
        "outside": outside,
        "unregistered": unregistered,
        "orders": orders,
    }


def test_one_invoice_per_payee_and_currency_with_the_right_vat(october_activity):
    issued = issue_monthly_commission_invoices(year=2026, month=10, now=NOVEMBER_1)
    by_payee = {(doc.payee_id, doc.currency): doc for doc in issued}
    assert len(issued) == 5  # domestic EUR + CZK, reverse, outside, unregistered
    domestic = by_payee[(october_activity["domestic"].pk, "EUR")]
    assert {g.scheme for g in domestic.vat_groups.all()} == {"domestic"}
    assert domestic.vat_groups.get().rate_bps == 2100
    assert domestic.tax_country == "CZ"
    assert domestic.issuer_vat_id
    assert domestic.recipient_name == "Domácí s.r.o."
    reverse = by_payee[(october_activity["reverse"].pk, "EUR")]
    assert reverse.vat_minor == 0
    assert reverse.scheme == "reverse_charge"
    assert "Reverse charge" in reverse.legends
    # Fully refunded order of the reverse-charge payee: its commission came back the same month.
    assert reverse.lines.filter(gross_minor__lt=0).exists()
    outside = by_payee[(october_activity["outside"].pk, "EUR")]
    assert outside.vat_minor == 0
    assert outside.scheme == "out_of_scope"
    unregistered = by_payee[(october_activity["unregistered"].pk, "EUR")]
    assert unregistered.scheme == "domestic"
    assert unregistered.vat_minor > 0
    numbers = sorted(doc.sequence for doc in issued)
    assert numbers == list(range(1, 6))
    assert all(doc.number.startswith("TG-COM-2026-") for doc in issued)
    for doc in issued:
        assert doc.net_minor + doc.vat_minor == doc.gross_minor
        assert sum(line.gross_minor for line in doc.lines.all()) == doc.gross_minor
        assert doc.period_start.isoformat() == "2026-10-01"
        assert doc.period_end.isoformat() == "2026-10-31"


@pytest.mark.parametrize("currency", ["EUR", "CZK"])
def test_commission_invoices_match_the_ledger_to_the_cent(october_activity, currency):
    issued = issue_monthly_commission_invoices(year=2026, month=10, now=NOVEMBER_1)
    since, until = datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)
    net = sum(doc.net_minor for doc in issued if doc.currency == currency)
    vat = sum(doc.vat_minor for doc in issued if doc.currency == currency)
    commission = ledger_movement(accounts.PLATFORM_COMMISSION, currency, since, until)
    assert net == commission - fees_kept_by_platform(currency)
    assert vat == ledger_movement(accounts.PLATFORM_VAT_PAYABLE, currency, since, until)
    assert net > 0
    assert currency == "CZK" or vat > 0


def test_the_monthly_run_is_idempotent_and_skips_quiet_months(october_activity):
    first = issue_monthly_commission_invoices(year=2026, month=10, now=NOVEMBER_1)
    again = issue_monthly_commission_invoices(year=2026, month=10, now=NOVEMBER_1)
    assert [doc.pk for doc in first] == [doc.pk for doc in again]
    assert issue_monthly_commission_invoices(year=2026, month=9, now=NOVEMBER_1) == []
    assert Invoice.objects.filter(kind=DocumentKind.COMMISSION_INVOICE).count() == 5


def test_the_beat_task_invoices_last_month(october_activity, settings):
    settings.TOLLGATE_RENDER_DOCUMENTS = False
    with time_machine.travel(NOVEMBER_1):
        assert previous_month(timezone.localdate()) == (2026, 10)
        assert monthly_task.delay().get() == 5
    assert Invoice.objects.filter(kind=DocumentKind.COMMISSION_INVOICE, period_start="2026-10-01").count() == 5


def test_the_command_issues_a_month_once_and_refuses_a_bad_month(october_activity, documents_rendered):
    from io import StringIO

    from django.core import mail
    from django.core.management import CommandError, call_command

    out = StringIO()
    call_command("issue_commission_invoices", "--month", "2026-10", stdout=out)
    assert "5 commission invoice(s) for 2026-10" in out.getvalue()
    assert "[5/5] payees" in out.getvalue()
    sent = [m for m in mail.outbox if m.subject.startswith("Commission")]
    assert len(sent) == 5
    assert all(m.attachments[0][2] == "application/pdf" for m in sent)
    call_command("issue_commission_invoices", "--month", "2026-10", stdout=StringIO())
    assert Invoice.objects.filter(kind=DocumentKind.COMMISSION_INVOICE).count() == 5
    assert len([m for m in mail.outbox if m.subject.startswith("Commission")]) == 5  # not e-mailed twice
    with pytest.raises(CommandError):
        call_command("issue_commission_invoices", "--month", "2026-13", stdout=StringIO())


def test_a_month_whose_commission_nets_to_zero_gets_no_invoice():
    payee = PayeeFactory(country="CZ")
    with time_machine.travel(OCTOBER, tick=True):
        order = pay(lines=[line(payee, 5000)])
        run_on_commit(
            request_refund, order=order, amount_minor=5000, reason="requested_by_customer", now=timezone.now()
        )
    assert issue_monthly_commission_invoices(year=2026, month=10, now=NOVEMBER_1) == []
