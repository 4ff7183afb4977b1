"""PostgreSQL concurrency (RELIABILITY.md §6 row 20 and I6): real threads, each on its own connection,
started together by a barrier. Skipped on SQLite, where `select_for_update` is a no-op; a failure when
TOLLGATE_REQUIRE_SERVICES=1 and PostgreSQL is missing (tests/conftest.py).

The bank test is Jepsen's: transfers between no-overdraft accounts run alongside readers, and every read
must sum to the total with no balance below zero. It runs a second time with the row locks patched out, to
show the checker sees what goes wrong then.
"""

from __future__ import annotations

import random
import threading
import time
import traceback
from dataclasses import dataclass, field

import pytest
from django.db import IntegrityError, connection, connections, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from ledger import accounts
from ledger.accounts import AccountSpec
from ledger.errors import InsufficientFunds
from ledger.models import Account, AccountKind, BalanceRule, Direction, Entry, LedgerTransaction
from ledger.money import Money
from ledger.selectors import check_ledger
from ledger.services import credit, debit, post_transaction
from tests.factories import PayeeFactory
from tests.ledger.helpers import entry_sums, totals
from tests.reporting import report

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

BANK = [
    AccountSpec(f"bank:acct:{i}", AccountKind.LIABILITY, BalanceRule.DEBITS_MUST_NOT_EXCEED_CREDITS) for i in range(10)
]
FUNDING = AccountSpec("bank:funding", AccountKind.ASSET)
INITIAL = 10_000
TOTAL = INITIAL * len(BANK)
WRITERS = 16
READERS = 2


@dataclass
class BankRun:
    committed: int = 0
    refused: int = 0
    errors: list[str] = field(default_factory=list)
    reads: int = 0
    bad_reads: list[str] = field(default_factory=list)
    elapsed: float = 0.0
    cpu: float = 0.0  # this process's CPU time: the client side (Python, one GIL) of the run
    lock: threading.Lock = field(default_factory=threading.Lock)


def _fund() -> None:
    post_transaction(
        idempotency_key="bank:funding",
        kind="funding",
        entries=[debit(FUNDING, Money(TOTAL, "EUR")), *[credit(spec, Money(INITIAL, "EUR")) for spec in BANK]],
        occurred_at=timezone.now(),
    )


def _snapshot_read(run: BankRun) -> None:
    """One REPEATABLE READ snapshot: the running balances and the balances replayed from the journal."""
    codes = [spec.code for spec in BANK]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        running = {
            code: credits - debits
            for code, debits, credits in Account.objects.filter(code__in=codes).values_list(
                "code", "debits_posted", "credits_posted"
            )
        }
        journal = {
            row["account__code"]: row["c"] - row["d"]
            for row in Entry.objects.filter(account__code__in=codes)
            .values("account__code")
            .annotate(
                d=Sum("amount_minor", filter=Q(direction=Direction.DEBIT), default=0),
                c=Sum("amount_minor", filter=Q(direction=Direction.CREDIT), default=0),
            )
        }
    problems = []
    if sum(running.values()) != TOTAL:
        problems.append(f"running balances sum to {sum(running.values())}")
    if running != journal:
        problems.append("running balances differ from the journal")
    if any(balance < 0 for balance in running.values()):
        problems.append(f"negative balance: {running}")
    with run.lock:
        run.reads += 1
        run.bad_reads.extend(problems)


