"""A fake Stripe transfers API on a real socket, for worker processes (the SDK pointed at it by STRIPE_API_BASE).

Only what `StripeProvider.transfer` calls: POST /v1/transfers (form-encoded, deduplicated by the
Idempotency-Key header as Stripe does: the same key replays the first answer, other parameters are an
`idempotency_error`), GET /v1/transfers?transfer_group=..., GET /v1/transfers/<id>. Every created transfer
is recorded. Answers can be delayed at random. A test can set a `trap` at points of a request (received,
created but not answered, answered; a retry's lookup): the first request to reach one hands the test the
calling process and waits while the test acts on it (kills it). `dedupe=False` / `hide_from_list=True`
switch the guards' side off, to prove a test can fail.
"""

from __future__ import annotations

import json
import random
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

RECEIVED, CREATED, ANSWERED, LOOKUP = "received", "created", "answered", "lookup"


@dataclass
class Trap:
    """Springs once, at the first request reaching one of `points`; the request waits (up to 2 s) for `done`."""

    points: frozenset[str]
    sprung: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    pid: int | None = None
    payout_id: str = ""


class FakeStripe:
    def __init__(
        self,
        *,
        delay: tuple[float, float] = (0.0, 0.0),
        dedupe: bool = True,
        hide_from_list: bool = False,
        pid_of_port: Callable[[int], int | None] | None = None,
        seed: int = 0,
    ):
        self.delay, self.dedupe, self.hide_from_list = delay, dedupe, hide_from_list
        self.pid_of_port = pid_of_port or (lambda port: None)
        self.transfers: list[dict[str, Any]] = []  # every transfer created, in order
        self.replays = 0  # POSTs answered from the idempotency store
        self.found_by_lookup = 0  # GET lists that returned an existing transfer (a retry's lookup)
        self.requests: list[tuple[str, str]] = []
        self._by_id: dict[str, dict[str, Any]] = {}
        self._by_key: dict[str, tuple[dict[str, str], dict[str, Any]]] = {}
        self._key_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._trap: Trap | None = None
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-stripe", daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeStripe:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- for the test -------------------------------------------------------------------------------
    def transfers_by_payout(self) -> dict[str, list[dict[str, Any]]]:
        with self._lock:
            grouped: dict[str, list[dict[str, Any]]] = {}
            for transfer in self.transfers:
                grouped.setdefault(transfer["metadata"].get("payout_id", ""), []).append(transfer)
            return grouped

    def set_trap(self, *points: str) -> Trap:
        trap = Trap(frozenset(points))
        with self._lock:
            self._trap = trap
        return trap

    def clear_trap(self) -> None:
        with self._lock:
            trap, self._trap = self._trap, None
        if trap is not None:
            trap.done.set()

    # --- for the handler ----------------------------------------------------------------------------
    def _pause(self) -> None:
        low, high = self.delay
        if high > 0:
            with self._lock:
                seconds = self._rng.uniform(low, high)
            time.sleep(seconds)

    def _spring(self, point: str, *, pid: int | None, payout_id: str) -> None:
        with self._lock:
            trap = self._trap
            if trap is None or point not in trap.points or trap.sprung.is_set():
                return
            self._trap = None
        trap.pid, trap.payout_id = pid, payout_id
        trap.sprung.set()
        trap.done.wait(2.0)

    def _create(self, params: dict[str, str], key: str) -> dict[str, Any]:
        if self.dedupe and key:
            with self._lock:
                lock = self._key_locks.setdefault(key, threading.Lock())
            with lock:  # a second request with the key waits for the first, then gets its answer
                with self._lock:
                    stored = self._by_key.get(key)
                if stored is not None:
                    if stored[0] != params:
                        message = "Keys for idempotent requests can only be used with the same parameters."
                        raise _StripeError(400, "idempotency_error", message)
                    with self._lock:
                        self.replays += 1
                    return stored[1]
                transfer = self._new_transfer(params)
                with self._lock:
                    self._by_key[key] = (params, transfer)
                return transfer
        return self._new_transfer(params)

    def _new_transfer(self, params: dict[str, str]) -> dict[str, Any]:
        metadata = {k[len("metadata[") : -1]: v for k, v in params.items() if k.startswith("metadata[")}
        transfer = {
            "id": f"tr_{secrets.token_hex(12)}",
            "object": "transfer",
            "amount": int(params["amount"]),
            "amount_reversed": 0,
            "balance_transaction": f"txn_{secrets.token_hex(12)}",
            "created": int(time.time()),
            "currency": params["currency"],
            "description": params.get("description"),
            "destination": params["destination"],
            "destination_payment": f"py_{secrets.token_hex(12)}",
            "livemode": False,
            "metadata": metadata,
            "reversals": {"object": "list", "data": [], "has_more": False, "total_count": 0, "url": ""},
            "reversed": False,
            "source_transaction": None,
            "source_type": "card",
            "transfer_group": params.get("transfer_group"),
        }
        transfer["reversals"]["url"] = f"/v1/transfers/{transfer['id']}/reversals"
        with self._lock:
            self.transfers.append(transfer)
            self._by_id[transfer["id"]] = transfer
        return transfer

    def _list(self, group: str) -> dict[str, Any]:
        with self._lock:
            data = [] if self.hide_from_list else [t for t in reversed(self.transfers) if t["transfer_group"] == group]
            if data:
                self.found_by_lookup += 1
        return {"object": "list", "data": data[:10], "has_more": len(data) > 10, "url": "/v1/transfers"}


