"""Shared plumbing for the benchmark scripts: a throwaway PostgreSQL database, migrations, child processes
in their own process groups, and small aligned tables. Nothing here is imported by the application."""

from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_POSTGRES = "postgres://postgres@127.0.0.1:5432"
SETTINGS = "config.settings.dev"


def add_project_to_path() -> None:
    """Scripts run as `python bench/x.py` have bench/ on sys.path, not the project root."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit, and make Ctrl-C raise KeyboardInterrupt even when SIGINT was ignored
    at start (a background job), so that every `finally` (processes, database) still runs."""

    def _raise(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _raise)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def database_url(server: str, name: str) -> str:
    return f"{server.rstrip('/')}/{name}"


def _admin_connection(server: str) -> psycopg.Connection:
    parts = urlsplit(server)
    return psycopg.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        user=parts.username or "postgres",
        password=parts.password,
        dbname="postgres",
        autocommit=True,
        connect_timeout=5,
    )


@contextlib.contextmanager
def throwaway_database(server: str, name: str, *, keep: bool = False) -> Iterator[str]:
    """CREATE DATABASE `name` on `server`, yield its URL, and DROP it afterwards (also on errors/Ctrl-C)."""
    with _admin_connection(server) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield database_url(server, name)
    finally:
        if keep:
            print(f"(kept database {name})")
        else:
            _drop(server, name)


def _drop(server: str, name: str) -> None:
    # Django connections of this process must be closed first (the caller does); FORCE ends any others.
    for attempt in range(3):
        try:
            with _admin_connection(server) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            return
        except psycopg.Error as exc:
            if attempt == 2:
                print(f"warning: could not drop database {name}: {exc}", file=sys.stderr)
            time.sleep(1)


def migrate(env: dict[str, str]) -> float:
    """`manage.py migrate` on the database named by env["DATABASE_URL"]; returns the seconds it took."""
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"migrate failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return time.perf_counter() - started


def base_env(db_url: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    for key in ("CELERY_BROKER_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "DATABASE_URL"):
        env.pop(key, None)
    env.update(
        {
            "DATABASE_URL": db_url,
            "DJANGO_SETTINGS_MODULE": SETTINGS,
            "DJANGO_DEBUG": "0",
            "LOG_LEVEL": "WARNING",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def setup_django(env: dict[str, str]) -> None:
    """Point this process at the bench database (no broker: any task runs eagerly) and set Django up."""
    for key in ("CELERY_BROKER_URL", "REDIS_URL"):
        os.environ.pop(key, None)
    os.environ.update(env)
    add_project_to_path()
    import django

    django.setup()


def start_group(args: Sequence[str], *, env: dict[str, str], log: Path) -> subprocess.Popen:
    """Start a child in its own session/process group (so Ctrl-C reaches us, and we end the whole group)."""
    handle = log.open("ab")
    try:
        return subprocess.Popen(
            list(args), cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
    finally:
        handle.close()


def stop_group(proc: subprocess.Popen | None, *, grace: float = 15.0) -> None:
    """SIGTERM the child's process group, then SIGKILL it if it is still there after `grace` seconds."""
    if proc is None:
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        # The leader is gone; make sure no member of its group lingers.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        break


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending sequence (0 for an empty one)."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), math.ceil(pct / 100 * len(sorted_values))))
    return sorted_values[rank - 1]


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        first = row[0].ljust(widths[0])
        rest = [cell.rjust(widths[i + 1]) for i, cell in enumerate(row[1:])]
        return "  ".join([first, *rest]).rstrip()

    print(f"\n{title}")
    print(line(cells[0]))
    print("  ".join("-" * w for w in widths))
    for row in cells[1:]:
        print(line(row))