def _run_bank(transfers_per_thread: int, seed: int) -> BankRun:
    _fund()
    run = BankRun()
    start = threading.Barrier(WRITERS + READERS)
    writers_done = threading.Event()

    def writer(n: int) -> None:
        rng = random.Random(seed * 1000 + n)  # a reproducible workload
        committed = refused = 0
        try:
            start.wait()
            for i in range(transfers_per_thread):
                source, target = rng.sample(BANK, 2)
                amount = Money(rng.randint(1, 3_000), "EUR")
                try:
                    post_transaction(
                        idempotency_key=f"bank:{n}:{i}",
                        kind="transfer",
                        entries=[debit(source, amount), credit(target, amount)],
                        occurred_at=timezone.now(),
                    )
                    committed += 1
                except InsufficientFunds:
                    refused += 1
                except Exception:  # every other error is a finding, kept for the assertion
                    with run.lock:
                        run.errors.append(traceback.format_exc(limit=3))
        finally:
            with run.lock:
                run.committed += committed
                run.refused += refused
            connections.close_all()

    def reader() -> None:
        try:
            start.wait()
            while not writers_done.wait(0.005):  # a short pause: readers share the GIL with the writers
                _snapshot_read(run)
            _snapshot_read(run)
        except Exception:
            with run.lock:
                run.errors.append(traceback.format_exc(limit=3))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    readers = [threading.Thread(target=reader) for _ in range(READERS)]
    began, cpu_began = time.monotonic(), time.process_time()
    for thread in [*threads, *readers]:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    run.elapsed, run.cpu = time.monotonic() - began, time.process_time() - cpu_began
    writers_done.set()
    for thread in readers:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in [*threads, *readers]), "a thread hung (deadlock?)"
    return run


def _final_balances() -> dict[str, int]:
    return {
        code: credits - debits
        for code, debits, credits in Account.objects.filter(code__startswith="bank:acct:").values_list(
            "code", "debits_posted", "credits_posted"
        )
    }


def test_jepsen_bank_every_read_sums_to_the_total_and_no_balance_goes_negative(request, bank_transfers_per_thread):
    run = _run_bank(bank_transfers_per_thread, seed=20)

    assert run.errors == [], run.errors[:3]  # no deadlock, serialization or constraint error escaped
    assert run.committed + run.refused == WRITERS * bank_transfers_per_thread
    assert run.committed > 0
    assert run.refused > 0  # the no-overdraft rule was exercised, not just present
    assert run.reads > 0
    assert run.bad_reads == [], run.bad_reads[:5]
    balances = _final_balances()
    assert sum(balances.values()) == TOTAL
    assert min(balances.values()) >= 0
    assert LedgerTransaction.objects.filter(kind="transfer").count() == run.committed
    assert totals() == entry_sums()
    assert check_ledger().ok
    report(
        request,
        f"\nbank: {WRITERS} threads x {bank_transfers_per_thread} transfers: {run.committed} committed, "
        f"{run.refused} refused (insufficient funds) in {run.elapsed:.2f} s = "
        f"{(run.committed + run.refused) / run.elapsed:.0f} transfers/s ({run.committed / run.elapsed:.0f} "
        f"committed/s); {run.reads} snapshot reads, all consistent; client CPU {run.cpu:.1f} s",
    )