class _StripeError(Exception):
    def __init__(self, status: int, kind: str, message: str, code: str = ""):
        super().__init__(message)
        self.status, self.body = status, {"error": {"type": kind, "message": message, "code": code or None}}


def _handler(fake: FakeStripe):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format, *args):  # noqa: A002 - the base class's name
            pass

        def do_POST(self):
            path = urlsplit(self.path).path
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            params = dict(parse_qsl(body, keep_blank_values=True))
            fake.requests.append(("POST", path))
            if path != "/v1/transfers":
                return self._answer(404, {"error": {"type": "invalid_request_error", "message": "not faked"}})
            pid, payout_id = fake.pid_of_port(self.client_address[1]), params.get("metadata[payout_id]", "")
            fake._spring(RECEIVED, pid=pid, payout_id=payout_id)
            fake._pause()
            try:
                transfer = fake._create(params, self.headers.get("Idempotency-Key", ""))
            except _StripeError as exc:
                return self._answer(exc.status, exc.body)
            fake._spring(CREATED, pid=pid, payout_id=payout_id)  # "after the provider call, before recording"
            fake._pause()
            self._answer(200, transfer)
            fake._spring(ANSWERED, pid=pid, payout_id=payout_id)
            return None

        def do_GET(self):
            url = urlsplit(self.path)
            fake.requests.append(("GET", url.path))
            fake._pause()
            if url.path == "/v1/transfers":
                query = dict(parse_qsl(url.query))
                payout_id = query.get("transfer_group", "").removeprefix("payout_")
                fake._spring(LOOKUP, pid=fake.pid_of_port(self.client_address[1]), payout_id=payout_id)
                return self._answer(200, fake._list(query.get("transfer_group", "")))
            if url.path.startswith("/v1/transfers/"):
                with fake._lock:
                    transfer = fake._by_id.get(url.path.rsplit("/", 1)[1])
                if transfer is not None:
                    return self._answer(200, transfer)
                missing = {"type": "invalid_request_error", "code": "resource_missing", "message": "No such transfer"}
                return self._answer(404, {"error": missing})
            return self._answer(404, {"error": {"type": "invalid_request_error", "message": "not faked"}})

        def _answer(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Request-Id", f"req_{secrets.token_hex(8)}")
                self.end_headers()
                self.wfile.write(data)
            except OSError:  # the worker child was killed while we held its answer
                pass

    return Handler
