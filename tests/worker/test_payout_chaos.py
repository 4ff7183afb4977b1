"""Celery chaos on a real worker (RELIABILITY §6 rows 25-26): pool children `kill -9`ed at random points of
payouts, and the whole worker killed mid-payout; every payout ends paid with exactly one transfer at a fake
Stripe (a real HTTP server the worker's Stripe SDK talks to through STRIPE_API_BASE).

The worker runs with the project's settings (acks_late, reject_on_worker_lost; `execute_payout` retries
after a lost child, capped by its max_retries) and a 30 s visibility timeout. The guards against a second
transfer are the payout's Idempotency-Key and the retry's lookup by transfer group; a test switches them
off at the fake to show that the kills do land where they would pay twice, and one kills every attempt of a
payout to show that the redeliveries stop.
"""

from __future__ import annotations

import collections
import contextlib
import os
import random
import signal
import sys
import threading
import time
from pathlib import Path

import pytest
import redis
from django.utils import timezone

from commissions.models import Payout, PayoutRun
from commissions.payouts import runs
from ledger.selectors import check_ledger
from tests.commissions.payout_helpers import fund, stripe_payee
from tests.worker.fake_stripe import ANSWERED, CREATED, LOOKUP, RECEIVED, FakeStripe

pytestmark = [pytest.mark.worker, pytest.mark.postgres]

# Row 25 asks for 100 kills. The killer strikes about every 0.3 s and 100 payouts are paid in ~45 s with
# ~90 kills; 150 payouts leave room for all 100 kills to land while payouts are in flight (~70 s in all).
PAYOUTS = 150
KILLS = 100
# Kills aimed at one payout are capped below `execute_payout`'s max_retries (10), which caps redeliveries
# after a lost child: the test is about exactly-once transfers, not about running the cap out. (Untargeted
# kills cannot be attributed; they are a quarter of the kills, spread over all payouts.)
MAX_AIMED_KILLS_PER_PAYOUT = 4
VISIBILITY_TIMEOUT = 30
# Where the killer strikes: when the fake receives the transfer request (the transfer is still made: the
# request reached Stripe), after it made the transfer but before answering ("after the provider call, before
# recording"), right after answering (while the worker records it), or at a random moment of a random child.
WHERE = {RECEIVED: 1, CREATED: 1, ANSWERED: 1, "random": 1}


def _children(pid: int) -> list[int]:
    """The worker's pool children (its direct children in /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry))
    return found


def _pid_of_port(worker_pid: int):
    """Which pool child owns the TCP client socket on local port `port` (for the fake: who is calling)."""

    def lookup(port: int) -> int | None:
        inodes = set()
        with contextlib.suppress(OSError):
            for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
                fields = line.split()
                if fields[1] == f"0100007F:{port:04X}":
                    inodes.add(f"socket:[{fields[9]}]")
        for child in _children(worker_pid):
            with contextlib.suppress(OSError):
                for fd in os.listdir(f"/proc/{child}/fd"):
                    with contextlib.suppress(OSError):
                        if os.readlink(f"/proc/{child}/fd/{fd}") in inodes:
                            return child
        return None

    return lookup


class Killer(threading.Thread):
    """SIGKILLs the worker's pool children, `budget` times, at the points in `where` (weights)."""

    def __init__(
        self,
        *,
        worker_pid: int,
        fake: FakeStripe,
        budget: int,
        where: dict[str, int],
        seed: int,
        max_per_payout: int = MAX_AIMED_KILLS_PER_PAYOUT,
        trap_wait: float = 2.0,
    ):
        super().__init__(name="killer", daemon=True)
        self.worker_pid, self.fake, self.budget, self.where = worker_pid, fake, budget, where
        self.max_per_payout = max_per_payout
        # How long an armed trap waits for a request before the killer re-chooses (a long wait keeps it armed
        # between the attempts of one payout, so none slips through while it is being re-armed).
        self.trap_wait = trap_wait
        self.rng = random.Random(seed)
        self.stopping = threading.Event()
        self.kills: collections.Counter[str] = collections.Counter()  # by point
        self.by_payout: collections.Counter[str] = collections.Counter()
        self.errors: list[BaseException] = []

    @property
    def total(self) -> int:
        return sum(self.kills.values())

    def run(self) -> None:
        try:
            points, weights = list(self.where), list(self.where.values())
            while self.total < self.budget and not self.stopping.is_set():
                point = self.rng.choices(points, weights)[0]
                if point == "random":
                    self._random_kill()
                else:
                    self._aimed_kill(point)
                self.stopping.wait(self.rng.uniform(0.02, 0.2))  # let some payouts through between kills
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.errors.append(exc)
        finally:
            self.fake.clear_trap()

    def _random_kill(self) -> None:
        self.stopping.wait(self.rng.uniform(0.0, 0.3))
        children = _children(self.worker_pid)
        if children and self._kill(self.rng.choice(children)):
            self.kills["random"] += 1

    def _aimed_kill(self, point: str) -> None:
        trap = self.fake.set_trap(*((RECEIVED, LOOKUP) if point == "any call" else (point,)))
        if not trap.sprung.wait(self.trap_wait):
            self.fake.clear_trap()
            return
        try:
            if trap.pid is None or self.by_payout[trap.payout_id] >= self.max_per_payout:
                return
            if trap.pid in _children(self.worker_pid) and self._kill(trap.pid):
                self.kills[point] += 1
                self.by_payout[trap.payout_id] += 1
        finally:
            trap.done.set()

    @staticmethod
    def _kill(pid: int) -> bool:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return False
        return True