def test_jepsen_bank_without_row_locks_is_caught(request, monkeypatch, bank_transfers_per_thread):
    """The guard patched out: without SELECT ... FOR UPDATE, two transfers check the same stale balance and
    both go ahead. The account's CHECK constraint still refuses the second at the database, so the money
    stays whole, but the refusal arrives as an IntegrityError instead of InsufficientFunds: the checker above
    would fail on it."""
    monkeypatch.setattr(Account.objects, "select_for_update", lambda *args, **kwargs: Account.objects.all())

    run = _run_bank(bank_transfers_per_thread // 2, seed=21)

    overdrafts = [error for error in run.errors if "ledger_account_debits_must_not_exceed_credits" in error]
    assert overdrafts, f"no lost race in {run.committed + run.refused} transfers"
    assert all(IntegrityError.__name__ in error for error in overdrafts)
    # the last line held: consistent reads, no negative balance, totals equal the journal
    assert run.bad_reads == [], run.bad_reads[:5]
    assert min(_final_balances().values()) >= 0
    assert check_ledger().ok
    report(request, f"\nbank without row locks: {len(overdrafts)} overdrafts refused only by the CHECK constraint")


@pytest.mark.parametrize(
    "shape",
    [
        pytest.param("new-accounts", id="capture-creating-its-accounts"),
        pytest.param("existing-accounts", id="capture-on-existing-accounts"),
        pytest.param("rule-less", id="rule-less-accounts-only"),
    ],
)
def test_twenty_threads_posting_one_idempotency_key_make_one_transaction(shape):
    seller = PayeeFactory()
    clearing = accounts.provider_clearing("stripe")
    if shape == "rule-less":
        entries = [
            debit(accounts.PLATFORM_PROVIDER_FEES, Money(35, "EUR")),
            credit(clearing, Money(35, "EUR")),
        ]
    else:
        entries = [
            debit(clearing, Money(12900, "EUR")),
            credit(accounts.payee_pending(seller.pk), Money(11339, "EUR")),
            credit(accounts.PLATFORM_COMMISSION, Money(1290, "EUR")),
            credit(accounts.PLATFORM_VAT_PAYABLE, Money(271, "EUR")),
        ]
    if shape == "existing-accounts":
        post_transaction(
            idempotency_key="capture:payment:1",
            kind="capture",
            entries=entries,
            occurred_at=timezone.now(),
        )
    threads_n = 20
    start = threading.Barrier(threads_n)
    results: list[object] = []
    errors: list[str] = []
    lock = threading.Lock()

    def poster() -> None:
        try:
            start.wait()
            txn = post_transaction(
                idempotency_key="fee:payment:42" if shape == "rule-less" else "capture:payment:42",
                kind="capture",
                entries=entries,
                occurred_at=timezone.now(),
            )
            with lock:
                results.append(txn.pk)
        except Exception:
            with lock:
                errors.append(traceback.format_exc(limit=3))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=poster) for _ in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == [], errors[:3]
    assert len(results) == threads_n
    key = "fee:payment:42" if shape == "rule-less" else "capture:payment:42"
    posted = LedgerTransaction.objects.get(idempotency_key=key)
    assert set(results) == {posted.pk}
    assert posted.entries.count() == len(entries)
    times = 2 if shape == "existing-accounts" else 1
    for posting in entries:
        side = 0 if posting.direction == Direction.DEBIT else 1
        assert totals()[(posting.account.code, "EUR")][side] == posting.amount.amount_minor * times
    assert totals() == entry_sums()
    assert check_ledger().ok


def test_postings_creating_the_same_new_accounts_in_opposite_leg_order_do_not_deadlock():
    """New accounts are created inside the posting's transaction: their unique key is held until commit.
    Two postings that create the same two accounts, listing their legs in opposite orders, must create them
    in one global order, or each waits for the other's insert (deadlock detected)."""
    rounds, per_side = 10, 4
    errors: list[str] = []
    lock = threading.Lock()

    def poster(key: str, entries, start: threading.Barrier) -> None:
        try:
            start.wait()
            post_transaction(idempotency_key=key, kind="transfer", entries=entries, occurred_at=timezone.now())
        except Exception:  # a deadlock would land here
            with lock:
                errors.append(traceback.format_exc(limit=3))
        finally:
            connections.close_all()

    for round_ in range(rounds):
        one = AccountSpec(f"test:{round_}:one", AccountKind.ASSET)
        two = AccountSpec(f"test:{round_}:two", AccountKind.ASSET)
        start = threading.Barrier(2 * per_side)
        threads = [
            threading.Thread(
                target=poster,
                args=(f"{round_}:{side}:{n}", [debit(a, Money(1, "EUR")), credit(b, Money(1, "EUR"))], start),
            )
            for n in range(per_side)
            for side, (a, b) in enumerate([(one, two), (two, one)])
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

    assert errors == [], f"{len(errors)} of {rounds * 2 * per_side} postings failed: {errors[:2]}"
    assert LedgerTransaction.objects.count() == rounds * 2 * per_side
    assert check_ledger().ok
