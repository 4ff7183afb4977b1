"""Signed sandbox webhooks through gunicorn (2 workers) and a real Celery worker on PostgreSQL and Redis.

Creates and migrates its own database, starts `gunicorn config.wsgi:application -w 2` and
`celery -A config worker -Q webhooks,default -c 2`, and prepares 2N paid sandbox sessions in-process (orders,
payments, the buyer paying at the gateway) with the gateway's own delivery switched off, so this script
posts the `payment.succeeded` events itself, each signed at send time:

- phase A "distinct": N events, each once, from C concurrent clients;
- phase B "duplicates at once": N other events, each posted twice at the same moment (a barrier per pair).

For each phase it prints acknowledged events/s, p50/p99/max latency, non-2xx responses, and the seconds from
the phase's first request until every acknowledged event is processed into the ledger (inbox row
`processed` and a `capture` ledger transaction per payment). Then it checks the invariants: one inbox row
per event id, one capture per payment, every response 2xx, `check_ledger()` ok.

    .venv/bin/python bench/webhooks.py [--events 500] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import secrets
import shutil
import socket
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import redis
import requests
from _common import (
    DEFAULT_POSTGRES,
    add_project_to_path,
    base_env,
    exit_on_sigterm,
    migrate,
    percentile,
    print_table,
    setup_django,
    start_group,
    stop_group,
    throwaway_database,
)

add_project_to_path()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/webhooks.py",
        description="Serve the app with gunicorn and a Celery worker on a throwaway PostgreSQL database, post "
        "signed sandbox webhook events (distinct, then each twice at once), and print events/s acknowledged, "
        "latency, and seconds until every event is processed into the ledger.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--events", type=int, default=500, help="events per phase (N); 2N payments are prepared")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent HTTP clients (rounded up to even)")
    parser.add_argument("--payees", type=int, default=20, help="payees the order lines are spread over")
    parser.add_argument(
        "--warmup", type=int, default=8, help="untimed events posted and processed first (warms both servers)"
    )
    parser.add_argument("--gunicorn-workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--celery-concurrency", type=int, default=2, help="Celery worker processes")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for processing per phase")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379", help="Redis server URL (no db number)")
    parser.add_argument("--redis-db", type=int, default=14, help="Redis db used as broker and cache (FLUSHed)")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="PostgreSQL server URL (no database name)")
    parser.add_argument("--seed", type=int, default=1, help="random seed for amounts and payees")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the bench database at the end")
    parser.add_argument("--keep-logs", action="store_true", help="keep the server/worker logs even if clean")
    args = parser.parse_args(argv)
    if args.events < 1 or args.concurrency < 1 or args.payees < 1 or args.warmup < 0:
        parser.error("--events, --concurrency and --payees must be >= 1, --warmup >= 0")
    args.concurrency = max(2, args.concurrency + args.concurrency % 2)
    return args


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_server(base_url: str, proc, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited ({proc.returncode}):\n{tail(log)}")
        try:
            requests.get(f"{base_url}/", timeout=2)
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not answer within {timeout:.0f} s:\n{tail(log)}")


def wait_for_worker(broker_url: str, proc, log: Path, timeout: float = 60.0) -> None:
    from celery import Celery

    probe = Celery("bench-probe", broker=broker_url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"celery worker exited ({proc.returncode}):\n{tail(log)}")
            if probe.control.ping(timeout=1.0):
                return
        raise RuntimeError(f"celery worker did not answer a ping within {timeout:.0f} s:\n{tail(log)}")
    finally:
        probe.close()


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# --- preparing paid sandbox sessions ------------------------------------------------------------------


@dataclass(frozen=True)
class PreparedEvent:
    event_id: str
    payment_id: int
    payload: dict


def prepare_events(count: int, *, payees: int, seed: int) -> list[PreparedEvent]:
    """2 lines per order over `payees` payees; start a sandbox payment; the buyer pays at the gateway. The
    gateway's own delivery task is replaced by a no-op so that only this script posts the events."""
    from django.utils import timezone

    from commissions.models import Payee
    from payments.providers.sandbox import gateway
    from payments.providers.sandbox import tasks as sandbox_tasks
    from payments.providers.sandbox.models import SandboxEvent
    from payments.services.checkout import start_payment
    from payments.services.orders import LineInput, create_order

    class _NoDelivery:
        @staticmethod
        def delay(**kwargs):
            return None

    sandbox_tasks.deliver_sandbox_event = _NoDelivery()  # gateway.py imports it from this module per call

    rng = random.Random(seed)
    payee_ids = [
        p.pk
        for p in Payee.objects.bulk_create(
            [
                Payee(kind=Payee.Kind.SELLER, legal_name=f"Bench seller {i}", country="CZ", email=f"s{i}@example.com")
                for i in range(payees)
            ]
        )
    ]
    prepared: list[PreparedEvent] = []
    for i in range(count):
        now = timezone.now()
        chosen = rng.sample(payee_ids, k=min(2, len(payee_ids)))
        lines = [
            LineInput(payee_id=pid, description=f"Item {i}.{n}", quantity=1, unit_amount_minor=rng.randint(500, 50_000))
            for n, pid in enumerate(chosen)
        ]
        order = create_order(currency="EUR", lines=lines, buyer_email=f"buyer{i}@example.com", now=now)
        payment = start_payment(order=order, provider_name="sandbox", now=now)
        session_token = payment.provider_ref.removeprefix("sbx_")
        gateway.buyer_pays(session_token, now=timezone.now())
        event = SandboxEvent.objects.get(session__token=session_token, event_type="payment.succeeded")
        prepared.append(PreparedEvent(event_id=event.event_id, payment_id=payment.pk, payload=event.payload))
    return prepared


