"""`post_transaction` and `reverse_transaction`, the only writers of the ledger (DESIGN.md §4)."""

from __future__ import annotations

import pytest
from django.utils import timezone

from commissions.rules import split_line_amount
from ledger import accounts
from ledger.accounts import AccountSpec
from ledger.errors import InsufficientFunds, LedgerConflict, LedgerError
from ledger.models import Account, AccountKind, BalanceRule, Direction, Entry, LedgerTransaction
from ledger.money import Money
from ledger.selectors import account_balance, check_ledger, payee_balances
from ledger.services import credit, debit, post_transaction, reverse_transaction
from tests.factories import PayeeFactory
from tests.ledger.helpers import entry_sums, net_per_currency, snapshot, totals

pytestmark = pytest.mark.django_db

CLEARING = accounts.provider_clearing("sandbox")


def eur(minor: int) -> Money:
    return Money(minor, "EUR")


def capture_entries(payee_id: int, gross: int = 12900, currency: str = "EUR"):
    """10 % commission, 21 % VAT on it: 12900 -> 11339 + 1290 + 271."""
    split = split_line_amount(amount_minor=gross, commission_bps=1000, commission_vat_bps=2100)
    return [
        debit(CLEARING, Money(gross, currency)),
        credit(accounts.payee_pending(payee_id), Money(split.payee_share_minor, currency)),
        credit(accounts.PLATFORM_COMMISSION, Money(split.commission_minor, currency)),
        credit(accounts.PLATFORM_VAT_PAYABLE, Money(split.commission_vat_minor, currency)),
    ]


def post(key: str, entries, kind: str = "test", **kwargs) -> LedgerTransaction:
    return post_transaction(idempotency_key=key, kind=kind, entries=entries, occurred_at=timezone.now(), **kwargs)


def release_entries(payee_id: int, amount: int, currency: str = "EUR"):
    return [
        debit(accounts.payee_pending(payee_id), Money(amount, currency)),
        credit(accounts.payee_available(payee_id), Money(amount, currency)),
    ]


@pytest.fixture
def seller(db):
    return PayeeFactory()


def test_a_capture_posts_balanced_entries_and_running_totals(seller):
    txn = post("capture:payment:1", capture_entries(seller.pk), kind="capture", memo="Order 1", metadata={"o": 1})

    txn.refresh_from_db()
    assert (txn.idempotency_key, txn.kind, txn.memo, txn.metadata) == (
        "capture:payment:1",
        "capture",
        "Order 1",
        {"o": 1},
    )
    assert sorted(txn.entries.values_list("account__code", "direction", "amount_minor", "currency")) == [
        (f"payee:{seller.pk}:pending", "credit", 11339, "EUR"),
        ("platform:commission", "credit", 1290, "EUR"),
        ("platform:vat_payable", "credit", 271, "EUR"),
        ("provider:sandbox:clearing", "debit", 12900, "EUR"),
    ]
    assert account_balance(CLEARING, "EUR") == eur(12900)
    assert account_balance(accounts.payee_pending(seller.pk), "EUR") == eur(11339)
    assert account_balance(accounts.PLATFORM_COMMISSION, "EUR") == eur(1290)
    assert account_balance(accounts.PLATFORM_VAT_PAYABLE, "EUR") == eur(271)
    pending = Account.objects.get(code=f"payee:{seller.pk}:pending", currency="EUR")
    assert (pending.kind, pending.balance_rule, pending.payee_id) == (
        AccountKind.LIABILITY,
        BalanceRule.DEBITS_MUST_NOT_EXCEED_CREDITS,
        seller.pk,
    )
    assert totals() == entry_sums()
    assert net_per_currency() == {"EUR": 0}
    assert check_ledger().ok


def test_same_key_and_same_entries_returns_the_first_transaction_and_writes_nothing(seller):
    first = post("capture:payment:1", capture_entries(seller.pk))
    before = snapshot()

    again = post("capture:payment:1", capture_entries(seller.pk))
    reordered = post("capture:payment:1", list(reversed(capture_entries(seller.pk))))

    assert again.pk == first.pk
    assert reordered.pk == first.pk
    assert snapshot() == before
    assert LedgerTransaction.objects.count() == 1
    assert Entry.objects.count() == 4
    assert account_balance(CLEARING, "EUR") == eur(12900)  # not doubled


