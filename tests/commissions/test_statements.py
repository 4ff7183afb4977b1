"""Payee statements (issue 8): per payout and per month, from ledger entries only, with a PDF e-mailed to the
payee. Shown here: a payout's statement (Stripe transfer and SEPA file) with its figures against the order,
refund and payout rows; monthly statements that chain (October's closing is November's opening); a refund under
each refund policy stated as the payee's balance moved; a transaction without a breakdown still stated whole;
the database refusing a statement that does not add up; the PDF's text; the e-mail sent once; the beat's
safety net and the management command. Random histories: test_statements_machine.py."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.utils import timezone
from pypdf import PdfReader

from commissions.models import Payout, PayoutRun, PayoutStatement, StatementDelivery
from commissions.payouts import core, runs, sepa
from commissions.release import release_due_funds
from commissions.statements import tasks
from commissions.statements.figures import item_figures, statement_figures
from commissions.statements.issuing import issue_month_statement, issue_payout_statement, payouts_missing_statements
from commissions.statements.pdf import email_statement, render_statement_pdf
from ledger import accounts
from ledger.models import LedgerTransaction
from ledger.money import Money
from ledger.selectors import check_ledger, payee_balances
from ledger.services import credit, debit, post_transaction
from payments.models import OrderLine
from refunds.models import FeeTo, RefundLine
from tests.commissions.payout_helpers import sepa_payee, staff, stripe_payee
from tests.refunds.policy_helpers import make_policy, paid_order
from tests.refunds.test_policy_refunds import refund as policy_refund

pytestmark = pytest.mark.django_db

OCT = datetime(2026, 10, 5, 10, 0, tzinfo=UTC)


@pytest.fixture
def rendered(settings):
    settings.TOLLGATE_RENDER_DOCUMENTS = True


def pdf_text(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(bytes(content))).pages)


def total_balance(payee, currency: str = "EUR") -> int:
    return sum(b.total for b in payee_balances(payee.pk) if b.currency == currency)


def sold(payee) -> dict[str, int]:
    lines = OrderLine.objects.filter(payee=payee)
    return {
        "sales": sum(line.amount_minor for line in lines),
        "commission": sum(line.commission_minor for line in lines),
        "commission_vat": sum(line.commission_vat_minor for line in lines),
    }


def goods_order(payee, amount: int, now: datetime):
    return paid_order(payee, amount=amount, event_in=None, now=now)


def refund_part(capture, order, amount_minor: int):
    from refunds.services import execute_refund, request_refund

    with capture(execute=True):
        refund = request_refund(
            order=order, amount_minor=amount_minor, reason="requested_by_customer", now=timezone.now()
        )
        return execute_refund(refund_id=refund.pk, now=timezone.now())


# --- per payout ---------------------------------------------------------------------------------------------


def test_a_stripe_payout_gets_a_statement_of_everything_up_to_it_emailed_with_its_pdf(
    fake_stripe, rendered, django_capture_on_commit_callbacks, time_machine
):
    time_machine.move_to(OCT, tick=True)
    payee = stripe_payee(email="payouts@autozvuk.example", legal_name="Autozvuk s.r.o.")
    first = goods_order(payee, 10000, OCT)
    goods_order(payee, 5000, OCT)
    refund = refund_part(django_capture_on_commit_callbacks, first, 2000)
    release_due_funds(now=OCT + timedelta(days=60))
    balance = total_balance(payee)
    payout = core.create_payout(payee=payee, amount=Money(balance, "EUR"), now=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        payout = core.send_payout(payout_id=payout.pk, now=timezone.now())
    assert payout.status == Payout.Status.PAID

    statement = PayoutStatement.objects.get(payout=payout)
    refunded = RefundLine.objects.filter(refund=refund)
    expected = sold(payee)
    assert statement.kind == PayoutStatement.Kind.PAYOUT
    assert statement.opening_minor == 0
    assert statement.sales_minor == expected["sales"] == 15000
    assert statement.refunds_minor == 2000
    assert statement.commission_minor == expected["commission"] - sum(r.commission_minor for r in refunded)
    assert statement.commission_vat_minor == expected["commission_vat"] - sum(r.commission_vat_minor for r in refunded)
    assert statement.payouts_minor == payout.amount_minor == balance
    assert statement.closing_minor == total_balance(payee) == 0
    assert statement.sha256
    assert bytes(statement.pdf).startswith(b"%PDF")

    text = pdf_text(statement.pdf)
    assert "Payout statement" in text
    assert statement.reference in text
    assert "Autozvuk s.r.o." in text
    assert "€150.00" in text  # sales
    assert "-€20.00" in text  # refunds, as they move the balance
    assert f"Payout {payout.pk}" in text
    assert "Closing balance (EUR)" in text

    [message] = [m for m in mail.outbox if "statement" in m.subject.lower()]
    assert message.to == ["payouts@autozvuk.example"]
    assert statement.reference in message.subject
    [(filename, content, mimetype)] = message.attachments
    assert (filename, mimetype) == (f"statement-{statement.reference}.pdf", "application/pdf")
    assert content == bytes(statement.pdf)
    assert StatementDelivery.objects.filter(statement=statement).count() == 1
    # The task again (a redelivered message): no second statement, no second e-mail.
    assert tasks.issue_payout_statement(payout_id=payout.pk) == statement.pk
    assert PayoutStatement.objects.count() == 1
    assert len([m for m in mail.outbox if "statement" in m.subject.lower()]) == 1
    assert check_ledger().ok


def test_the_next_payout_statement_starts_where_the_last_one_ended(fake_stripe, django_capture_on_commit_callbacks):
    payee = stripe_payee()
    statements = []
    for amount in (10000, 4000):
        goods_order(payee, amount, timezone.now())
        release_due_funds(now=timezone.now() + timedelta(days=60))
        payout = core.create_payout(payee=payee, amount=Money(total_balance(payee), "EUR"), now=timezone.now())
        with django_capture_on_commit_callbacks(execute=True):
            core.send_payout(payout_id=payout.pk, now=timezone.now())
        statements.append(PayoutStatement.objects.get(payout=payout))
    first, second = statements
    assert second.period_start == first.period_end
    assert second.opening_minor == first.closing_minor == 0
    assert (first.sales_minor, second.sales_minor) == (10000, 4000)
    assert second.payouts_minor == Payout.objects.get(pk=second.payout_id).amount_minor


def test_sepa_payouts_get_their_statements_when_finance_marks_the_file_sent(django_capture_on_commit_callbacks):
    payees = [sepa_payee(), sepa_payee(iban="NL91ABNA0417164300", bic="ABNANL2A")]
    for payee, amount in zip(payees, (12345, 6789), strict=True):
        goods_order(payee, amount, timezone.now())
    release_due_funds(now=timezone.now() + timedelta(days=60))
    with django_capture_on_commit_callbacks(execute=True):
        run = runs.start_run(trigger=PayoutRun.Trigger.STAFF, now=timezone.now())
    sepa_file = run.sepa_files.get()
    assert not PayoutStatement.objects.exists()  # generated, not sent: the money has not left
    assert payouts_missing_statements() == []

    with django_capture_on_commit_callbacks(execute=True):
        sepa.mark_sent(file_id=sepa_file.pk, actor=staff("commissions.download_sepa_file"), now=timezone.now())

    for payee in payees:
        statement = PayoutStatement.objects.get(payee=payee)
        payout = Payout.objects.get(payee=payee)
        assert statement.payout_id == payout.pk
        assert statement.payouts_minor == payout.amount_minor
        assert statement.sales_minor == sold(payee)["sales"]
        assert statement.closing_minor == total_balance(payee)


def test_a_failed_payout_gets_no_statement_and_shows_in_the_next_one_as_given_back(
    fake_stripe, django_capture_on_commit_callbacks
):
    payee = stripe_payee()
    goods_order(payee, 10000, timezone.now())
    release_due_funds(now=timezone.now() + timedelta(days=60))
    failed = core.create_payout(payee=payee, amount=Money(3000, "EUR"), now=timezone.now())
    core.fail_payout(payout_id=failed.pk, message="account closed", now=timezone.now())
    assert issue_payout_statement(payout_id=failed.pk, now=timezone.now()) is None

    payout = core.create_payout(payee=payee, amount=Money(total_balance(payee), "EUR"), now=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        core.send_payout(payout_id=payout.pk, now=timezone.now())
    statement = PayoutStatement.objects.get()
    assert statement.payout_id == payout.pk
    assert statement.payouts_minor == payout.amount_minor  # 3000 out, 3000 back, then the real payout
    figures = statement_figures(
        payee_id=payee.pk, currency="EUR", start=statement.period_start, end=statement.period_end
    )
    assert [item.label for item in figures.items if item.figures.get("payouts")] == [
        "Payout",
        "Payout reversed",
        "Payout",
    ]


def test_the_safety_net_issues_a_statement_whose_task_was_lost(fake_stripe, monkeypatch):
    payee = stripe_payee()
    goods_order(payee, 10000, timezone.now())
    release_due_funds(now=timezone.now() + timedelta(days=60))
    payout = core.create_payout(payee=payee, amount=Money(5000, "EUR"), now=timezone.now())
    core.send_payout(payout_id=payout.pk, now=timezone.now())  # on-commit task never runs here
    assert payouts_missing_statements() == [payout.pk]

    assert tasks.issue_missing_payout_statements() == 1

    assert PayoutStatement.objects.get().payout_id == payout.pk
    assert payouts_missing_statements() == []
    assert tasks.issue_missing_payout_statements() == 0


# --- per month ---------------------------------------------------------------------------------------------


def test_monthly_statements_chain_and_are_issued_once(time_machine, django_capture_on_commit_callbacks):
    payee = sepa_payee()
    time_machine.move_to(OCT, tick=True)
    goods_order(payee, 10000, OCT)
    october_balance = total_balance(payee)
    time_machine.move_to(OCT + timedelta(days=30), tick=True)  # 4 November
    order = goods_order(payee, 2500, timezone.now())
    refund_part(django_capture_on_commit_callbacks, order, 500)
    now = datetime(2026, 12, 1, 4, 0, tzinfo=UTC)
    time_machine.move_to(now, tick=True)

    october = issue_month_statement(payee_id=payee.pk, currency="EUR", month="2026-10", now=now)
    november = issue_month_statement(payee_id=payee.pk, currency="EUR", month="2026-11", now=now)

    assert (october.period_start, october.period_end) == (
        datetime(2026, 10, 1, tzinfo=UTC),
        datetime(2026, 11, 1, tzinfo=UTC),
    )
    assert (october.opening_minor, october.sales_minor, october.closing_minor) == (0, 10000, october_balance)
    assert november.opening_minor == october.closing_minor
    assert (november.sales_minor, november.refunds_minor) == (2500, 500)
    assert november.closing_minor == total_balance(payee)
    assert issue_month_statement(payee_id=payee.pk, currency="EUR", month="2026-11", now=now).pk == november.pk
    assert issue_month_statement(payee_id=payee.pk, currency="EUR", month="2026-09", now=now) is None  # nothing
    with pytest.raises(ValueError, match="has not ended"):
        issue_month_statement(payee_id=payee.pk, currency="EUR", month="2026-12", now=now)


def test_the_monthly_beat_and_the_command_issue_each_payees_statement_once(time_machine, rendered, capsys):
    payees = [sepa_payee(email=f"p{n}@example.com") for n in range(3)]
    time_machine.move_to(OCT, tick=True)
    for n, payee in enumerate(payees[:2]):
        goods_order(payee, 1000 * (n + 1), OCT)
    time_machine.move_to(datetime(2026, 11, 1, 4, 0, tzinfo=UTC), tick=True)

    assert tasks.issue_monthly_statements() == 2  # eager: one task per payee with an account
    assert sorted(PayoutStatement.objects.values_list("payee_id", "sales_minor")) == [
        (payees[0].pk, 1000),
        (payees[1].pk, 2000),
    ]
    assert len(mail.outbox) == 2

    call_command("issue_statements", "--month", "2026-10")
    out = capsys.readouterr().out
    assert "0 monthly statement(s)" not in out  # the existing ones are listed again, nothing new is written
    assert PayoutStatement.objects.count() == 2
    assert len(mail.outbox) == 2  # sent once


def test_the_command_refuses_a_bad_month():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="2026-10"):
        call_command("issue_statements", "--month", "October")


# --- what each movement is stated as ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "event_in_days", "refunds", "commission_back"),
    [
        ({"fee_to": FeeTo.PAYEE}, 10, 9000, True),  # the payee keeps the 10 % fee
        ({"fee_to": FeeTo.PLATFORM}, 10, 10000, True),  # the payee gives back its whole sale
        ({"commission_returned": False}, 30, 8790, False),  # no fee; the buyer bears the commission
        ({"commission_returned": False, "fee_to": FeeTo.PAYEE}, 10, 7790, False),
    ],
)
def test_a_policy_refund_is_stated_as_the_payee_balance_moved(
    payee, django_capture_on_commit_callbacks, policy, event_in_days, refunds, commission_back
):
    make_policy(**policy)
    # 10 000 with 1 000 commission + 210 VAT; within 14 days of the event the policy keeps a 10 % fee
    order = paid_order(payee, event_in=timedelta(days=event_in_days))
    refund = policy_refund(order, django_capture_on_commit_callbacks)
    tx = LedgerTransaction.objects.get(idempotency_key=f"refund:{refund.pk}")
    figures = statement_figures(
        payee_id=payee.pk, currency="EUR", start=tx.posted_at, end=tx.posted_at + timedelta(microseconds=1)
    )
    [item] = figures.items
    assert item.kind == "refund"
    assert item.figures["refunds"] == refunds
    assert item.figures.get("commission", 0) == (-1000 if commission_back else 0)
    assert item.figures.get("commission_vat", 0) == (-210 if commission_back else 0)
    assert figures.closing - figures.opening == item.net
    assert total_balance(payee) == 10000 - 1210 + item.net


def test_a_movement_without_a_breakdown_is_stated_whole_under_its_kind():
    assert item_figures(kind="capture", net=8790, breakdown=None) == {"sales": 8790}
    assert item_figures(kind="payout", net=-500, breakdown=None) == {"payouts": 500}
    assert item_figures(kind="reversal", net=500, breakdown=None, reversed_kind="payout") == {"payouts": -500}
    assert item_figures(kind="dispute_fee", net=-1500, breakdown=None) == {"disputes": 1500}
    assert item_figures(kind="goodwill_adjustment", net=250, breakdown=None) == {"adjustments": 250}
    # A breakdown that does not add up to the entries is not trusted: the ledger's net wins.
    wrong = {"sales": 10000, "commission": 1000, "commission_vat": 200}
    assert item_figures(kind="capture", net=8790, breakdown=wrong) == {"sales": 8790}
    right = {"sales": 10000, "commission": 1000, "commission_vat": 210}
    assert item_figures(kind="capture", net=8790, breakdown=right) == right


def test_an_adjustment_posted_to_a_payee_is_stated_as_one(payee):
    amount = Money(1234, "EUR")
    tx = post_transaction(
        idempotency_key="test-adjustment:1",
        kind="manual_adjustment",
        entries=[debit(accounts.PLATFORM_GOODWILL, amount), credit(accounts.payee_available(payee.pk), amount)],
        occurred_at=timezone.now(),
        memo="Goodwill for a late payout",
    )
    figures = statement_figures(
        payee_id=payee.pk, currency="EUR", start=tx.posted_at, end=tx.posted_at + timedelta(seconds=1)
    )
    assert figures.figures["adjustments"] == 1234
    assert figures.closing == 1234


def test_the_database_refuses_a_statement_that_does_not_add_up(payee):
    now = timezone.now()
    fields = dict.fromkeys(
        ["sales", "refunds", "disputes", "commission", "commission_vat", "adjustments", "payouts"], 0
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        PayoutStatement.objects.create(
            kind=PayoutStatement.Kind.MONTH,
            payee=payee,
            currency="EUR",
            period_start=now,
            period_end=now,
            opening_minor=100,
            closing_minor=101,
            issued_at=now,
            **{f"{name}_minor": amount for name, amount in fields.items()},
        )


def test_a_statement_issued_without_a_pdf_renders_the_same_document_on_download(time_machine, rendered):
    payee = sepa_payee(legal_name="Geluid BV")
    time_machine.move_to(OCT, tick=True)
    goods_order(payee, 4200, OCT)
    now = datetime(2026, 11, 2, tzinfo=UTC)
    time_machine.move_to(now, tick=True)
    statement = issue_month_statement(payee_id=payee.pk, currency="EUR", month="2026-10", now=now)
    text = pdf_text(render_statement_pdf(statement))
    assert "Monthly statement" in text
    assert "1 October 2026 – 31 October 2026" in text
    assert "Geluid BV" in text
    assert "€42.00" in text
    assert pdf_text(statement.pdf) == text


def test_the_automatic_email_goes_once_and_a_staff_resend_always(payee, time_machine, rendered):
    time_machine.move_to(OCT, tick=True)
    goods_order(payee, 1000, OCT)
    now = datetime(2026, 11, 2, tzinfo=UTC)
    statement = issue_month_statement(payee_id=payee.pk, currency="EUR", month="2026-10", now=now)
    assert email_statement(statement_id=statement.pk, now=now) is True
    assert email_statement(statement_id=statement.pk, now=now) is False
    assert email_statement(statement_id=statement.pk, now=now, actor_label="staff:finance") is True
    assert len(mail.outbox) == 2
    assert list(statement.deliveries.values_list("actor_label", flat=True)) == ["system", "staff:finance"]
