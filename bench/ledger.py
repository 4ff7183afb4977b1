"""Balanced ledger transactions posted per second on PostgreSQL from several threads.

Creates and migrates its own database, then each thread posts realistic captures through
`ledger.services.post_transaction` (the only ledger writer): debit `provider:sandbox:clearing`, credit two
payees' `pending` accounts (balance-rule accounts, locked FOR UPDATE), `platform:commission` and
`platform:vat_payable` (the hot accounts every capture touches). A warm-up creates the accounts and the
connections first. At the end `check_ledger()` must be ok.

    .venv/bin/python bench/ledger.py [--threads 4] [--per-thread 2000] [--payees 50]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field

from _common import (
    DEFAULT_POSTGRES,
    base_env,
    exit_on_sigterm,
    migrate,
    percentile,
    print_table,
    setup_django,
    throwaway_database,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/ledger.py",
        description="Post realistic capture transactions from several threads into a throwaway PostgreSQL "
        "database and print transactions/s and per-post latency; checks the ledger at the end.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--threads", type=int, default=4, help="concurrent posting threads")
    parser.add_argument("--per-thread", type=int, default=2000, help="transactions each thread posts (timed)")
    parser.add_argument(
        "--payees",
        type=int,
        default=50,
        help="distinct payees the two credited payee accounts are drawn from (few = contention on payee "
        "accounts; many = contention only on the hot platform/provider accounts)",
    )
    parser.add_argument("--warmup", type=int, default=50, help="untimed transactions per thread first")
    parser.add_argument("--currency", default="EUR", help="currency of every transaction")
    parser.add_argument("--seed", type=int, default=1, help="random seed for amounts and payees")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="PostgreSQL server URL (no database name)")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the bench database at the end")
    args = parser.parse_args(argv)
    if args.threads < 1 or args.per_thread < 1 or args.payees < 1 or args.warmup < 0:
        parser.error("--threads, --per-thread and --payees must be >= 1, --warmup >= 0")
    return args


@dataclass
class ThreadResult:
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def capture_postings(rng: random.Random, payee_ids: list[int], currency: str):
    from commissions.rules import split_line_amount
    from ledger import accounts
    from ledger.money import Money
    from ledger.services import credit, debit

    chosen = sorted(rng.sample(payee_ids, k=min(2, len(payee_ids))))
    shares: dict[int, int] = {}
    commission = vat = gross = 0
    for payee_id in chosen:
        amount = rng.randint(500, 50_000)
        split = split_line_amount(amount_minor=amount, commission_bps=1000, commission_vat_bps=2100)
        shares[payee_id] = split.payee_share_minor
        commission += split.commission_minor
        vat += split.commission_vat_minor
        gross += amount
    postings = [debit(accounts.provider_clearing("sandbox"), Money(gross, currency))]
    postings += [credit(accounts.payee_pending(pid), Money(amount, currency)) for pid, amount in shares.items()]
    postings.append(credit(accounts.PLATFORM_COMMISSION, Money(commission, currency)))
    postings.append(credit(accounts.PLATFORM_VAT_PAYABLE, Money(vat, currency)))
    return postings


def worker(
    index: int,
    args: argparse.Namespace,
    payee_ids: list[int],
    ready: threading.Barrier,
    result: ThreadResult,
    run_id: str,
) -> None:
    from django.db import connection
    from django.utils import timezone

    from ledger.services import post_transaction

    rng = random.Random(args.seed * 1000 + index)

    def post(key: str) -> None:
        post_transaction(
            idempotency_key=key,
            kind="capture",
            entries=capture_postings(rng, payee_ids, args.currency),
            occurred_at=timezone.now(),
            memo="bench capture",
        )

    try:
        for i in range(args.warmup):
            post(f"bench:{run_id}:warmup:{index}:{i}")
        ready.wait()
        for i in range(args.per_thread):
            key = f"bench:{run_id}:{index}:{i}"
            started = time.perf_counter()
            try:
                post(key)
            except Exception:  # counted and shown; the run goes on
                result.errors.append(traceback.format_exc())
                continue
            result.latencies.append(time.perf_counter() - started)
    except threading.BrokenBarrierError:
        pass
    except Exception:
        result.errors.append(traceback.format_exc())
        ready.abort()
    finally:
        connection.close()


def run(args: argparse.Namespace, db_url: str) -> int:
    env = base_env(db_url)
    migrate_seconds = migrate(env)
    setup_django(env)

    from django.db import connection, connections

    from commissions.models import Payee
    from ledger.models import Entry, LedgerTransaction
    from ledger.selectors import check_ledger

    try:
        payees = Payee.objects.bulk_create(
            [
                Payee(kind=Payee.Kind.SELLER, legal_name=f"Bench seller {i}", country="CZ", email=f"s{i}@example.com")
                for i in range(args.payees)
            ]
        )
        payee_ids = [p.pk for p in payees]
        connection.close()

        run_id = f"{os.getpid()}"
        results = [ThreadResult() for _ in range(args.threads)]
        # The main thread joins the barrier too, so the clock starts when every warm-up is done.
        ready = threading.Barrier(args.threads + 1)
        threads = [
            threading.Thread(target=worker, args=(i, args, payee_ids, ready, results[i], run_id), daemon=True)
            for i in range(args.threads)
        ]
        for thread in threads:
            thread.start()
        with contextlib.suppress(threading.BrokenBarrierError):
            ready.wait()
        load_before = os.getloadavg()
        started = time.perf_counter()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - started
        load_after = os.getloadavg()

        latencies = sorted(x for r in results for x in r.latencies)
        errors = [e for r in results for e in r.errors]
        report = check_ledger()
        timed = LedgerTransaction.objects.filter(idempotency_key__startswith=f"bench:{run_id}:").exclude(
            idempotency_key__contains=":warmup:"
        )
        posted = timed.count()
        entries = Entry.objects.filter(transaction__in=timed).count()
    finally:
        connections.close_all()

    ok = report.ok and not errors and posted == args.threads * args.per_thread
    tps = len(latencies) / wall if wall else 0.0
    print_table(
        "Parameters",
        ["parameter", "value"],
        [
            ["database", db_url.rsplit("/", 1)[-1]],
            ["threads", args.threads],
            ["transactions per thread", args.per_thread],
            ["warm-up per thread", args.warmup],
            ["payees", args.payees],
            ["entries per transaction", 5 if args.payees > 1 else 4],
            ["currency", args.currency],
            ["migrate (s)", f"{migrate_seconds:.1f}"],
            ["CPUs / load avg before, after", f"{os.cpu_count()} / {load_before[0]:.2f}, {load_after[0]:.2f}"],
        ],
    )
    print_table(
        "Results",
        ["metric", "value"],
        [
            ["transactions posted", posted],
            ["entries written", entries],
            ["errors", len(errors)],
            ["wall time (s)", f"{wall:.2f}"],
            ["transactions/s", f"{tps:.1f}"],
            ["latency p50 (ms)", f"{percentile(latencies, 50) * 1000:.2f}"],
            ["latency p99 (ms)", f"{percentile(latencies, 99) * 1000:.2f}"],
            ["latency max (ms)", f"{(latencies[-1] if latencies else 0) * 1000:.2f}"],
            ["ledger check", "PASS" if report.ok else "FAIL"],
        ],
    )
    if not report.ok:
        print(
            f"\nledger check: unbalanced={report.unbalanced_transactions[:5]} drifted={report.drifted_accounts[:5]} "
            f"not netting={report.currencies_not_netting}"
        )
    if errors:
        print(f"\nfirst of {len(errors)} errors:\n{errors[0]}")
    print(
        f"\nledger: {posted} captures from {args.threads} threads over {args.payees} payees in {wall:.2f} s = "
        f"{tps:.0f} tx/s (p50 {percentile(latencies, 50) * 1000:.1f} ms, p99 "
        f"{percentile(latencies, 99) * 1000:.1f} ms), {len(errors)} errors, ledger check "
        f"{'ok' if report.ok else 'FAILED'}"
    )
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    name = f"tollgate_bench_ledger_{os.getpid()}"
    try:
        with throwaway_database(args.postgres, name, keep=args.keep_db) as db_url:
            return run(args, db_url)
    except KeyboardInterrupt:
        print("\ninterrupted; database dropped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