def test_a_replay_is_returned_even_when_the_same_posting_would_now_be_refused(seller):
    post("capture:payment:1", capture_entries(seller.pk))
    release = post("release:1", release_entries(seller.pk, 11339))  # pending is now 0
    before = snapshot()

    assert post("release:1", release_entries(seller.pk, 11339)).pk == release.pk
    assert snapshot() == before


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(
            lambda e: [
                *e[:2],
                credit(accounts.PLATFORM_COMMISSION, eur(1289)),
                credit(accounts.PLATFORM_VAT_PAYABLE, eur(272)),
            ],
            id="amount",
        ),
        pytest.param(
            lambda e: [e[0], credit(accounts.payee_available(e[1].account.payee_id), e[1].amount), *e[2:]], id="account"
        ),
        pytest.param(
            lambda e: [debit(CLEARING, eur(12900)), credit(accounts.PLATFORM_COMMISSION, eur(12900))], id="legs"
        ),
        pytest.param(
            lambda e: [*e, debit(CLEARING, eur(1)), credit(accounts.PLATFORM_COMMISSION, eur(1))], id="extra-legs"
        ),
        pytest.param(
            lambda e: [
                debit(CLEARING, Money(12900, "CZK")),
                *[credit(p.account, Money(p.amount.amount_minor, "CZK")) for p in e[1:]],
            ],
            id="currency",
        ),
    ],
)
def test_same_key_with_other_entries_is_a_conflict_and_writes_nothing(seller, change):
    entries = capture_entries(seller.pk)
    post("capture:payment:1", entries)
    before = snapshot()

    with pytest.raises(LedgerConflict):
        post("capture:payment:1", change(entries))

    assert snapshot() == before


def test_a_conflicting_amount_is_detected(seller):
    post("k", [debit(CLEARING, eur(100)), credit(accounts.PLATFORM_COMMISSION, eur(100))])
    with pytest.raises(LedgerConflict):
        post("k", [debit(CLEARING, eur(101)), credit(accounts.PLATFORM_COMMISSION, eur(101))])
    with pytest.raises(LedgerConflict):  # same amounts, directions swapped
        post("k", [credit(CLEARING, eur(100)), debit(accounts.PLATFORM_COMMISSION, eur(100))])


@pytest.mark.parametrize(
    "entries",
    [
        pytest.param([], id="empty"),
        pytest.param([debit(CLEARING, eur(100))], id="one-leg"),
        pytest.param([debit(CLEARING, eur(0)), credit(accounts.PLATFORM_COMMISSION, eur(0))], id="all-zero"),
        pytest.param([debit(CLEARING, eur(100)), credit(accounts.PLATFORM_COMMISSION, eur(99))], id="unbalanced"),
        pytest.param(
            [debit(CLEARING, eur(100)), credit(accounts.PLATFORM_COMMISSION, Money(100, "CZK"))],
            id="balanced-only-across-currencies",
        ),
        pytest.param([debit(CLEARING, eur(-100)), credit(accounts.PLATFORM_COMMISSION, eur(-100))], id="negative"),
        pytest.param(
            [debit(CLEARING, eur(100)), credit(accounts.PLATFORM_COMMISSION, eur(150)), debit(CLEARING, eur(-50))],
            id="negative-leg-that-would-balance",
        ),
    ],
)
def test_invalid_postings_raise_ledger_error_and_write_nothing(entries):
    with pytest.raises(LedgerError):
        post("bad", entries)

    assert snapshot() == {"accounts": [], "transactions": [], "entries": []}


def test_zero_legs_are_dropped(seller):
    txn = post(
        "k",
        [
            debit(CLEARING, eur(100)),
            credit(accounts.PLATFORM_VAT_PAYABLE, eur(0)),
            credit(accounts.payee_pending(seller.pk), eur(100)),
        ],
    )

    assert txn.entries.count() == 2
    assert not Account.objects.filter(code="platform:vat_payable").exists()


def test_overdrawing_a_no_overdraft_account_raises_insufficient_funds_and_writes_nothing(seller):
    post("capture:payment:1", capture_entries(seller.pk))  # pending 11339
    before = snapshot()

    with pytest.raises(InsufficientFunds) as raised:
        post("release:1", release_entries(seller.pk, 11340))

    assert (raised.value.account_code, raised.value.currency) == (f"payee:{seller.pk}:pending", "EUR")
    assert snapshot() == before
    assert not Account.objects.filter(code=f"payee:{seller.pk}:available").exists()  # not even created
    # the exact balance may be released, leaving zero
    post("release:1", release_entries(seller.pk, 11339))
    assert account_balance(accounts.payee_pending(seller.pk), "EUR") == eur(0)
    assert account_balance(accounts.payee_available(seller.pk), "EUR") == eur(11339)