# --- posting --------------------------------------------------------------------------------------------


@dataclass
class Response:
    event_id: str
    status: int  # 0 = no response (connection error / timeout)
    latency: float
    stored: int = 0
    duplicates: int = 0
    error: str = ""


class Poster:
    def __init__(self, url: str, secret: str):
        self.url = url
        self.secret = secret
        self.local = threading.local()

    def _session(self) -> requests.Session:
        session = getattr(self.local, "session", None)
        if session is None:
            session = self.local.session = requests.Session()
        return session

    def post(self, event: PreparedEvent, barrier: threading.Barrier | None = None) -> Response:
        from payments.providers.sandbox.signing import HEADER, signature_header

        session = self._session()
        body = json.dumps(event.payload, separators=(",", ":"), sort_keys=True).encode()
        if barrier is not None:
            # If the partner never comes (broken barrier), send anyway.
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait()
        headers = {
            "Content-Type": "application/json",
            HEADER: signature_header(payload=body, secret=self.secret, timestamp=int(time.time())),
        }
        started = time.perf_counter()
        try:
            response = session.post(self.url, data=body, headers=headers, timeout=30)
        except requests.RequestException as exc:
            return Response(event.event_id, 0, time.perf_counter() - started, error=type(exc).__name__)
        latency = time.perf_counter() - started
        result = Response(event.event_id, response.status_code, latency)
        try:
            data = response.json()
        except ValueError:
            data = {}
        if 200 <= response.status_code < 300:
            result.stored = int(data.get("received") or 0)
            result.duplicates = int(data.get("duplicates") or 0)
        else:
            result.error = str((data.get("error") or {}).get("code") or response.text[:100])
        return result


def post_all(poster: Poster, events: list[PreparedEvent], *, concurrency: int, twice: bool) -> tuple[list, float]:
    """Post every event (twice at the same moment when `twice`); returns the responses and the wall time."""
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="poster")
    futures = []
    try:
        started = time.perf_counter()
        for event in events:
            if twice:
                # Both copies are submitted back to back; the pool takes work in FIFO order, so the pair is
                # picked up together and released at once by its barrier.
                barrier = threading.Barrier(2, timeout=10)
                futures.append(pool.submit(poster.post, event, barrier))
                futures.append(pool.submit(poster.post, event, barrier))
            else:
                futures.append(pool.submit(poster.post, event))
        wait(futures)
        wall = time.perf_counter() - started
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return [f.result() for f in futures], wall


@dataclass
class PhaseResult:
    name: str
    events: int
    requests: int
    wall: float
    latencies: list[float]
    non_2xx: int
    error_codes: dict[str, int]
    stored: int
    duplicates: int
    acknowledged: set[str]
    processed_after: float | None  # seconds from the phase's first request; None = timed out
    status_counts: dict[str, int]


