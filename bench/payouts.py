"""A payout run over many payees on PostgreSQL: seconds and payouts/s.

Creates and migrates its own throwaway database, then N payees (default 10,000) paid by SEPA credit transfer
(verified bank details), each given a random `available` balance through the ledger (some zero, some below
their minimum, some held: those are skipped, as the run must). Timed: `start_run` (one payout per eligible
payee, each under its payee row lock, posted to the ledger) and the second user's `approve_run`, which
generates the run's pain.001 file. Then finance marks the file sent, which issues every payout's statement
(from the ledger; the PDFs are left to the documents workers: `--statement-pdfs` renders a sample of them to
time that part). At the end the ledger check must pass, the file's control sum must equal the run's total, no
payee's available balance may be negative and every payout must have a statement whose closing balance is
the payee's balance.

    .venv/bin/python bench/payouts.py [--payees 10000] [--seed 1] [--statement-pdfs 20] [--postgres URL]
        [--keep-db]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time

from _common import DEFAULT_POSTGRES, base_env, exit_on_sigterm, migrate, print_table, setup_django, throwaway_database

IBAN = "DE89370400440532013000"  # a valid IBAN (the documented example): every payee's bank account here
BIC = "COBADEFFXXX"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/payouts.py",
        description="Start and approve a payout run over many payees with random balances on a throwaway "
        "PostgreSQL database; print seconds and payouts/s.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--payees", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="PostgreSQL server URL (no database name)")
    parser.add_argument("--statement-pdfs", type=int, default=20, help="statements to render as PDFs (timed)")
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args(argv)
    if args.payees < 1:
        parser.error("--payees must be >= 1")
    return args


def seed(args: argparse.Namespace) -> dict[str, int]:
    """The payees and their balances (one ledger transaction each: the sandbox clearing owes them)."""
    from django.utils import timezone

    from commissions.models import Payee, PayoutMethod
    from ledger import accounts
    from ledger.money import Money
    from ledger.services import credit, debit, post_transaction

    rng = random.Random(args.seed)
    payees = Payee.objects.bulk_create(
        [
            Payee(
                kind=Payee.Kind.SELLER,
                legal_name=f"Bench seller {i}",
                country="DE",
                email=f"s{i}@example.com",
                payout_method=PayoutMethod.SEPA_CREDIT_TRANSFER,
                payout_method_verified=True,
                bank_account_holder=f"Bench seller {i}",
                iban=IBAN,
                bic=BIC,
                payout_minimum_minor=1000,
                payouts_held=rng.random() < 0.01,
                hold_reason="bench hold",
            )
            for i in range(args.payees)
        ],
        batch_size=2000,
    )
    counts = {"payees": len(payees), "zero": 0, "below minimum": 0, "held": 0, "eligible": 0}
    now = timezone.now()
    for index, payee in enumerate(payees, start=1):
        roll = rng.random()
        amount = 0 if roll < 0.05 else rng.randint(1, 999) if roll < 0.10 else rng.randint(1000, 500_000)
        if amount == 0:
            counts["zero"] += 1
        elif amount < 1000:
            counts["below minimum"] += 1
        elif payee.payouts_held:
            counts["held"] += 1
        else:
            counts["eligible"] += 1
        if amount:
            money = Money(amount, "EUR")
            post_transaction(
                idempotency_key=f"bench:seed:{payee.pk}",
                kind="bench_seed",
                entries=[
                    debit(accounts.provider_clearing("sandbox"), money),
                    credit(accounts.payee_available(payee.pk), money),
                ],
                occurred_at=now,
                memo="bench balance",
            )
        if index % 2000 == 0:
            print(f"  seeded {index}/{len(payees)} payees", flush=True)
    return counts


def run(args: argparse.Namespace, db_url: str) -> int:
    # Statements are issued without their PDFs here (a download or the documents worker renders them); a sample
    # is rendered below to time that part separately.
    env = base_env(db_url, TOLLGATE_RENDER_DOCUMENTS="0")
    migrate_seconds = migrate(env)
    setup_django(env)

    from django.contrib.auth import get_user_model
    from django.db import connections
    from django.utils import timezone

    from commissions.models import PayoutRun, PayoutStatement, SepaFile
    from commissions.payouts.runs import approve_run, start_run
    from commissions.payouts.sepa import mark_sent
    from commissions.statements.pdf import render_statement_pdf
    from ledger.models import Account
    from ledger.selectors import check_ledger, payee_balances

    try:
        print("seeding payees and balances", flush=True)
        started = time.perf_counter()
        counts = seed(args)
        seed_seconds = time.perf_counter() - started
        users = get_user_model()
        maker = users.objects.create_superuser("bench-maker", "maker@example.com", "x" * 16)
        checker = users.objects.create_superuser("bench-checker", "checker@example.com", "x" * 16)

        load_before = os.getloadavg()
        started = time.perf_counter()
        payout_run = start_run(trigger=PayoutRun.Trigger.STAFF, actor=maker, now=timezone.now())
        start_seconds = time.perf_counter() - started
        status_after_start = payout_run.status
        started = time.perf_counter()
        if payout_run.status == PayoutRun.Status.AWAITING_APPROVAL:
            payout_run = approve_run(run_id=payout_run.pk, actor=checker, now=timezone.now())
        approve_seconds = time.perf_counter() - started
        load_after = os.getloadavg()

        files = list(SepaFile.objects.filter(run=payout_run))
        print(f"marking {len(files)} file(s) sent: issuing {payout_run.payout_count} payout statements", flush=True)
        started = time.perf_counter()
        for sepa_file in files:
            mark_sent(file_id=sepa_file.pk, actor=checker, now=timezone.now())  # statements issued on commit
        statement_seconds = time.perf_counter() - started
        statements = PayoutStatement.objects.filter(payout__run=payout_run).select_related("payout")
        statement_count = statements.count()
        rng = random.Random(args.seed)
        sample = rng.sample(list(statements.order_by("pk")), min(args.statement_pdfs, statement_count))
        wrong_closing = sum(1 for st in sample if st.closing_minor != sum(b.total for b in payee_balances(st.payee_id)))
        started = time.perf_counter()
        pdf_bytes = sum(len(render_statement_pdf(st)) for st in sample)
        pdf_seconds = time.perf_counter() - started
        file_total = sum(f.total_minor for f in files)
        file_count = sum(f.transaction_count for f in files)
        negative = sum(
            1
            for account in Account.objects.filter(code__endswith=":available", code__startswith="payee:")
            if account.credits_posted - account.debits_posted < 0
        )
        report = check_ledger()
    finally:
        connections.close_all()

    payouts = payout_run.payout_count
    total = payout_run.totals.get("EUR", 0)
    ok = (
        report.ok
        and payouts == counts["eligible"]
        and file_total == total
        and file_count == payouts
        and negative == 0
        and statement_count == payouts
        and wrong_closing == 0
    )
    print_table(
        "Parameters",
        ["parameter", "value"],
        [
            ["database", db_url.rsplit("/", 1)[-1]],
            *[[key, value] for key, value in counts.items()],
            ["migrate (s)", f"{migrate_seconds:.1f}"],
            ["seed balances (s)", f"{seed_seconds:.1f}"],
            ["CPUs / load avg before, after", f"{os.cpu_count()} / {load_before[0]:.2f}, {load_after[0]:.2f}"],
        ],
    )
    print_table(
        "Results",
        ["metric", "value"],
        [
            ["payouts created", payouts],
            ["run total (EUR)", f"{total / 100:,.2f}"],
            ["status after start", status_after_start],
            ["start_run (s)", f"{start_seconds:.2f}"],
            ["payouts/s (start_run)", f"{payouts / start_seconds:.0f}" if start_seconds else "-"],
            ["approve_run + pain.001 (s)", f"{approve_seconds:.2f}"],
            ["pain.001 transactions / control sum", f"{file_count} / {file_total / 100:,.2f}"],
            ["payees with negative available", negative],
            ["mark sent + payout statements (s)", f"{statement_seconds:.2f}"],
            ["statements issued / per s", f"{statement_count} / {statement_count / statement_seconds:.0f}"],
            ["sample closing != payee balance", f"{wrong_closing} of {len(sample)}"],
            [
                "statement PDFs rendered (s, per s, avg kB)",
                f"{pdf_seconds:.2f}, {len(sample) / pdf_seconds:.1f}, {pdf_bytes / max(1, len(sample)) / 1024:.0f}"
                if sample
                else "-",
            ],
            ["ledger check", "PASS" if report.ok else "FAIL"],
        ],
    )
    total_seconds = start_seconds + approve_seconds
    print(
        f"\npayouts: {payouts} payouts over {counts['payees']} payees in {total_seconds:.2f} s "
        f"({payouts / total_seconds:.0f} payouts/s; start {start_seconds:.2f} s, approve + pain.001 "
        f"{approve_seconds:.2f} s); {statement_count} statements in {statement_seconds:.2f} s "
        f"({statement_count / statement_seconds:.0f}/s) — {'PASS' if ok else 'FAIL'}"
    )
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    name = f"tollgate_bench_payouts_{os.getpid()}"
    with throwaway_database(args.postgres, name, keep=args.keep_db) as db_url:
        return run(args, db_url)


if __name__ == "__main__":
    sys.exit(main())