def test_a_new_no_overdraft_account_cannot_start_below_zero(seller):
    with pytest.raises(InsufficientFunds):
        post("payout:1", [debit(accounts.payee_pending(seller.pk), eur(1)), credit(CLEARING, eur(1))])

    assert snapshot() == {"accounts": [], "transactions": [], "entries": []}


def test_insufficient_funds_is_judged_per_currency(seller):
    post("capture:czk", capture_entries(seller.pk, gross=100000, currency="CZK"))
    before = snapshot()

    with pytest.raises(InsufficientFunds):  # plenty of CZK pending, no EUR
        post("release:eur", release_entries(seller.pk, 1, currency="EUR"))
    assert snapshot() == before


def test_the_net_of_a_transaction_counts_not_each_leg(seller):
    post("capture:payment:1", capture_entries(seller.pk))  # pending 11339
    pending = accounts.payee_pending(seller.pk)
    post(
        "adjust",
        [
            debit(pending, eur(20000)),
            credit(pending, eur(10000)),
            credit(CLEARING, eur(10000)),
        ],
    )
    assert account_balance(pending, "EUR") == eur(1339)


def test_credits_must_not_exceed_debits_is_enforced_too():
    prepaid = AccountSpec("platform:prepaid_fees", AccountKind.ASSET, BalanceRule.CREDITS_MUST_NOT_EXCEED_DEBITS)
    post("prepay", [debit(prepaid, eur(500)), credit(accounts.BANK_OPERATING, eur(500))])
    before = snapshot()

    with pytest.raises(InsufficientFunds):
        post("use", [debit(accounts.PLATFORM_PROVIDER_FEES, eur(501)), credit(prepaid, eur(501))])
    assert snapshot() == before
    post("use", [debit(accounts.PLATFORM_PROVIDER_FEES, eur(500)), credit(prepaid, eur(500))])
    assert account_balance(prepaid, "EUR") == eur(0)


def test_payee_available_may_go_negative(seller):
    # a dispute opened after the payout: available -> reserved drives available below zero
    post(
        "dispute:1",
        [debit(accounts.payee_available(seller.pk), eur(5000)), credit(accounts.payee_reserved(seller.pk), eur(5000))],
    )

    assert account_balance(accounts.payee_available(seller.pk), "EUR") == eur(-5000)
    assert account_balance(accounts.payee_reserved(seller.pk), "EUR") == eur(5000)
    [balance] = payee_balances(seller.pk)
    assert (balance.available, balance.reserved, balance.total) == (-5000, 5000, 0)
    assert check_ledger().ok


def test_an_existing_account_with_another_rule_is_refused(seller):
    post("k1", [debit(CLEARING, eur(100)), credit(accounts.PLATFORM_COMMISSION, eur(100))])
    before = snapshot()
    wrong = AccountSpec("platform:commission", AccountKind.INCOME, BalanceRule.DEBITS_MUST_NOT_EXCEED_CREDITS)

    with pytest.raises(LedgerError):
        post("k2", [debit(CLEARING, eur(100)), credit(wrong, eur(100))])
    assert snapshot() == before


def test_a_multi_currency_transaction_balances_per_currency(seller):
    txn = post(
        "fx",
        [
            *capture_entries(seller.pk, gross=12900, currency="EUR"),
            *capture_entries(seller.pk, gross=320000, currency="CZK"),
            debit(CLEARING, Money(5000, "JPY")),
            credit(accounts.payee_pending(seller.pk), Money(5000, "JPY")),
        ],
    )

    assert txn.entries.count() == 10
    assert {b.currency: b.pending for b in payee_balances(seller.pk)} == {"CZK": 281280, "EUR": 11339, "JPY": 5000}
    assert Account.objects.filter(code=CLEARING.code).count() == 3  # one account per currency
    assert net_per_currency() == {"EUR": 0, "CZK": 0, "JPY": 0}
    assert totals() == entry_sums()
    assert check_ledger().ok