def wait_processed(
    events: list[PreparedEvent], acknowledged: set[str], *, phase_started: float, timeout: float
) -> tuple[float | None, dict[str, int]]:
    """Poll until every acknowledged event's inbox row is processed and its payment has its capture."""
    from django.db.models import Count

    from ledger.models import LedgerTransaction
    from payments.models import WebhookEvent

    ids = [e.event_id for e in events if e.event_id in acknowledged]
    keys = [f"capture:payment:{e.payment_id}" for e in events if e.event_id in acknowledged]
    deadline = time.perf_counter() + timeout
    while True:
        counts = dict(
            WebhookEvent.objects.filter(event_id__in=ids).values_list("status").annotate(n=Count("id")).order_by()
        )
        captures = LedgerTransaction.objects.filter(kind="capture", idempotency_key__in=keys).count()
        if counts.get("processed", 0) >= len(ids) and captures >= len(keys):
            return time.perf_counter() - phase_started, counts
        if time.perf_counter() > deadline:
            counts["(captures)"] = captures
            return None, counts
        time.sleep(0.1)


def run_phase(
    name: str, poster: Poster, events: list[PreparedEvent], *, concurrency: int, twice: bool, timeout: float
) -> PhaseResult:
    started = time.perf_counter()
    responses, wall = post_all(poster, events, concurrency=concurrency, twice=twice)
    ok = [r for r in responses if 200 <= r.status < 300]
    acknowledged = {r.event_id for r in ok}
    errors: dict[str, int] = {}
    for r in responses:
        if not 200 <= r.status < 300:
            key = f"{r.status} {r.error}".strip()
            errors[key] = errors.get(key, 0) + 1
    processed_after, counts = wait_processed(events, acknowledged, phase_started=started, timeout=timeout)
    return PhaseResult(
        name=name,
        events=len(events),
        requests=len(responses),
        wall=wall,
        latencies=sorted(r.latency for r in responses),
        non_2xx=len(responses) - len(ok),
        error_codes=errors,
        stored=sum(r.stored for r in ok),
        duplicates=sum(r.duplicates for r in ok),
        acknowledged=acknowledged,
        processed_after=processed_after,
        status_counts=counts,
    )


# --- checks ---------------------------------------------------------------------------------------------


def invariants(
    events: list[PreparedEvent], phases: list[PhaseResult], *, all_payment_ids: set[int]
) -> list[tuple[str, bool, str]]:
    from django.db.models import Count

    from ledger.models import LedgerTransaction
    from ledger.selectors import check_ledger
    from payments.models import Payment, PaymentStatus, WebhookEvent

    ids = [e.event_id for e in events]
    rows_per_event = dict(
        WebhookEvent.objects.filter(event_id__in=ids).values_list("event_id").annotate(n=Count("id")).order_by()
    )
    acked = set().union(*(p.acknowledged for p in phases))
    extra_rows = sum(n - 1 for n in rows_per_event.values() if n > 1)
    missing_rows = sum(1 for i in acked if i not in rows_per_event)
    captures: dict[int, int] = {}
    for key in LedgerTransaction.objects.filter(kind="capture").values_list("idempotency_key", flat=True):
        payment_id = int(key.rsplit(":", 1)[-1])
        captures[payment_id] = captures.get(payment_id, 0) + 1
    acked_payments = [e.payment_id for e in events if e.event_id in acked]
    wrong_captures = sum(1 for pid in acked_payments if captures.get(pid, 0) != 1)
    stray_captures = sum(n for pid, n in captures.items() if pid not in all_payment_ids)
    flagged = Payment.objects.filter(needs_review=True).count()
    succeeded = Payment.objects.filter(pk__in=acked_payments, status=PaymentStatus.SUCCEEDED).count()
    non_2xx = sum(p.non_2xx for p in phases)
    report = check_ledger()
    return [
        (
            "one inbox row per event id",
            extra_rows == 0 and missing_rows == 0,
            f"{len(rows_per_event)} ids, {extra_rows} extra rows, {missing_rows} acked but missing",
        ),
        (
            "one capture per payment",
            wrong_captures == 0 and stray_captures == 0,
            f"{len(acked_payments) - wrong_captures}/{len(acked_payments)} payments with exactly one",
        ),
        (
            "payments succeeded",
            succeeded == len(acked_payments),
            f"{succeeded}/{len(acked_payments)}, {flagged} flagged for review",
        ),
        ("every response 2xx", non_2xx == 0, f"{non_2xx} non-2xx"),
        (
            "ledger check",
            report.ok,
            f"{report.transactions} transactions, {report.accounts} accounts, {report.entries} entries",
        ),
    ]


