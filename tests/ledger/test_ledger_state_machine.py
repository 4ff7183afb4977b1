"""A Hypothesis state machine over the ledger's money flows, in EUR, CZK and JPY (RELIABILITY.md §6 row 17).

Every rule posts through `post_transaction`/`reverse_transaction`, the way the app does (captures split by
`split_line_amount`, refunds, releases, disputes, payouts, fees, reversals, replays, conflicts, overdrafts).
The machine keeps its own model of every account's debits and credits, and predicts each outcome before
posting: success, the same transaction again (replay), `LedgerConflict` or `InsufficientFunds`.
After every step the invariants hold: I1 each transaction balances per currency; I2 all accounts net to zero
per currency; I3 running totals equal the journal; I5 no no-overdraft account below zero; and the database
equals the model.

Isolation: the whole test runs in pytest-django's transaction; each example opens a savepoint in
`__init__` and rolls it back in `teardown` (Hypothesis calls it after every example, failing or not), so each
example starts from an empty ledger, which `__init__` asserts. `test_isolation_is_what_keeps_examples_apart`
proves that assertion fires when the rollback is left out.

Size: TOLLGATE_HYPOTHESIS_PROFILE (tests/ledger/conftest.py): 50 runs x 30 steps by default, 200 x 50 on `ci`.
A failure prints the shrunk steps and a `@reproduce_failure` blob; Hypothesis' example database replays it
first on the next run.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import pytest
from django.db import transaction
from django.db.models import Case, F, IntegerField, Q, Sum, When
from django.utils import timezone
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from commissions.rules import split_line_amount
from ledger import accounts
from ledger.accounts import AccountSpec
from ledger.errors import InsufficientFunds, LedgerConflict
from ledger.models import Account, BalanceRule, Direction, Entry, LedgerTransaction
from ledger.money import Money, allocate
from ledger.selectors import check_ledger
from ledger.services import Posting, credit, debit, post_transaction, reverse_transaction
from tests.factories import PayeeFactory

pytestmark = pytest.mark.django_db

CURRENCIES = ["EUR", "CZK", "JPY"]
PROVIDERS = ["stripe", "gopay"]
VAT_RATES = [0, 1000, 1200, 1500, 2100, 2700]
PAYEES = 3

Key = tuple[str, str]  # (account code, currency)
SIGNED = Case(
    When(direction=Direction.DEBIT, then=F("amount_minor")), default=-F("amount_minor"), output_field=IntegerField()
)


def rows() -> tuple[int, int, int]:
    """Row counts. Equal counts before and after a step, plus the invariants after it (every running total
    equals the journal and the model, and every account the database has is one the model expects), mean
    the step wrote nothing: rows cannot change in place (see test_tamper.py)."""
    return Account.objects.count(), LedgerTransaction.objects.count(), Entry.objects.count()


class LeakedState(AssertionError):
    """An example started with rows left over from an earlier one."""


def flip(direction: Direction) -> Direction:
    return Direction.CREDIT if direction == Direction.DEBIT else Direction.DEBIT


def deltas_of(postings: list[Posting]) -> dict[Key, tuple[int, int]]:
    deltas: dict[Key, list[int]] = defaultdict(lambda: [0, 0])
    for posting in postings:
        side = 0 if posting.direction == Direction.DEBIT else 1
        deltas[(posting.account.code, posting.amount.currency)][side] += posting.amount.amount_minor
    return {key: (d, c) for key, (d, c) in deltas.items() if d or c}


@dataclass
class Capture:
    currency: str
    provider: str
    gross: int
    # what each credit leg got, to refund in proportion: (spec, amount)
    legs: list[tuple[AccountSpec, int]]
    refunded: int = 0
    reversed: bool = False


@dataclass
class Posted:
    pk: object
    key: str
    postings: list[Posting]
    capture: Capture | None = None
    reversal_pk: object = None


class LedgerMachine(RuleBasedStateMachine):
    examples = 0
    steps = 0

    def __init__(self):
        super().__init__()
        leftovers = (Account.objects.count(), LedgerTransaction.objects.count(), Entry.objects.count())
        if leftovers != (0, 0, 0):
            raise LeakedState(f"example started with (accounts, transactions, entries) = {leftovers}")
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        try:
            self.payees = [PayeeFactory().pk for _ in range(PAYEES)]
        except BaseException:
            self.teardown()  # Hypothesis only tears down machines it got back
            raise
        type(self).examples += 1
        self.model: dict[Key, tuple[int, int]] = {}
        self.rules: dict[str, BalanceRule] = {}
        self.posted: list[Posted] = []
        self.counter = 0

    def teardown(self):
        transaction.set_rollback(True)
        self._atomic.__exit__(None, None, None)

    # --- the model ---------------------------------------------------------------------------------------

    def balance(self, spec: AccountSpec, currency: str) -> int:
        """Credit-positive for liabilities and income, debit-positive for assets and expenses."""
        debits, credits = self.model.get((spec.code, currency), (0, 0))
        return debits - credits if spec.kind in ("asset", "expense") else credits - debits

    def would_break_a_rule(self, deltas: dict[Key, tuple[int, int]]) -> bool:
        for (code, currency), (dd, dc) in deltas.items():
            debits, credits = self.model.get((code, currency), (0, 0))
            rule_ = self.rules.get(code, BalanceRule.NONE)
            if rule_ == BalanceRule.DEBITS_MUST_NOT_EXCEED_CREDITS and debits + dd > credits + dc:
                return True
            if rule_ == BalanceRule.CREDITS_MUST_NOT_EXCEED_DEBITS and credits + dc > debits + dd:
                return True
        return False

    def apply(self, deltas: dict[Key, tuple[int, int]]) -> None:
        for key, (dd, dc) in deltas.items():
            debits, credits = self.model.get(key, (0, 0))
            self.model[key] = (debits + dd, credits + dc)

    def next_key(self, kind: str) -> str:
        self.counter += 1
        return f"{kind}:{self.counter}"

    def post(self, kind: str, postings: list[Posting], capture: Capture | None = None) -> Posted | None:
        """Post a new transaction; the model predicts whether the database accepts it."""
        for posting in postings:
            self.rules.setdefault(posting.account.code, posting.account.balance_rule)
        key = self.next_key(kind)
        deltas = deltas_of(postings)
        if self.would_break_a_rule(deltas):
            self.expect_refusal(InsufficientFunds, key, postings)
            return None
        txn = post_transaction(idempotency_key=key, kind=kind, entries=postings, occurred_at=timezone.now())
        assert txn.idempotency_key == key
        self.apply(deltas)
        record = Posted(txn.pk, key, postings, capture)
        self.posted.append(record)
        return record

    def expect_refusal(self, error: type[Exception], key: str, postings: list[Posting]) -> None:
        before = rows()
        with pytest.raises(error):
            post_transaction(idempotency_key=key, kind="refused", entries=postings, occurred_at=timezone.now())
        assert rows() == before, "a refused posting wrote something"

    def positive(self, make_spec, currency_list=CURRENCIES) -> list[tuple[int, str]]:
        """(payee, currency) pairs whose account from `make_spec` has a positive balance in the model."""
        return [
            (payee, currency)
            for payee in self.payees
            for currency in currency_list
            if self.balance(make_spec(payee), currency) > 0
        ]

    # --- money flows -------------------------------------------------------------------------------------

    @rule(
        currency=st.sampled_from(CURRENCIES),
        provider=st.sampled_from(PROVIDERS),
        lines=st.lists(
            st.tuples(
                st.integers(0, PAYEES - 1),
                st.integers(1, 10**8),
                st.one_of(st.sampled_from([0, 1000, 1500, 10_000]), st.integers(0, 10_000)),
                st.sampled_from(VAT_RATES),
            ),
            min_size=1,
            max_size=4,
        ),
        release_now=st.booleans(),
    )
    def capture(self, currency, provider, lines, release_now):
        """Debit the provider's clearing G; credit each payee's pending share, commission and VAT (I7)."""
        gross = sum(amount for _, amount, _, _ in lines)
        postings = [debit(accounts.provider_clearing(provider), Money(gross, currency))]
        legs = []
        for payee_index, amount, bps, vat_bps in lines:
            split = split_line_amount(amount_minor=amount, commission_bps=bps, commission_vat_bps=vat_bps)
            assert split.payee_share_minor + split.commission_minor + split.commission_vat_minor == amount
            pending = accounts.payee_pending(self.payees[payee_index])
            for spec, part in [
                (pending, split.payee_share_minor),
                (accounts.PLATFORM_COMMISSION, split.commission_minor),
                (accounts.PLATFORM_VAT_PAYABLE, split.commission_vat_minor),
            ]:
                postings.append(credit(spec, Money(part, currency)))
                legs.append((spec, part))
        self.post("capture", postings, Capture(currency, provider, gross, legs))
        if release_now:  # an event ticket: releasable at once (and it keeps payouts within a few steps' reach)
            for payee, currency_ in self.positive(accounts.payee_pending, [currency]):
                amount = self.balance(accounts.payee_pending(payee), currency_)
                self.post(
                    "release",
                    [
                        debit(accounts.payee_pending(payee), Money(amount, currency_)),
                        credit(accounts.payee_available(payee), Money(amount, currency_)),
                    ],
                )

    @precondition(lambda self: self.positive(accounts.payee_pending))
    @rule(data=st.data())
    def release(self, data):
        """pending -> available (the delivery window passed)."""
        payee, currency = data.draw(st.sampled_from(self.positive(accounts.payee_pending)))
        pending = self.balance(accounts.payee_pending(payee), currency)
        amount = data.draw(st.integers(1, pending))
        self.post(
            "release",
            [
                debit(accounts.payee_pending(payee), Money(amount, currency)),
                credit(accounts.payee_available(payee), Money(amount, currency)),
            ],
        )

    def refundable(self) -> list[Posted]:
        return [p for p in self.posted if p.capture and not p.capture.reversed and p.capture.refunded < p.capture.gross]

    @precondition(lambda self: self.refundable())
    @rule(data=st.data())
    def refund(self, data):
        """Part of a capture back to the buyer, in proportion to its legs; the payee's part comes from pending
        while it lasts, then from available (which may go negative), as `refunds.services` does."""
        record = data.draw(st.sampled_from(self.refundable()))
        capture = record.capture
        amount = data.draw(st.integers(1, capture.gross - capture.refunded))
        parts = allocate(amount, [part for _, part in capture.legs])
        assert sum(parts) == amount
        currency = capture.currency
        postings = [credit(accounts.provider_clearing(capture.provider), Money(amount, currency))]
        taken: dict[str, int] = defaultdict(int)  # what this refund already takes from each pending account
        for (spec, _), part in zip(capture.legs, parts, strict=True):
            if spec.payee_id is None:
                postings.append(debit(spec, Money(part, currency)))
                continue
            left = self.balance(spec, currency) - taken[spec.code]
            from_pending = max(0, min(part, left))
            taken[spec.code] += from_pending
            postings.append(debit(spec, Money(from_pending, currency)))
            postings.append(debit(accounts.payee_available(spec.payee_id), Money(part - from_pending, currency)))
        if self.post("refund", postings):
            capture.refunded += amount

    @rule(payee=st.integers(0, PAYEES - 1), currency=st.sampled_from(CURRENCIES), amount=st.integers(1, 10**7))
    def dispute_opened(self, payee, currency, amount):
        """available -> reserved, even when that drives available negative."""
        payee_id = self.payees[payee]
        self.post(
            "dispute_opened",
            [
                debit(accounts.payee_available(payee_id), Money(amount, currency)),
                credit(accounts.payee_reserved(payee_id), Money(amount, currency)),
            ],
        )

    @precondition(lambda self: self.positive(accounts.payee_reserved))
    @rule(data=st.data(), won=st.booleans(), provider=st.sampled_from(PROVIDERS))
    def dispute_closed(self, data, won, provider):
        """Won: reserved -> available. Lost: reserved -> the provider takes the money back."""
        payee, currency = data.draw(st.sampled_from(self.positive(accounts.payee_reserved)))
        amount = data.draw(st.integers(1, self.balance(accounts.payee_reserved(payee), currency)))
        to = accounts.payee_available(payee) if won else accounts.provider_clearing(provider)
        self.post(
            "dispute_won" if won else "dispute_lost",
            [debit(accounts.payee_reserved(payee), Money(amount, currency)), credit(to, Money(amount, currency))],
        )

    @precondition(lambda self: self.positive(accounts.payee_available))
    @rule(data=st.data())
    def payout(self, data):
        """available -> payouts:in_transit, at most the available balance (I5)."""
        payee, currency = data.draw(st.sampled_from(self.positive(accounts.payee_available)))
        amount = data.draw(st.integers(1, self.balance(accounts.payee_available(payee), currency)))
        self.post(
            "payout",
            [
                debit(accounts.payee_available(payee), Money(amount, currency)),
                credit(accounts.PAYOUTS_IN_TRANSIT, Money(amount, currency)),
            ],
        )

    @precondition(lambda self: any(self.balance(accounts.PAYOUTS_IN_TRANSIT, c) > 0 for c in CURRENCIES))
    @rule(data=st.data())
    def payout_confirmed(self, data):
        """payouts:in_transit -> the paying bank account."""
        currency = data.draw(
            st.sampled_from([c for c in CURRENCIES if self.balance(accounts.PAYOUTS_IN_TRANSIT, c) > 0])
        )
        amount = data.draw(st.integers(1, self.balance(accounts.PAYOUTS_IN_TRANSIT, currency)))
        self.post(
            "payout_confirmed",
            [
                debit(accounts.PAYOUTS_IN_TRANSIT, Money(amount, currency)),
                credit(accounts.BANK_OPERATING, Money(amount, currency)),
            ],
        )

    @rule(currency=st.sampled_from(CURRENCIES), provider=st.sampled_from(PROVIDERS), amount=st.integers(1, 10**5))
    def provider_fee(self, currency, provider, amount):
        self.post(
            "provider_fee",
            [
                debit(accounts.PLATFORM_PROVIDER_FEES, Money(amount, currency)),
                credit(accounts.provider_clearing(provider), Money(amount, currency)),
            ],
        )

    # --- corrections, retries and refusals ----------------------------------------------------------------

    @precondition(lambda self: self.posted)
    @rule(data=st.data())
    def reversal(self, data):
        """Reverse any earlier transaction (a reversal too): once; again returns the same reversal; refused
        with nothing written when the mirror image would overdraw a no-overdraft account."""
        record = data.draw(st.sampled_from(self.posted))
        original = LedgerTransaction.objects.get(pk=record.pk)
        if record.reversal_pk is not None:
            before = rows()
            again = reverse_transaction(original=original, occurred_at=timezone.now())
            assert again.pk == record.reversal_pk
            assert rows() == before
            return
        mirrored = [Posting(p.account, flip(p.direction), p.amount) for p in record.postings]
        deltas = deltas_of(mirrored)
        if self.would_break_a_rule(deltas):
            before = rows()
            with pytest.raises(InsufficientFunds):
                reverse_transaction(original=original, occurred_at=timezone.now())
            assert rows() == before
            return
        reversal = reverse_transaction(original=original, occurred_at=timezone.now())
        assert reversal.reverses_id == original.pk
        assert reversal.idempotency_key == f"reversal:{original.pk}"
        self.apply(deltas)
        record.reversal_pk = reversal.pk
        if record.capture:
            record.capture.reversed = True
        reversal_record = Posted(reversal.pk, reversal.idempotency_key, mirrored)
        self.posted.append(reversal_record)

    @precondition(lambda self: self.posted)
    @rule(data=st.data())
    def replay(self, data):
        """The same key and entries (in any order) again: the first transaction, nothing new."""
        record = data.draw(st.sampled_from(self.posted))
        postings = data.draw(st.permutations(record.postings))
        before = rows()

        again = post_transaction(
            idempotency_key=record.key, kind="replay", entries=postings, occurred_at=timezone.now()
        )

        assert again.pk == record.pk
        assert rows() == before

    @precondition(lambda self: self.posted)
    @rule(data=st.data(), bump=st.integers(1, 1000))
    def conflicting_replay(self, data, bump):
        """The same key with other (still balanced) entries: LedgerConflict, nothing written."""
        record = data.draw(st.sampled_from(self.posted))
        postings = [p for p in record.postings if p.amount.amount_minor]
        first_debit = next(p for p in postings if p.direction == Direction.DEBIT)
        first_credit = next(
            p for p in postings if p.direction == Direction.CREDIT and p.amount.currency == first_debit.amount.currency
        )
        changed = [
            Posting(p.account, p.direction, Money(p.amount.amount_minor + bump, p.amount.currency))
            if p is first_debit or p is first_credit
            else p
            for p in postings
        ]
        self.expect_refusal(LedgerConflict, record.key, changed)

    @rule(
        data=st.data(),
        which=st.sampled_from(["pending", "reserved", "in_transit"]),
        currency=st.sampled_from(CURRENCIES),
        extra=st.integers(1, 10**6),
        with_valid_legs=st.booleans(),
    )
    def overdraft(self, data, which, currency, extra, with_valid_legs):
        """Debit a no-overdraft account past its balance: InsufficientFunds, and nothing at all is written,
        not even the valid legs posted alongside."""
        if which == "in_transit":
            spec = accounts.PAYOUTS_IN_TRANSIT
        else:
            payee = data.draw(st.sampled_from(self.payees))
            spec = accounts.payee_pending(payee) if which == "pending" else accounts.payee_reserved(payee)
        amount = self.balance(spec, currency) + extra
        postings = [debit(spec, Money(amount, currency)), credit(accounts.BANK_OPERATING, Money(amount, currency))]
        if with_valid_legs:
            postings += [
                debit(accounts.provider_clearing("stripe"), Money(extra, currency)),
                credit(accounts.PLATFORM_COMMISSION, Money(extra, currency)),
            ]
        self.rules.setdefault(spec.code, spec.balance_rule)
        assert self.would_break_a_rule(deltas_of(postings))
        self.expect_refusal(InsufficientFunds, self.next_key("overdraft"), postings)

    # --- invariants, after every step (three queries, so that 50 x 30 steps stay fast) -------------------

    @invariant()
    def ledger_invariants(self):
        type(self).steps += 1
        accounts_ = {
            (code, currency): (debits, credits, rule_)
            for code, currency, debits, credits, rule_ in Account.objects.values_list(
                "code", "currency", "debits_posted", "credits_posted", "balance_rule"
            )
        }
        running = {key: (debits, credits) for key, (debits, credits, _) in accounts_.items()}
        journal = {key: (0, 0) for key in accounts_}
        for code, currency, debits, credits in Entry.objects.values_list("account__code", "account__currency").annotate(
            debits=Sum("amount_minor", filter=Q(direction=Direction.DEBIT), default=0),
            credits=Sum("amount_minor", filter=Q(direction=Direction.CREDIT), default=0),
        ):
            journal[(code, currency)] = (debits, credits)
        unbalanced = list(
            Entry.objects.values("transaction_id", "currency")
            .annotate(net=Sum(SIGNED))
            .exclude(net=0)
            .values_list("transaction_id", "currency", "net")
        )
        net: dict[str, int] = defaultdict(int)
        for (_, currency), (debits, credits) in running.items():
            net[currency] += debits - credits
        overdrawn = [
            key
            for key, (debits, credits, rule_) in accounts_.items()
            if (rule_ == BalanceRule.DEBITS_MUST_NOT_EXCEED_CREDITS and debits > credits)
            or (rule_ == BalanceRule.CREDITS_MUST_NOT_EXCEED_DEBITS and credits > debits)
        ]

        assert unbalanced == [], f"I1: transactions that do not balance: {unbalanced}"
        assert all(v == 0 for v in net.values()), f"I2: accounts do not net to zero: {dict(net)}"
        assert running == journal, "I3: running totals differ from the journal"
        assert overdrawn == [], f"I5: no-overdraft accounts below zero: {overdrawn}"
        assert running == self.model, "the database differs from the model"
        if type(self).steps % 10 == 0:  # what `manage.py ledger_check` proves, now and then (it costs more)
            report = check_ledger()
            assert report.ok, report


def test_ledger_state_machine():
    LedgerMachine.examples = LedgerMachine.steps = 0
    profile = settings.get_profile("tollgate-ledger-machine")

    run_state_machine_as_test(LedgerMachine, settings=profile)

    assert LedgerMachine.examples >= profile.max_examples
    assert LedgerMachine.steps >= LedgerMachine.examples * profile.stateful_step_count // 2
    # every example was rolled back: nothing is left behind
    assert (Account.objects.count(), LedgerTransaction.objects.count(), Entry.objects.count()) == (0, 0, 0)


class LeakyMachine(LedgerMachine):
    """The same machine, but its teardown keeps what the example wrote instead of rolling it back."""

    def teardown(self):
        self._atomic.__exit__(None, None, None)


def test_isolation_is_what_keeps_examples_apart():
    """Each example's savepoint is what gives the next one an empty ledger: with the rollback left out of
    `teardown`, the next machine refuses to start (the check in `__init__` is live)."""
    for machine_class, leaks in [(LedgerMachine, False), (LeakyMachine, True)]:
        machine = machine_class()
        try:
            machine.capture(currency="EUR", provider="stripe", lines=[(0, 12900, 1000, 2100)], release_now=True)
            machine.ledger_invariants()
            assert LedgerTransaction.objects.count() == 2
        finally:
            machine.teardown()  # never leave the machine's savepoint open on the test's connection

        if leaks:
            with pytest.raises(LeakedState, match=r"\(accounts, transactions, entries\) = \(5, 2, 6\)"):
                machine_class()
        else:
            assert LedgerTransaction.objects.count() == 0
            machine_class().teardown()