def test_two_legs_on_one_account_are_both_kept(seller):
    pending = accounts.payee_pending(seller.pk)
    txn = post("two-lines", [debit(CLEARING, eur(300)), credit(pending, eur(100)), credit(pending, eur(200))])

    assert sorted(txn.entries.values_list("amount_minor", flat=True)) == [100, 200, 300]
    assert account_balance(pending, "EUR") == eur(300)
    assert (
        post("two-lines", [debit(CLEARING, eur(300)), credit(pending, eur(200)), credit(pending, eur(100))]).pk
        == txn.pk
    )
    with pytest.raises(LedgerConflict):  # same sum, other legs
        post("two-lines", [debit(CLEARING, eur(300)), credit(pending, eur(300))])


def test_reverse_transaction_mirrors_every_entry_once(seller):
    original = post("capture:payment:1", capture_entries(seller.pk), kind="capture")

    reversal = reverse_transaction(original=original, occurred_at=timezone.now())
    after_first = snapshot()
    again = reverse_transaction(original=original, occurred_at=timezone.now())

    assert again.pk == reversal.pk
    assert snapshot() == after_first
    assert (reversal.idempotency_key, reversal.kind, reversal.reverses_id) == (
        f"reversal:{original.pk}",
        "reversal",
        original.pk,
    )
    assert original.reversed_by == reversal
    flip = {Direction.DEBIT: Direction.CREDIT, Direction.CREDIT: Direction.DEBIT}
    mirrored = sorted(
        (a, flip[d], m) for a, d, m in original.entries.values_list("account_id", "direction", "amount_minor")
    )
    assert sorted(reversal.entries.values_list("account_id", "direction", "amount_minor")) == mirrored
    assert LedgerTransaction.objects.count() == 2
    assert Entry.objects.count() == 8
    for account in Account.objects.all():  # every balance back to zero, both totals kept (history stays)
        assert account.balance_minor == 0
        assert account.debits_posted == account.credits_posted > 0
    assert check_ledger().ok


def test_a_chain_of_reversals_keeps_kind_and_key_within_their_columns(seller):
    transaction_ = post("dispute_opened:1", capture_entries(seller.pk), kind="dispute_opened")
    for _ in range(6):  # each reversal reversed again: on PostgreSQL a growing kind overflowed varchar(40)
        transaction_ = reverse_transaction(original=transaction_, occurred_at=timezone.now())
        assert transaction_.kind == "reversal"
        assert len(transaction_.idempotency_key) <= 60
    assert check_ledger().ok


def test_a_reversal_that_would_overdraw_is_refused(seller):
    original = post("capture:payment:1", capture_entries(seller.pk))
    post("release:1", release_entries(seller.pk, 11339))  # pending already released
    before = snapshot()

    with pytest.raises(InsufficientFunds):
        reverse_transaction(original=original, occurred_at=timezone.now())
    assert snapshot() == before


def test_running_totals_equal_the_entries_after_a_series_of_flows(seller):
    other = PayeeFactory()
    post("capture:1", capture_entries(seller.pk, 12900))
    post("capture:2", capture_entries(other.pk, 5000))
    post("fee:1", [debit(accounts.PLATFORM_PROVIDER_FEES, eur(35)), credit(CLEARING, eur(35))])
    post("release:1", release_entries(seller.pk, 11339))
    post(
        "payout:1",
        [debit(accounts.payee_available(seller.pk), eur(11000)), credit(accounts.PAYOUTS_IN_TRANSIT, eur(11000))],
    )
    post("payout:1:paid", [debit(accounts.PAYOUTS_IN_TRANSIT, eur(11000)), credit(accounts.BANK_OPERATING, eur(11000))])
    refund = post(
        "refund:2",
        [
            debit(accounts.payee_pending(other.pk), eur(4395)),
            debit(accounts.PLATFORM_COMMISSION, eur(500)),
            debit(accounts.PLATFORM_VAT_PAYABLE, eur(105)),
            credit(CLEARING, eur(5000)),
        ],
    )
    reverse_transaction(original=refund, occurred_at=timezone.now())

    assert totals() == entry_sums()
    assert net_per_currency() == {"EUR": 0}
    assert account_balance(accounts.payee_available(seller.pk), "EUR") == eur(339)
    assert account_balance(accounts.BANK_OPERATING, "EUR") == eur(-11000)
    assert account_balance(CLEARING, "EUR") == eur(12900 + 5000 - 35)
    report = check_ledger()
    assert report.ok
    assert (report.transactions, report.entries) == (8, 24)
