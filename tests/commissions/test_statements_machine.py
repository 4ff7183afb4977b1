"""Statements against the ledger for random histories (issue 8: "statement totals equal ledger balances (opening
+ movements = closing) for random histories").

The money state machine of the refunds work (pay, refund, dispute opened / won / lost with the payee or the
platform bearing the loss and the fee, release, payout by Stripe transfer) runs unchanged; after every step,
for every payee and currency:
- the statement of all history closes at the payee's ledger balance (pending + available + reserved), and its
  figures are what the rows say independently: sales − refunds of the payee's lines, the commission and VAT on
  commission fixed on them less what refunds returned, the disputes the payee bore, the payouts not failed;
- the history cut into consecutive statements at random points chains: the first opens at zero, each opens
  at the previous one's closing, the last closes at the balance, and their figures add up to the whole's;
- each statement's opening + movements = closing (also the database constraint when one is written: a
  payout statement is issued after every payout step).
"""

from __future__ import annotations

import itertools
import os
import time
from collections import defaultdict
from datetime import timedelta

import pytest
from django.db.models import Q
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import invariant, precondition, rule, run_state_machine_as_test

from commissions.models import Payout, PayoutStatement
from commissions.payouts import create_payout, send_payout
from commissions.statements.figures import FIGURES, payee_accounts, statement_figures
from commissions.statements.issuing import issue_payout_statement, payouts_missing_statements
from ledger import accounts
from ledger.models import LedgerTransaction
from ledger.money import Money, allocate
from ledger.selectors import account_balance, payee_balances
from ledger.services import credit, debit, post_transaction
from payments.models import OrderLine
from refunds.models import Dispute, DisputeStatus, RefundLine, RefundStatus
from tests.payments.stripe.conftest import fake_stripe  # noqa: F401 - the fixture
from tests.refunds.test_money_state_machine import CURRENCIES, MoneyMachine

pytestmark = pytest.mark.django_db

