"""Invoice PDFs rendered per second, and the memory of the process that renders them, over N renders.

Creates and migrates its own database (a SQLite file in a temporary directory; a throwaway PostgreSQL
database with `--postgres`), then prepares N paid orders, each with 3-8 lines of one payee at two VAT rates
(standard and reduced), and issues their invoices through `invoicing.services.issuing`. It then renders
them with `invoicing.services.pdf.render_document_pdf` (WeasyPrint) in three ways:

- "recycled pool": `billiard.Pool(processes=1, maxtasksperchild=50)`, the pool library a Celery prefork
  worker runs, as the documents worker does (`-c 1 --max-tasks-per-child=50`); each task loads the invoice,
  renders it (nothing is stored) and reports its process's RSS;
- "in-process": all N in this one process, with the RSS sampled (after `gc.collect()`) every 50 renders:
  what a worker that is never recycled would do;
- with `--celery` (needs Redis): a real `celery -A config worker -Q documents -c 1 --max-tasks-per-child=50
  -P prefork` on the bench database, sent `invoicing.tasks.issue_order_documents` for N other paid orders
  (issue, render and store the PDF once, e-mail it through the dummy backend); the RSS of the worker's child
  processes is read from /proc while it works.

The pool runs before the in-process renders: its children are forked from this process and would otherwise
start with its grown heap. Prints PDFs/s and the RSS after every 50 renders; the exit status is non-zero if
a recycled child's RSS after N renders exceeds `--max-growth` x its maximum over the first 50.

    .venv/bin/python bench/invoices.py [--renders 500] [--max-tasks-per-child 50] [--celery] [--postgres]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

from _common import (
    DEFAULT_POSTGRES,
    add_project_to_path,
    base_env,
    exit_on_sigterm,
    migrate,
    print_table,
    setup_django,
    start_group,
    stop_group,
    throwaway_database,
)

add_project_to_path()

MB = 1024 * 1024


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/invoices.py",
        description="Render N invoice PDFs (WeasyPrint) in a recycled single-process pool like the documents "
        "worker, and in this one process, and print PDFs/s and the renderer's RSS every 50 renders; "
        "optionally through a real Celery documents worker.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--renders", type=int, default=500, help="PDFs rendered in each phase (N)")
    parser.add_argument("--every", type=int, default=50, help="renders between RSS samples")
    parser.add_argument(
        "--max-tasks-per-child", type=int, default=50, help="tasks after which a pool/worker child is replaced"
    )
    parser.add_argument("--payees", type=int, default=20, help="payees the orders are spread over")
    parser.add_argument("--min-lines", type=int, default=3, help="fewest lines per invoice")
    parser.add_argument("--max-lines", type=int, default=8, help="most lines per invoice")
    parser.add_argument(
        "--max-growth",
        type=float,
        default=1.5,
        help="fail if a recycled child's RSS after N renders exceeds this x its max over the first --every",
    )
    parser.add_argument(
        "--phases",
        default="pool,in-process",
        help="comma-separated phases to run: pool, in-process (--celery adds the real worker)",
    )
    parser.add_argument("--celery", action="store_true", help="also render through a real Celery worker (Redis)")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379", help="Redis server URL (no db number)")
    parser.add_argument("--redis-db", type=int, default=14, help="Redis db used as broker (FLUSHed)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the Celery worker")
    parser.add_argument(
        "--postgres",
        nargs="?",
        const=DEFAULT_POSTGRES,
        default=None,
        metavar="URL",
        help="use a throwaway PostgreSQL database on this server instead of a SQLite file",
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed for lines and amounts")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the bench database at the end")
    args = parser.parse_args(argv)
    args.phases = {p.strip() for p in args.phases.split(",") if p.strip()}
    if args.celery:
        args.phases.add("celery")
    unknown = args.phases - {"pool", "in-process", "celery"}
    if unknown:
        parser.error(f"unknown phase(s): {', '.join(sorted(unknown))}")
    if args.renders < 1 or args.every < 1 or args.max_tasks_per_child < 1 or args.payees < 1:
        parser.error("--renders, --every, --max-tasks-per-child and --payees must be >= 1")
    if not 1 <= args.min_lines <= args.max_lines:
        parser.error("need 1 <= --min-lines <= --max-lines")
    return args


# --- memory -----------------------------------------------------------------------------------------------


def rss_bytes(pid: int | str = "self") -> int:
    """VmRSS of a process from /proc (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        return 0
    return 0


def children_of(pid: int) -> list[int]:
    """Live child processes of `pid` (scans /proc; field 4 of /proc/<pid>/stat is the parent's pid)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry))
    return sorted(found)


def mb(value: int) -> str:
    return f"{value / MB:.0f} MB"


# --- setup --------------------------------------------------------------------------------------------------


def make_payees(count: int) -> list[int]:
    from commissions.models import Payee

    payees = Payee.objects.bulk_create(
        [
            Payee(
                kind=Payee.Kind.SELLER,
                legal_name=f"Bench Seller {i} s.r.o.",
                country="CZ",
                email=f"seller{i}@example.com",
                vat_id=f"CZ{25596641 + i}",
                address=f"Na Příkopě {i + 1}\n110 00 Praha 1\nCzech Republic",
            )
            for i in range(count)
        ]
    )
    return [p.pk for p in payees]


@contextlib.contextmanager
def no_side_tasks() -> Iterator[None]:
    """While orders are prepared: the sandbox gateway delivers no webhook, and the paid order's documents
    task and confirmation e-mail are not run (this process has no broker, so they would run eagerly)."""
    from invoicing.tasks import issue_order_documents
    from payments.providers.sandbox.tasks import deliver_sandbox_event
    from payments.tasks import send_payment_confirmation

    with (
        mock.patch.object(deliver_sandbox_event, "delay"),
        mock.patch.object(issue_order_documents, "delay"),
        mock.patch.object(send_payment_confirmation, "delay"),
    ):
        yield


def paid_orders(count: int, *, payee_ids: list[int], rng: random.Random, min_lines: int, max_lines: int) -> list[int]:
    """`count` paid sandbox orders (create_order, sandbox payment, buyer pays, state applied), each with
    min..max lines of one payee, the standard and the reduced VAT rate alternating."""
    from django.utils import timezone

    from invoicing.vat import VatCategory
    from payments.models import OrderStatus
    from payments.providers.registry import get_provider
    from payments.providers.sandbox import gateway
    from payments.services.checkout import start_payment
    from payments.services.fulfilment import apply_payment_state
    from payments.services.orders import LineInput, create_order

    provider = get_provider("sandbox")
    order_ids = []
    with no_side_tasks():
        for i in range(count):
            now = timezone.now()
            payee_id = payee_ids[i % len(payee_ids)]
            lines = [
                LineInput(
                    payee_id=payee_id,
                    description=f"Item {i}.{n} — {rng.choice(['Amplifier 4x100 W', 'Cable set', 'Poster A2'])}",
                    quantity=rng.randint(1, 4),
                    unit_amount_minor=rng.randint(500, 50_000),
                    vat_category=VatCategory.STANDARD if n % 2 == 0 else VatCategory.REDUCED,
                )
                for n in range(rng.randint(min_lines, max_lines))
            ]
            order = create_order(
                currency="EUR", lines=lines, buyer_email=f"buyer{i}@example.com", buyer_country="CZ", now=now
            )
            payment = start_payment(order=order, provider_name="sandbox", now=now)
            gateway.buyer_pays(str(gateway.get_session(payment.provider_ref).token), now=now)
            state = provider.fetch_payment(payment=payment)
            apply_payment_state(payment_id=payment.pk, state=state, now=now, source="bench")
            order.refresh_from_db(fields=["status"])
            if order.status != OrderStatus.PAID:
                raise RuntimeError(f"order {order.pk} is {order.status}, not paid")
            order_ids.append(order.pk)
    return order_ids


def issue_invoices(order_ids: list[int]) -> list[int]:
    from django.utils import timezone

    from invoicing.services.issuing import issue_order_invoices

    invoice_ids = []
    for order_id in order_ids:
        invoice_ids.extend(invoice.pk for invoice in issue_order_invoices(order_id=order_id, now=timezone.now()))
    return invoice_ids


# --- rendering ----------------------------------------------------------------------------------------------


class _OncePerMessage(logging.Filter):
    """WeasyPrint warns on every render (e.g. "Using fontTools instead of HarfBuzz-Subset"): show each once."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message in self.seen:
            return False
        self.seen.add(message)
        return True


def quiet_repeated_weasyprint_warnings() -> None:
    logging.getLogger("weasyprint").addFilter(_OncePerMessage())


def render_one(invoice_id: int) -> tuple[int, int, int]:
    """Load and render one invoice (what store_document_pdf does, without storing); returns the process id,
    its RSS after the render, and the PDF's size."""
    from invoicing.models import Invoice
    from invoicing.services.pdf import render_document_pdf

    invoice = Invoice.objects.select_related("order", "original", "refund").get(pk=invoice_id)
    content = render_document_pdf(invoice)
    return os.getpid(), rss_bytes(), len(content)


def _close_child_connections() -> None:
    from django.db import connections

    connections.close_all()


@dataclass
class Sample:
    renders: int
    pid: int
    rss: int
    window_max: int


@dataclass
class Phase:
    name: str
    renders: int = 0
    seconds: float = 0.0
    bytes_out: int = 0
    start_rss: int = 0
    samples: list[Sample] = field(default_factory=list)
    pids: set[int] = field(default_factory=set)

    @property
    def rate(self) -> float:
        return self.renders / self.seconds if self.seconds else 0.0

    @property
    def max_rss(self) -> int:
        return max((s.window_max for s in self.samples), default=0)


def run_pool(invoice_ids: list[int], *, every: int, max_tasks: int) -> Phase:
    """The documents worker's pool: one process, replaced after `max_tasks` tasks (forked from here, as a
    Celery prefork worker forks its children from the worker's main process)."""
    import billiard
    from django.db import connections

    connections.close_all()  # children open their own; no shared socket or SQLite handle across fork
    phase = Phase(f"recycled pool (max {max_tasks} tasks per child)")
    pool = billiard.Pool(processes=1, maxtasksperchild=max_tasks, initializer=_close_child_connections)
    try:
        window_max = 0
        started = time.perf_counter()
        for done, (pid, rss, size) in enumerate(pool.imap(render_one, invoice_ids, chunksize=1), start=1):
            phase.pids.add(pid)
            phase.bytes_out += size
            window_max = max(window_max, rss)
            if done % every == 0 or done == len(invoice_ids):
                phase.samples.append(Sample(done, pid, rss, window_max))
                window_max = 0
        phase.seconds = time.perf_counter() - started
        phase.renders = len(invoice_ids)
    finally:
        pool.terminate()
        pool.join()
    return phase


def run_in_process(invoice_ids: list[int], *, every: int) -> Phase:
    phase = Phase("in-process (never recycled)")
    gc.collect()
    phase.start_rss = rss_bytes()
    phase.samples.append(Sample(0, os.getpid(), phase.start_rss, phase.start_rss))
    window_max = 0
    started = time.perf_counter()
    for done, invoice_id in enumerate(invoice_ids, start=1):
        pid, rss, size = render_one(invoice_id)
        phase.bytes_out += size
        window_max = max(window_max, rss)
        if done % every == 0 or done == len(invoice_ids):
            gc.collect()
            phase.samples.append(Sample(done, pid, rss_bytes(), window_max))
            window_max = 0
    phase.seconds = time.perf_counter() - started
    phase.renders = len(invoice_ids)
    phase.pids.add(os.getpid())
    return phase


def run_celery(order_ids: list[int], *, args, env: dict[str, str], logdir: Path) -> Phase:
    """A real documents worker on the bench database; `issue_order_documents` for each order (one invoice
    each). Polls the stored PDFs and the RSS of the worker's children every 20 ms."""
    import redis
    from celery import Celery
    from django.db.models import Sum

    from invoicing.models import InvoicePdf

    broker = f"{args.redis.rstrip('/')}/{args.redis_db}"
    redis.Redis.from_url(broker).flushdb()
    worker_env = dict(env, CELERY_BROKER_URL=broker)
    log = logdir / "celery-documents.log"
    phase = Phase(f"celery worker -Q documents -c 1 --max-tasks-per-child={args.max_tasks_per_child}")
    sender = Celery("bench-sender", broker=broker)
    worker = None
    try:
        worker = start_group(
            [
                str(Path(sys.executable).parent / "celery"),
                "-A",
                "config",
                "worker",
                "-Q",
                "documents",
                "-c",
                "1",
                "-P",
                "prefork",
                f"--max-tasks-per-child={args.max_tasks_per_child}",
                "--loglevel=WARNING",
                "--without-gossip",
                "--without-mingle",
                "-n",
                f"bench-documents-{os.getpid()}@%h",
            ],
            env=worker_env,
            log=log,
        )
        wait_for_worker(sender, worker, log)
        before = InvoicePdf.objects.count()
        started = time.perf_counter()
        for order_id in order_ids:
            sender.send_task("invoicing.tasks.issue_order_documents", kwargs={"order_id": order_id}, queue="documents")
        target, deadline = len(order_ids), time.monotonic() + args.timeout
        done = window_max = 0
        checkpoints = [*range(args.every, target, args.every), target]
        while checkpoints:
            if worker.poll() is not None:
                raise RuntimeError(f"celery worker exited ({worker.returncode}):\n{tail(log)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {done}/{target} PDFs after {args.timeout:.0f} s:\n{tail(log)}")
            for child in children_of(worker.pid):
                phase.pids.add(child)
                window_max = max(window_max, rss_bytes(child))
            done = InvoicePdf.objects.count() - before
            while checkpoints and done >= checkpoints[0]:
                live = children_of(worker.pid)
                pid = live[0] if live else 0
                phase.samples.append(Sample(checkpoints.pop(0), pid, rss_bytes(pid) if pid else 0, window_max))
                window_max = 0
            if checkpoints:
                time.sleep(0.02)
        phase.seconds = time.perf_counter() - started
        phase.renders = target
        stored = InvoicePdf.objects.filter(invoice__order_id__in=order_ids)
        phase.bytes_out = stored.aggregate(total=Sum("size"))["total"] or 0
        errors = [line for line in log.read_text(errors="replace").splitlines() if "ERROR" in line]
        if errors:
            raise RuntimeError("errors in the worker's log:\n" + "\n".join(errors[:20]))
    finally:
        stop_group(worker)
        sender.close()
        redis.Redis.from_url(broker).flushdb()
    return phase


def wait_for_worker(probe, proc, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"celery worker exited ({proc.returncode}):\n{tail(log)}")
        if probe.control.ping(timeout=1.0):
            return
    raise RuntimeError(f"celery worker did not answer a ping within {timeout:.0f} s:\n{tail(log)}")


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# --- report -------------------------------------------------------------------------------------------------


def print_phase(phase: Phase) -> None:
    rows = [[s.renders, s.pid, mb(s.rss), mb(s.window_max) if s.renders else "-"] for s in phase.samples]
    print_table(
        f"{phase.name}: {phase.renders} PDFs in {phase.seconds:.1f} s = {phase.rate:.1f} PDFs/s "
        f"({len(phase.pids)} process(es), {phase.bytes_out / max(phase.renders, 1) / 1024:.0f} KiB/PDF)",
        ["renders", "pid", "RSS", "max RSS since last"],
        rows,
    )


def recycled_check(phase: Phase, *, max_growth: float) -> tuple[bool, str]:
    first = phase.samples[0].window_max
    last = phase.samples[-1].rss
    ok = last <= max_growth * first
    return ok, (
        f"{phase.name}: child RSS max {mb(phase.max_rss)}, max over first {phase.samples[0].renders} "
        f"{mb(first)}, after {phase.samples[-1].renders}: {mb(last)} ({last / first:.2f}x; limit {max_growth}x)"
    )


def run(args: argparse.Namespace, db_url: str, workdir: Path) -> int:
    env = base_env(db_url, EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend")
    print(
        f"database: {'PostgreSQL' if db_url.startswith('postgres') else 'SQLite'}; cpus: {os.cpu_count()}; "
        f"load: {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    migrate_seconds = migrate(env)
    setup_django(env)
    quiet_repeated_weasyprint_warnings()  # before the pool forks: its children inherit the filter
    from django.db import connections

    rng = random.Random(args.seed)
    started = time.perf_counter()
    payee_ids = make_payees(args.payees)
    invoice_ids = []
    if args.phases & {"pool", "in-process"}:
        order_ids = paid_orders(
            args.renders, payee_ids=payee_ids, rng=rng, min_lines=args.min_lines, max_lines=args.max_lines
        )
        invoice_ids = issue_invoices(order_ids)
    celery_orders = []
    if "celery" in args.phases:
        celery_orders = paid_orders(
            args.renders, payee_ids=payee_ids, rng=rng, min_lines=args.min_lines, max_lines=args.max_lines
        )
    prepare_seconds = time.perf_counter() - started
    connections.close_all()

    print_table(
        "parameters",
        ["parameter", "value"],
        [
            ["renders per phase", args.renders],
            ["invoices (lines each)", f"{len(invoice_ids)} ({args.min_lines}-{args.max_lines}, 2 VAT rates)"],
            ["max tasks per child", args.max_tasks_per_child],
            ["phases", ", ".join(p for p in ("pool", "in-process", "celery") if p in args.phases)],
            ["migrate", f"{migrate_seconds:.1f} s"],
            ["prepare orders + invoices", f"{prepare_seconds:.1f} s"],
        ],
    )

    phases: list[Phase] = []
    checks: list[tuple[bool, str]] = []
    # The pool first: its children are forked from this process and would inherit an in-process heap.
    if "pool" in args.phases:
        pool = run_pool(invoice_ids, every=args.every, max_tasks=args.max_tasks_per_child)
        phases.append(pool)
        print_phase(pool)
        checks.append(recycled_check(pool, max_growth=args.max_growth))
    if "celery" in args.phases:
        worker = run_celery(celery_orders, args=args, env=env, logdir=workdir)
        phases.append(worker)
        print_phase(worker)
        checks.append(recycled_check(worker, max_growth=args.max_growth))
    if "in-process" in args.phases:
        in_process = run_in_process(invoice_ids, every=args.every)
        phases.append(in_process)
        print_phase(in_process)

    print("\nsummary")
    for phase in phases:
        first, last = phase.samples[0], phase.samples[-1]
        print(
            f"  {phase.name}: {phase.renders} PDFs in {phase.seconds:.1f} s = {phase.rate:.1f} PDFs/s; "
            f"RSS after {first.renders}: {mb(first.rss)} -> after {last.renders}: {mb(last.rss)} "
            f"(max {mb(phase.max_rss)})"
        )
        if phase.samples[0].renders == 0 and len(phase.samples) > 2:
            # After the first window WeasyPrint is imported and its fonts loaded: what follows is growth.
            warm, renders = phase.samples[1], last.renders - phase.samples[1].renders
            print(
                f"    growth after the first {warm.renders} renders: {(last.rss - warm.rss) / MB:+.0f} MB over "
                f"{renders} renders ({(last.rss - warm.rss) / 1024 / renders:+.0f} KiB per render)"
            )
    for ok, text in checks:
        print(f"  {'PASS' if ok else 'FAIL'} {text}")
    print(f"  load after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0 if all(ok for ok, _ in checks) else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    workdir = Path(tempfile.mkdtemp(prefix="tollgate-bench-invoices-"))
    try:
        if args.postgres:
            name = f"tollgate_bench_invoices_{os.getpid()}"
            with throwaway_database(args.postgres, name, keep=args.keep_db) as db_url:
                try:
                    return run(args, db_url, workdir)
                finally:
                    _close_connections()
        return run(args, f"sqlite:///{workdir / 'bench.sqlite3'}", workdir)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        _close_connections()
        if args.keep_db:
            print(f"(kept {workdir})")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _close_connections() -> None:
    if "django.db" in sys.modules:
        from django.db import connections

        connections.close_all()


if __name__ == "__main__":
    sys.exit(main())