def _clean_broker() -> None:
    """No payout task messages left over (queued or unacknowledged by a killed worker) on the broker."""
    client = redis.Redis.from_url(os.environ["CELERY_BROKER_URL"])
    for queue in ("payouts", "default"):
        for key in client.scan_iter(f"{queue}*"):
            client.delete(key)
    client.delete("unacked", "unacked_index")


@pytest.fixture
def chaos(celery_worker_factory, settings):
    """A fake Stripe and a way to start workers that consume the payouts queue and talk to it."""
    settings.TOLLGATE_PAYOUT_APPROVAL_THRESHOLD = {"default": 10**12}  # no second approver in these runs
    _clean_broker()
    fakes: list[FakeStripe] = []

    def start(fake: FakeStripe):
        return celery_worker_factory(
            queues="payouts",  # payout statements (default queue) are not under test
            env={
                "STRIPE_API_BASE": fake.base_url,
                "STRIPE_SECRET_KEY": "sk_test_chaos",
                "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
                "NO_PROXY": "127.0.0.1,localhost",
                "no_proxy": "127.0.0.1,localhost",
            },
        )

    def new_fake(**options) -> FakeStripe:
        fake = FakeStripe(**options).__enter__()
        fakes.append(fake)
        return fake

    yield new_fake, start
    for fake in fakes:
        fake.__exit__(None, None, None)
    _clean_broker()


def _start_run(count: int, seed: int) -> PayoutRun:
    rng = random.Random(seed)
    payees = [stripe_payee() for _ in range(count)]
    for payee in payees:
        fund(payee, rng.randrange(100, 10000))
    run = runs.start_run(trigger=PayoutRun.Trigger.STAFF, now=timezone.now(), payee_ids=[p.pk for p in payees])
    assert run.status == PayoutRun.Status.APPROVED
    assert run.payout_count == count
    return run


def _all_paid(run: PayoutRun):
    return lambda: not run.payouts.exclude(status=Payout.Status.PAID).exists()


def _assert_one_transfer_each(run: PayoutRun, fake: FakeStripe) -> None:
    payouts = {str(p.pk): p for p in run.payouts.all()}
    assert {p.status for p in payouts.values()} == {Payout.Status.PAID}
    by_payout = fake.transfers_by_payout()
    counts = collections.Counter({payout_id: len(transfers) for payout_id, transfers in by_payout.items()})
    assert set(by_payout) == set(payouts), "a transfer for no payout of the run, or a payout with none"
    assert [payout_id for payout_id, n in counts.items() if n != 1] == [], f"double transfers: {counts}"
    for payout_id, [transfer] in by_payout.items():
        payout = payouts[payout_id]
        assert transfer["transfer_group"] == f"payout_{payout_id}"
        assert (transfer["amount"], transfer["currency"]) == (payout.amount_minor, payout.currency.lower())
        assert transfer["destination"] == payout.payee.stripe_account_id
        assert payout.provider_ref == transfer["id"]
    assert sum(t["amount"] for t in fake.transfers) == run.totals["EUR"]
    assert check_ledger().ok


def test_children_killed_at_random_points_of_payouts_pay_each_exactly_once(chaos, record_property):
    new_fake, start_worker = chaos
    started = time.monotonic()
    fake = new_fake(delay=(0.0, 0.3), seed=25)
    worker = start_worker(fake)
    fake.pid_of_port = _pid_of_port(worker.pid)
    killer = Killer(worker_pid=worker.pid, fake=fake, budget=KILLS, where=WHERE, seed=25)
    killer.start()

    run = _start_run(PAYOUTS, seed=25)
    try:
        worker.wait_until(_all_paid(run), timeout=300, interval=0.5)
    finally:
        killer.stopping.set()
        killer.join(10)
    elapsed = time.monotonic() - started

    assert not killer.errors
    _assert_one_transfer_each(run, fake)
    attempts = collections.Counter(run.payouts.values_list("attempts", flat=True))
    run.refresh_from_db()
    figures = (
        f"row 25: {PAYOUTS} payouts paid, {len(fake.transfers)} transfers, {killer.total} kills "
        f"{dict(killer.kills)}, {fake.replays} idempotent replays, {fake.found_by_lookup} found by lookup, "
        f"send attempts per payout {dict(sorted(attempts.items()))}, run {run.status}, {elapsed:.0f} s"
    )
    record_property("figures", figures)  # in the JUnit XML; shown with -rA
    sys.stderr.write(figures + "\n")
    assert killer.total == KILLS, f"only {killer.total} kills landed before every payout was paid"
    # The kills hit the window that could pay twice: a transfer made whose answer the worker never recorded.
    assert killer.kills[CREATED] + killer.kills[ANSWERED] > 0
    assert fake.replays + fake.found_by_lookup > 0


