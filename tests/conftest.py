"""Shared fixtures.

PostgreSQL-only tests are marked `@pytest.mark.postgres`; on SQLite they skip, unless
TOLLGATE_REQUIRE_SERVICES=1 (set by .ci/run), where a missing PostgreSQL is a failure.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import responses
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from core.models import ApiClientKey
from tests.factories import ApiClientFactory, PayeeFactory

REQUIRE_SERVICES = os.environ.get("TOLLGATE_REQUIRE_SERVICES") == "1"


@pytest.fixture(autouse=True)
def _require_services(request):
    needs_postgres = request.node.get_closest_marker("postgres") or request.node.get_closest_marker("worker")
    if needs_postgres and connection.vendor != "postgresql":
        message = "needs PostgreSQL: set DATABASE_URL=postgres://..."
        if REQUIRE_SERVICES:
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(autouse=True)
def _vat_rates_after_flush(request):
    """A transactional test (the PostgreSQL and worker ones) ends by flushing every table, the rows the data
    migrations loaded included: put the seeded VAT rates back before such a test, so orders can be created."""
    marker = request.node.get_closest_marker("django_db")
    transactional = (marker is not None and marker.kwargs.get("transaction")) or (
        "transactional_db" in request.fixturenames
    )
    if not transactional:
        return
    request.getfixturevalue("transactional_db")
    from invoicing.models import VatRate

    seed = importlib.import_module("invoicing.migrations.0002_load_eu_rates")
    for row in seed.seed_rows():
        VatRate.objects.get_or_create(
            country=row["country"], category=row["category"], valid_from=row["valid_from"], defaults=row
        )


@pytest.fixture(autouse=True)
def _clear_cache():
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def api_client_obj(db):
    return ApiClientFactory(name="demo-marketplace")


@pytest.fixture
def api(api_client_obj):
    """A DRF test client authenticated as an API client."""
    _, key = ApiClientKey.objects.create_key(name="test", client=api_client_obj)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return client


@pytest.fixture
def payee(db):
    return PayeeFactory(legal_name="Autozvuk Praha s.r.o.", country="CZ")


@pytest.fixture
def webhook_relay():
    """Routes the sandbox gateway's outgoing HTTP deliveries (requests.post to http://testserver/...) into
    the Django test client, so they go through the real URL, middleware and signature check."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        deliveries: list[tuple[str, int]] = []

        def relay(request):
            path = urlsplit(request.url).path
            headers = {k: v for k, v in request.headers.items() if k.lower().startswith("tollgate-")}
            response = Client().post(path, data=request.body, content_type="application/json", headers=headers)
            deliveries.append((path, response.status_code))
            return response.status_code, {}, response.content

        mock.add_callback(responses.POST, re.compile(r"http://testserver/webhooks/.*"), callback=relay)
        mock.deliveries = deliveries
        yield mock


class CeleryWorker:
    """One real `celery worker` process (its own session, so its pool children go with it)."""

    def __init__(self, *, env: dict[str, str] | None, queues: str, concurrency: int):
        db = connection.settings_dict
        database_url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        full_env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "TOLLGATE_TEST_EAGER": "0",
            "TOLLGATE_RENDER_DOCUMENTS": "1",  # the documents queue renders and e-mails, as in production
            "LOG_LEVEL": "WARNING",
            **(env or {}),
        }
        root = Path(__file__).resolve().parent.parent
        self.process = subprocess.Popen(  # noqa: S603 - fixed argv
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-Q",
                queues,
                "-c",
                str(concurrency),
                "--max-tasks-per-child=20",
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
                "-n",
                f"test-{os.getpid()}-{time.monotonic_ns()}@%h",
                "--loglevel=WARNING",
            ],
            cwd=root,
            env=full_env,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_until(self, predicate, timeout: float = 30.0, interval: float = 0.1):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the celery worker exited with {self.process.returncode}")
            result = predicate()
            if result:
                return result
            time.sleep(interval)
        pytest.fail(f"condition not met within {timeout} s")

    def kill(self) -> None:
        """SIGKILL the worker and its pool children at once (a lost machine: nothing is acknowledged)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is not None:
            with contextlib.suppress(ProcessLookupError):  # its orphaned pool children may still run
                os.killpg(self.process.pid, signal.SIGKILL)
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@pytest.fixture
def celery_worker_factory(transactional_db):
    """Start real workers with options: `start(env=None, queues=..., concurrency=2)` returns a `CeleryWorker`
    (`.pid`, `.wait_until(predicate, timeout)`, `.kill()`, `.stop()`); every worker started is stopped
    afterwards. `env` is added to the worker's environment (settings it reads, such as STRIPE_API_BASE)."""
    from config.celery import app

    if not os.environ.get("CELERY_BROKER_URL"):
        pytest.fail("the worker tests need CELERY_BROKER_URL (e.g. redis://127.0.0.1:6379/15)")
    app.control.purge()
    was_eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    workers: list[CeleryWorker] = []

    def start(*, env: dict[str, str] | None = None, queues: str = "webhooks,default,documents", concurrency: int = 2):
        worker = CeleryWorker(env=env, queues=queues, concurrency=concurrency)
        workers.append(worker)
        return worker

    try:
        yield start
    finally:
        app.conf.task_always_eager = was_eager
        for worker in workers:
            worker.stop()


@pytest.fixture
def celery_worker(celery_worker_factory):
    """A real `celery worker` process on the real broker (Redis), reading and writing the test database.

    Tasks queued by the test are sent to the broker instead of running eagerly; the fixture yields a
    `wait_until(predicate, timeout)` helper and stops the worker (SIGTERM, then SIGKILL) afterwards.
    """
    return celery_worker_factory().wait_until