def scan_logs(paths: list[Path]) -> list[str]:
    """Tracebacks and ERROR lines in the server/worker logs (WARNING and above are logged)."""
    findings = []
    for path in paths:
        text = path.read_text(errors="replace") if path.exists() else ""
        for match in re.finditer(r"^.*(?:Traceback \(most recent call last\)|\bERROR\b|\bCRITICAL\b).*$", text, re.M):
            findings.append(f"{path.name}: {match.group(0)[:200]}")
    return findings


# --- main -----------------------------------------------------------------------------------------------


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def run(args: argparse.Namespace, db_url: str, logdir: Path) -> int:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    broker = f"{args.redis.rstrip('/')}/{args.redis_db}"
    secret = f"whsec_bench_{secrets.token_hex(16)}"
    env = base_env(
        db_url,
        CELERY_BROKER_URL=broker,
        REDIS_URL=broker,
        TOLLGATE_PUBLIC_BASE_URL=base_url,
        SANDBOX_WEBHOOK_SECRET=secret,
        # Confirmation e-mails are still rendered and "sent", just not printed into the worker's log.
        EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend",
    )
    redis.Redis.from_url(broker).flushdb()
    migrate_seconds = migrate(env)

    # This process: the bench database, no broker (nothing is queued from here), the same secret.
    local_env = {k: v for k, v in env.items() if k not in ("CELERY_BROKER_URL", "REDIS_URL")}
    setup_django(local_env)
    from django.db import connections

    server_log, worker_log = logdir / "gunicorn.log", logdir / "celery.log"
    server = worker = None
    venv_bin = Path(sys.executable).parent
    try:
        started = time.perf_counter()
        prepared = prepare_events(2 * args.events + args.warmup, payees=args.payees, seed=args.seed)
        prepare_seconds = time.perf_counter() - started
        connections.close_all()  # the servers get every connection slot they want

        server = start_group(
            [
                str(venv_bin / "gunicorn"),
                "config.wsgi:application",
                "-w",
                str(args.gunicorn_workers),
                "-b",
                f"127.0.0.1:{port}",
                "--log-level",
                "warning",
            ],
            env=env,
            log=server_log,
        )
        worker = start_group(
            [
                str(venv_bin / "celery"),
                "-A",
                "config",
                "worker",
                "-Q",
                "webhooks,default",
                "-c",
                str(args.celery_concurrency),
                "--loglevel=WARNING",
                "--without-gossip",
                "--without-mingle",
                "-n",
                f"bench-{os.getpid()}@%h",
            ],
            env=env,
            log=worker_log,
        )
        wait_for_server(base_url, server, server_log)
        wait_for_worker(broker, worker, worker_log)

        poster = Poster(f"{base_url}/webhooks/sandbox/", secret)
        warmup, measured = prepared[: args.warmup], prepared[args.warmup :]
        first, second = measured[: args.events], measured[args.events :]
        if warmup:
            run_phase("warm-up", poster, warmup, concurrency=args.concurrency, twice=False, timeout=args.timeout)
        load_before = os.getloadavg()
        phase_a = run_phase(
            "A distinct", poster, first, concurrency=args.concurrency, twice=False, timeout=args.timeout
        )
        phase_b = run_phase(
            "B duplicates", poster, second, concurrency=args.concurrency, twice=True, timeout=args.timeout
        )
        phases = [phase_a, phase_b]
        load_after = os.getloadavg()
        checks = invariants(measured, phases, all_payment_ids={e.payment_id for e in prepared})
    finally:
        stop_group(server)
        stop_group(worker)
        connections.close_all()
    findings = scan_logs([server_log, worker_log])

    print_table(
        "Parameters",
        ["parameter", "value"],
        [
            ["database", db_url.rsplit("/", 1)[-1]],
            ["server", f"gunicorn -w {args.gunicorn_workers} on {base_url}"],
            ["worker", f"celery -Q webhooks,default -c {args.celery_concurrency}"],
            ["broker", broker],
            ["events per phase (N)", args.events],
            ["concurrent clients", args.concurrency],
            ["payees (2 lines per order)", args.payees],
            ["migrate (s)", f"{migrate_seconds:.1f}"],
            ["warm-up events (untimed)", args.warmup],
            ["e-mail backend (server, worker)", "dummy"],
            [f"prepare {len(prepared)} paid sessions (s)", f"{prepare_seconds:.1f}"],
            ["CPUs / load avg before, after", f"{os.cpu_count()} / {load_before[0]:.2f}, {load_after[0]:.2f}"],
        ],
    )
    rows = []

    def row(label, fn):
        rows.append([label, *(fn(p) for p in phases)])

    row("events", lambda p: p.events)
    row("requests", lambda p: p.requests)
    row("post wall time (s)", lambda p: f"{p.wall:.2f}")
    row("acknowledged events/s", lambda p: f"{len(p.acknowledged) / p.wall:.1f}")
    row("requests/s", lambda p: f"{p.requests / p.wall:.1f}")
    row("latency p50 (ms)", lambda p: fmt_ms(percentile(p.latencies, 50)))
    row("latency p99 (ms)", lambda p: fmt_ms(percentile(p.latencies, 99)))
    row("latency max (ms)", lambda p: fmt_ms(p.latencies[-1] if p.latencies else 0))
    row("non-2xx responses", lambda p: p.non_2xx)
    row("answered stored / duplicate", lambda p: f"{p.stored} / {p.duplicates}")
    row(
        "all processed into ledger after (s)",
        lambda p: f"{p.processed_after:.2f}" if p.processed_after is not None else f"timeout {args.timeout:.0f}",
    )
    print_table("Results", ["metric", "A distinct", "B duplicates at once"], rows)
    for phase in phases:
        if phase.error_codes:
            print(f"  {phase.name}: non-2xx by status/code: {phase.error_codes}")
        if phase.processed_after is None:
            print(f"  {phase.name}: inbox rows by status at timeout: {phase.status_counts}")
    print_table("Invariants", ["check", "result", "detail"], [[c, "PASS" if ok else "FAIL", d] for c, ok, d in checks])
    if findings:
        print(f"\n{len(findings)} error lines in the server/worker logs (kept in {logdir}); first ones:")
        for line in findings[:10]:
            print(f"  {line}")

    passed = all(ok for _, ok, _ in checks) and all(p.processed_after is not None for p in phases)
    a, b = phase_a, phase_b
    print(
        f"\nwebhooks: {a.events} distinct events acked at {len(a.acknowledged) / a.wall:.0f}/s "
        f"(p50 {fmt_ms(percentile(a.latencies, 50))} ms, p99 {fmt_ms(percentile(a.latencies, 99))} ms), "
        f"in the ledger after {a.processed_after or float('nan'):.1f} s; {b.events} events x2 at once acked at "
        f"{len(b.acknowledged) / b.wall:.0f}/s (p99 {fmt_ms(percentile(b.latencies, 99))} ms), in the ledger after "
        f"{b.processed_after or float('nan'):.1f} s; invariants {'PASS' if passed else 'FAIL'}"
    )
    return 0 if passed and not findings else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    logdir = Path(tempfile.mkdtemp(prefix="tollgate-bench-webhooks-"))
    name = f"tollgate_bench_webhooks_{os.getpid()}"
    code = 1
    try:
        with throwaway_database(args.postgres, name, keep=args.keep_db) as db_url:
            code = run(args, db_url, logdir)
    except KeyboardInterrupt:
        print("\ninterrupted; processes stopped, database dropped", file=sys.stderr)
        code = 130
    finally:
        with contextlib.suppress(redis.RedisError):
            redis.Redis.from_url(f"{args.redis.rstrip('/')}/{args.redis_db}").flushdb()
        if code == 0 and not args.keep_logs:
            shutil.rmtree(logdir, ignore_errors=True)
        else:
            print(f"logs: {logdir}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