def test_the_whole_worker_killed_mid_payout_is_redelivered_within_the_visibility_timeout(chaos):
    new_fake, start_worker = chaos
    fake = new_fake()
    first = start_worker(fake)
    trap = fake.set_trap(CREATED)  # the transfer is made; the worker dies before reading the answer

    run = _start_run(1, seed=26)
    assert trap.sprung.wait(60), "the first worker never called the fake Stripe"
    first.kill()
    killed_at = time.monotonic()
    trap.done.set()
    payout = run.payouts.get()
    assert payout.status == Payout.Status.PROCESSING

    second = start_worker(fake)
    second.wait_until(_all_paid(run), timeout=VISIBILITY_TIMEOUT + 10 + 30, interval=0.1)
    redelivered_after = time.monotonic() - killed_at
    sys.stderr.write(f"row 26: paid {redelivered_after:.1f} s after the whole worker was killed\n")

    _assert_one_transfer_each(run, fake)
    assert fake.found_by_lookup + fake.replays >= 1
    # The new worker sweeps for unacknowledged messages every 10 s (unacked_restore_throttle 1), so the
    # message comes back at most 10 s after it is VISIBILITY_TIMEOUT old; 2 s more to run the payout.
    assert redelivered_after <= VISIBILITY_TIMEOUT + 10 + 2, f"paid {redelivered_after:.0f} s after the kill"


@pytest.mark.parametrize(
    ("dedupe", "hide_from_list", "paid_twice"),
    [
        pytest.param(False, True, True, id="both-guards-off"),
        pytest.param(False, False, False, id="idempotency-key-off"),
        pytest.param(True, True, False, id="lookup-off"),
    ],
)
def test_a_killed_payout_is_paid_twice_only_with_both_guards_off(chaos, dedupe, hide_from_list, paid_twice):
    """The guard patched out, to prove row 25 can fail: the fake ignores the Idempotency-Key and/or hides
    transfers from the retry's lookup, and children are killed after the transfer is made, before the
    answer is read. With both off each such kill is a second transfer; either one alone is enough."""
    new_fake, start_worker = chaos
    fake = new_fake(delay=(0.0, 0.1), dedupe=dedupe, hide_from_list=hide_from_list)
    worker = start_worker(fake)
    fake.pid_of_port = _pid_of_port(worker.pid)
    killer = Killer(worker_pid=worker.pid, fake=fake, budget=3, where={CREATED: 1}, seed=27)
    killer.start()

    run = _start_run(10, seed=27)
    try:
        worker.wait_until(_all_paid(run), timeout=120, interval=0.5)
    finally:
        killer.stopping.set()
        killer.join(10)

    assert not killer.errors
    assert killer.total >= 1
    counts = collections.Counter(t["metadata"]["payout_id"] for t in fake.transfers)
    if paid_twice:
        assert sum(counts.values()) == 10 + killer.total, counts  # each kill one more transfer
        assert max(counts.values()) > 1
        assert sum(t["amount"] for t in fake.transfers) > run.totals["EUR"]
    else:
        _assert_one_transfer_each(run, fake)


def test_a_payout_whose_child_is_killed_every_time_stops_after_max_retries(chaos):
    """The cap on redeliveries after a lost child (celery#6178: reject_on_worker_lost alone loops): the task's
    max_retries (10) worker-lost retries, then it fails and is acknowledged; the payout stays processing
    (for `retry_open_payouts`) with its one transfer, and nothing is sent again."""
    from commissions.tasks import execute_payout

    new_fake, start_worker = chaos
    fake = new_fake()
    worker = start_worker(fake)
    fake.pid_of_port = _pid_of_port(worker.pid)
    killer = Killer(
        worker_pid=worker.pid,
        fake=fake,
        budget=100,
        where={"any call": 1},
        seed=30,
        max_per_payout=100,
        trap_wait=VISIBILITY_TIMEOUT + 30,  # armed before the first attempt and between every two
    )
    killer.start()
    run = _start_run(1, seed=30)
    payout = run.payouts.get()
    try:
        expected = execute_payout.max_retries + 1
        # Each attempt comes default_retry_delay (5 s) after the last kill, plus a new child's start (~2 s).
        budget = expected * (execute_payout.default_retry_delay + 10) + 60
        worker.wait_until(lambda: killer.total >= expected, timeout=budget, interval=0.5)
        time.sleep(execute_payout.default_retry_delay + 5)  # a further redelivery would have come by now
    finally:
        killer.stopping.set()
        killer.join(10)

    payout.refresh_from_db()
    assert killer.total == expected
    assert payout.status == Payout.Status.PROCESSING
    assert payout.attempts == expected
    assert len(fake.transfers) == 1
    broker = redis.Redis.from_url(os.environ["CELERY_BROKER_URL"])
    assert (broker.llen("payouts"), broker.hlen("unacked")) == (0, 0)  # acknowledged, not waiting to come back