PROFILE = os.environ.get("TOLLGATE_HYPOTHESIS_PROFILE", "dev")
SCALE = {"dev": (30, 25), "ci": (100, 40)}[PROFILE]
settings.register_profile(
    "tollgate-statement-machine",
    max_examples=SCALE[0],
    stateful_step_count=SCALE[1],
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
EPOCH = timezone.now() - timedelta(days=3650)
_releases = itertools.count(1)


def expected_figures(payee, currency: str) -> dict[str, int]:
    """The statement figures of all history, from the order, refund, dispute and payout rows (not the ledger)."""
    figures = dict.fromkeys(FIGURES, 0)
    for amount, commission, vat in OrderLine.objects.filter(
        payee=payee, order__currency=currency, order__payments__status="succeeded"
    ).values_list("amount_minor", "commission_minor", "commission_vat_minor"):
        figures["sales"] += amount
        figures["commission"] += commission
        figures["commission_vat"] += vat
    for amount, commission, vat in RefundLine.objects.filter(
        order_line__payee=payee, refund__currency=currency, refund__status=RefundStatus.SUCCEEDED
    ).values_list("amount_minor", "commission_minor", "commission_vat_minor"):
        figures["refunds"] += amount  # the machine's refunds return the commission and keep no fee
        figures["commission"] -= commission
        figures["commission_vat"] -= vat
    for dispute in Dispute.objects.filter(currency=currency, status=DisputeStatus.LOST):
        hold = LedgerTransaction.objects.filter(idempotency_key=f"dispute_hold:{dispute.pk}").first()
        split = {}
        if hold is not None:
            for entry in hold.entries.select_related("account").filter(account__code__endswith=":reserved"):
                split[entry.account.payee_id] = entry.amount_minor
        if payee.pk not in split:
            continue
        if payee.dispute_loss_bearer == "payee":
            figures["disputes"] += split[payee.pk]
        fee = LedgerTransaction.objects.filter(idempotency_key=f"dispute_fee:{dispute.pk}").first()
        if fee is not None and payee.dispute_fee_bearer == "payee":
            ids = sorted(split)
            parts = dict(zip(ids, allocate(fee.metadata["fee"], [split[p] for p in ids]), strict=True))
            figures["disputes"] += parts[payee.pk]
    for amount, reversed_minor in (
        Payout.objects.filter(payee=payee, currency=currency)
        .exclude(status=Payout.Status.FAILED)
        .values_list("amount_minor", "reversed_minor")
    ):
        figures["payouts"] += amount - reversed_minor
    return figures


class StatementMachine(MoneyMachine):
    cuts_seen = 0
    statements_written = 0
    kinds_seen: set[str] = set()

    def __init__(self):
        super().__init__()
        self.cuts: list[float] = []

    @rule(cuts=st.lists(st.floats(0, 1), max_size=4))
    def cut_history(self, cuts):
        """Where the next checks cut the history into consecutive statements (fractions of its transactions)."""
        self.cuts = sorted(cuts)

    @precondition(lambda self: self.positive["pending"])
    @rule(data=st.data())
    def release_and_pay_out(self, data):
        """Release a payee's pending money and pay part of its available balance out: the machine's own
        release and payout rules need each other, and a short run can miss payouts altogether."""
        payee, currency, pending = data.draw(st.sampled_from(self.positive["pending"]))
        amount = Money(pending, currency)
        post_transaction(
            idempotency_key=f"release:statement-machine:{next(_releases)}",
            kind="release",
            entries=[
                debit(accounts.payee_pending(payee.pk), amount),
                credit(accounts.payee_available(payee.pk), amount),
            ],
            occurred_at=timezone.now(),
            memo="released by the statement machine",
        )
        available = account_balance(accounts.payee_available(payee.pk), currency).amount_minor
        if available <= 0:
            return  # a debt from an earlier refund or dispute took it
        paid = Money(data.draw(st.integers(1, available)), currency)
        payout = send_payout(
            payout_id=create_payout(payee=payee, amount=paid, now=timezone.now()).pk, now=timezone.now()
        )
        assert payout.status == Payout.Status.PAID, payout.failure_message
        self.count("payout")

    @precondition(lambda self: self.disputable_payments())
    @rule(data=st.data())
    def dispute_lost_with_a_fee(self, data):
        """A dispute the provider withholds with a fee, then lost: the path that charges payees the fee (the
        machine's own rules reach it only now and then)."""
        self.open_dispute(data, True, 1500)
        self.close_dispute(data, won=False)

    @rule()
    def issue_payout_statements(self):
        """What the hourly safety net does: every payout that left gets its statement, once."""
        for payout_id in payouts_missing_statements():
            statement = issue_payout_statement(payout_id=payout_id, now=timezone.now())
            assert statement is not None
            assert statement.payout_id == payout_id
            assert issue_payout_statement(payout_id=payout_id, now=timezone.now()).pk == statement.pk
            type(self).statements_written += 1
        assert not payouts_missing_statements()

    @invariant()
    def statements_add_up(self):
        end = timezone.now() + timedelta(seconds=1)
        balances = {(p.pk, b.currency): b.total for p in self.payees for b in payee_balances(p.pk)}
        for payee in self.payees:
            for currency in CURRENCIES:
                if not payee_accounts(payee.pk, currency):
                    continue
                whole = statement_figures(payee_id=payee.pk, currency=currency, start=EPOCH, end=end)
                assert whole.opening == 0
                assert whole.closing == balances.get((payee.pk, currency), 0), (payee.pk, currency)
                assert whole.closing == sum(whole.closing_by_account.values())
                assert whole.figures == expected_figures(payee, currency), (payee.pk, currency)
                type(self).kinds_seen |= {item.kind for item in whole.items}

                posted = sorted(
                    LedgerTransaction.objects.filter(
                        Q(entries__account_id__in=payee_accounts(payee.pk, currency))
                    ).values_list("posted_at", flat=True)
                )
                bounds = [EPOCH, *(posted[int(f * (len(posted) - 1))] for f in self.cuts if posted), end]
                opening, totals = 0, dict.fromkeys(FIGURES, 0)
                for start, stop in zip(bounds, bounds[1:], strict=False):
                    piece = statement_figures(payee_id=payee.pk, currency=currency, start=start, end=stop)
                    assert piece.opening == opening, "a statement must open at the previous one's closing"
                    assert sum(piece.closing_by_account.values()) == piece.closing
                    opening = piece.closing
                    for name in FIGURES:
                        totals[name] += piece.figures[name]
                    type(self).cuts_seen += 1
                assert opening == whole.closing
                assert totals == whole.figures
        for statement in PayoutStatement.objects.all():
            figures = statement_figures(
                payee_id=statement.payee_id,
                currency=statement.currency,
                start=statement.period_start,
                end=statement.period_end,
            )
            assert statement.opening_minor == figures.opening
            assert statement.closing_minor == figures.closing


def test_statements_equal_ledger_balances_for_random_histories(fake_stripe, request):  # noqa: F811
    StatementMachine.examples = StatementMachine.steps = StatementMachine.cuts_seen = 0
    StatementMachine.statements_written = 0
    StatementMachine.kinds_seen = set()
    StatementMachine.counts = defaultdict(int)
    StatementMachine.fake = fake_stripe
    profile = settings.get_profile("tollgate-statement-machine")
    started = time.monotonic()

    run_state_machine_as_test(StatementMachine, settings=profile)

    assert StatementMachine.examples >= profile.max_examples
    counts = StatementMachine.counts
    for path in ["pay", "refund:partial", "dispute:lost", "payout"]:
        assert counts.get(path, 0) > 0, (path, dict(counts))
    assert StatementMachine.statements_written > 0
    # Every kind of movement of a payee's balance was stated at least once.
    assert {"capture", "refund", "dispute_loss", "dispute_fee", "payout"} <= StatementMachine.kinds_seen, (
        StatementMachine.kinds_seen
    )
    assert StatementMachine.cuts_seen > StatementMachine.steps
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(
                f"statement machine: {StatementMachine.examples} examples, {StatementMachine.steps} steps, "
                f"{StatementMachine.cuts_seen} statements checked, {StatementMachine.statements_written} issued, "
                f"{time.monotonic() - started:.1f} s"
            )
