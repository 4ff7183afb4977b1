"""A stateful fake of the Stripe API behind `responses`: the real SDK talks HTTP to it.

Shapes follow Stripe's docs and ../shared/holdout/stripe_events. It validates every request against the SDK's
spec-generated parameter types, keeps Stripe's idempotency semantics (same key + same params -> the first
response replayed; other params -> 400 idempotency_error) and can inject faults (5xx, timeouts, lost
responses). Buyer and dashboard actions (`pay`, `decline`, `dashboard_refund`, `open_dispute`, ...) change
its state and return the events Stripe would send; `deliver` posts one, signed with Stripe's scheme.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
import responses

from tests.payments.stripe.spec import decode_form, params_type, validate_params

API = "https://api.stripe.com"
API_VERSION = "2026-10-28.endive"
PARAMS = {
    ("POST", r"/v1/checkout/sessions"): "stripe.params.checkout.SessionCreateParams",
    ("POST", r"/v1/checkout/sessions/[^/]+/expire"): "stripe.params.checkout.SessionExpireParams",
    ("POST", r"/v1/refunds"): "stripe.params.RefundCreateParams",
    ("POST", r"/v1/transfers"): "stripe.params.TransferCreateParams",
    ("POST", r"/v1/transfers/[^/]+/reversals"): "stripe.params.TransferCreateReversalParams",
    ("POST", r"/v1/accounts"): "stripe.params.AccountCreateParams",
    ("POST", r"/v1/account_links"): "stripe.params.AccountLinkCreateParams",
    ("GET", r"/v1/events"): "stripe.params.EventListParams",
}


def sign(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """Stripe's scheme: t=<unix>,v1=hex(HMAC-SHA256(secret, "<t>.<body>"))."""
    t = int(time.time()) if timestamp is None else timestamp
    signature = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={signature}"


@dataclass
class Fault:
    path: str
    kind: str  # "500" (answered 500), "timeout" (never reaches Stripe), "lost" (applied, answer lost)
    times: int = 1


@dataclass
class Recorded:
    method: str
    path: str
    params: dict[str, Any]
    idempotency_key: str | None
    status: int


@dataclass
class FakeStripe:
    mock: responses.RequestsMock
    fee_bps: int = 150
    fee_fixed: int = 25
    requests: list[Recorded] = field(default_factory=list)
    spec_errors: list[str] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    idempotency: dict[str, tuple[dict[str, Any], int, dict[str, Any]]] = field(default_factory=dict)
    idempotency_stored_at: dict[str, float] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.mock.add_callback(responses.POST, re.compile(API + r"/v1/.*"), callback=self._handle)
        self.mock.add_callback(responses.GET, re.compile(API + r"/v1/.*"), callback=self._handle)

    # --- plumbing -----------------------------------------------------------------------------------
    def new_id(self, prefix: str) -> str:
        return f"{prefix}_fake{next(self._ids):06d}"

    def posts(self, path_prefix: str = "") -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST" and r.path.startswith(path_prefix)]

    def prune_idempotency_keys(self, older_than: float = 24 * 3600) -> int:
        """Stripe may prune keys after 24 h: a key reused after that creates a new object."""
        cutoff = time.time() - older_than
        old = [key for key, stored in self.idempotency_stored_at.items() if stored < cutoff]
        for key in old:
            del self.idempotency[key], self.idempotency_stored_at[key]
        return len(old)

    def fail(self, path: str, kind: str, times: int = 1) -> None:
        self.faults.append(Fault(path, kind, times))

    def _fault_for(self, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.times > 0 and re.fullmatch(fault.path, path):
                fault.times -= 1
                return fault
        return None

    def _handle(self, request: requests.PreparedRequest):
        url = urlsplit(request.url)
        path = url.path
        method = request.method
        params = decode_form(request.body.decode() if isinstance(request.body, bytes) else (request.body or ""))
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        key = request.headers.get("Idempotency-Key")
        sent = decode_form(url.query) if method == "GET" else params
        for (spec_method, pattern), dotted in PARAMS.items():
            if method == spec_method and re.fullmatch(pattern, path):
                self.spec_errors += [f"{path}: {e}" for e in validate_params(sent, params_type(dotted))]
        fault = self._fault_for(path)
        if fault is not None and fault.kind == "timeout":
            self.requests.append(Recorded(method, path, params, key, 0))
            raise requests.exceptions.ConnectionError("fake: connection reset")
        if method == "POST" and key and key in self.idempotency:
            first_params, status, body = self.idempotency[key]
            if first_params != params:
                status, body = (
                    400,
                    {
                        "error": {
                            "type": "idempotency_error",
                            "message": "Keys for idempotent requests can only be used with the same parameters.",
                        }
                    },
                )
            self.requests.append(Recorded(method, path, params, key, status))
            return status, {"Idempotent-Replayed": "true"}, json.dumps(body)
        if fault is not None and fault.kind == "500":
            self.requests.append(Recorded(method, path, params, key, 500))
            return 500, {}, json.dumps({"error": {"type": "api_error", "message": "fake 500"}})
        status, body = self._route(method, path, params, query)
        if method == "POST" and key:
            self.idempotency[key] = (params, status, body)
            self.idempotency_stored_at[key] = time.time()
        self.requests.append(Recorded(method, path, params, key, status))
        if fault is not None and fault.kind == "lost":
            raise requests.exceptions.ReadTimeout("fake: the answer was lost")
        return status, {"Request-Id": self.new_id("req")}, json.dumps(body)

    def _route(self, method: str, path: str, params: dict[str, Any], query: dict[str, str]) -> tuple[int, dict]:
        routes = [
            ("POST", r"/v1/checkout/sessions", self._create_session),
            ("GET", r"/v1/checkout/sessions/([^/]+)", self._get_session),
            ("POST", r"/v1/checkout/sessions/([^/]+)/expire", self._expire_session),
            ("GET", r"/v1/payment_intents/([^/]+)", self._get_payment_intent),
            ("GET", r"/v1/refunds", self._list_refunds),
            ("POST", r"/v1/refunds", self._create_refund),
            ("GET", r"/v1/transfers", self._list_transfers),
            ("POST", r"/v1/transfers", self._create_transfer),
            ("POST", r"/v1/transfers/([^/]+)/reversals", self._create_reversal),
            ("POST", r"/v1/accounts", self._create_account),
            ("POST", r"/v1/account_links", self._create_account_link),
            ("GET", r"/v1/events", self._list_events),
        ]
        for route_method, pattern, handler in routes:
            match = re.fullmatch(pattern, path)
            if match and route_method == method:
                return handler(*match.groups(), params=params, query=query)
        return 404, _error("invalid_request_error", f"Unrecognized request URL ({method}: {path})")

    def _get(self, object_id: str) -> dict[str, Any] | None:
        return self.objects.get(object_id)

    # --- checkout -----------------------------------------------------------------------------------
    def _create_session(self, *, params, query):
        total = sum(int(item["quantity"]) * int(item["price_data"]["unit_amount"]) for item in params["line_items"])
        session_id = self.new_id("cs_test")
        session = {
            "id": session_id,
            "object": "checkout.session",
            "status": "open",
            "payment_status": "unpaid",
            "mode": "payment",
            "amount_total": total,
            "amount_subtotal": total,
            "currency": params["line_items"][0]["price_data"]["currency"],
            "client_reference_id": params.get("client_reference_id"),
            "metadata": params.get("metadata", {}),
            "customer_email": params.get("customer_email"),
            "payment_intent": None,
            "expires_at": int(params.get("expires_at") or time.time() + 86400),
            "success_url": params.get("success_url"),
            "cancel_url": params.get("cancel_url"),
            "url": f"https://checkout.stripe.com/c/pay/{session_id}",
            "_payment_intent_data": params.get("payment_intent_data", {}),
        }
        self.objects[session_id] = session
        return 200, _public(session)

    def _get_session(self, session_id, *, params, query):
        session = self._get(session_id)
        if session is None:
            return 404, _error("invalid_request_error", f"No such checkout.session: '{session_id}'", "resource_missing")
        view = _public(session)
        if session["payment_intent"]:
            view["payment_intent"] = self._payment_intent_view(session["payment_intent"])
        return 200, view

    def _expire_session(self, session_id, *, params, query):
        session = self._get(session_id)
        if session is None or session["status"] != "open":
            return 400, _error("invalid_request_error", "Only open sessions can be expired.")
        session["status"] = "expired"
        return 200, _public(session)

    def _payment_intent_view(self, pi_id: str) -> dict[str, Any]:
        pi = dict(self.objects[pi_id])
        if pi.get("latest_charge"):
            charge = dict(self.objects[pi["latest_charge"]])
            charge["balance_transaction"] = self.objects[charge["balance_transaction"]]
            pi["latest_charge"] = charge
        return pi

    def _get_payment_intent(self, pi_id, *, params, query):
        if pi_id not in self.objects:
            return 404, _error("invalid_request_error", f"No such payment_intent: '{pi_id}'", "resource_missing")
        return 200, self._payment_intent_view(pi_id)

    # --- refunds ------------------------------------------------------------------------------------
    def _list_refunds(self, *, params, query):
        pi = query.get("payment_intent")
        data = [r for r in self.objects.values() if r.get("object") == "refund" and r["payment_intent"] == pi]
        return 200, {"object": "list", "data": data, "has_more": False, "url": "/v1/refunds"}

    def _create_refund(self, *, params, query):
        pi = self._get(params.get("payment_intent", ""))
        if pi is None or pi["status"] != "succeeded":
            return 400, _error("invalid_request_error", "This PaymentIntent has no successful charge.")
        charge = self.objects[pi["latest_charge"]]
        amount = int(params.get("amount") or charge["amount"] - charge["amount_refunded"])
        if charge.get("disputed") and self._open_dispute(charge["id"]):
            return 400, _error("invalid_request_error", "Charge has been disputed.", "charge_disputed")
        if amount > charge["amount"] - charge["amount_refunded"]:
            return 400, _error(
                "invalid_request_error", "Refund amount is greater than unrefunded amount.", "amount_too_large"
            )
        refund = self._make_refund(pi, amount, metadata=params.get("metadata", {}), reason=params.get("reason"))
        return 200, refund

    def _make_refund(self, pi, amount, *, metadata, reason=None):
        charge = self.objects[pi["latest_charge"]]
        refund = {
            "id": self.new_id("re"),
            "object": "refund",
            "amount": amount,
            "currency": pi["currency"],
            "charge": charge["id"],
            "payment_intent": pi["id"],
            "status": "succeeded",
            "metadata": metadata,
            "reason": reason,
            "created": int(time.time()),
            "balance_transaction": self.new_id("txn"),
        }
        self.objects[refund["id"]] = refund
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount"]
        return refund

    def _open_dispute(self, charge_id: str) -> bool:
        return any(
            o.get("object") == "dispute" and o["charge"] == charge_id and o["status"] not in ("won", "lost")
            for o in self.objects.values()
        )

    # --- connect ------------------------------------------------------------------------------------
    def _create_account(self, *, params, query):
        account = {
            "id": self.new_id("acct"),
            "object": "account",
            "type": params.get("type"),
            "country": params.get("country"),
            "email": params.get("email"),
            "charges_enabled": False,
            "payouts_enabled": False,
            "details_submitted": False,
            "metadata": params.get("metadata", {}),
            "requirements": {
                "currently_due": ["external_account", "tos_acceptance.date"],
                "disabled_reason": "requirements.past_due",
            },
        }
        self.objects[account["id"]] = account
        return 200, account

    def _create_account_link(self, *, params, query):
        return 200, {
            "object": "account_link",
            "created": int(time.time()),
            "expires_at": int(time.time()) + 300,
            "url": f"https://connect.stripe.com/setup/e/{params['account']}/{self.new_id('link')}",
        }

    def _create_transfer(self, *, params, query):
        transfer = {
            "id": self.new_id("tr"),
            "object": "transfer",
            "amount": int(params["amount"]),
            "currency": params["currency"],
            "destination": params["destination"],
            "transfer_group": params.get("transfer_group"),
            "metadata": params.get("metadata", {}),
            "amount_reversed": 0,
            "reversed": False,
            "created": int(time.time()),
            "reversals": {"object": "list", "data": [], "has_more": False},
        }
        self.objects[transfer["id"]] = transfer
        return 200, transfer

    def _list_transfers(self, *, params, query):
        group = query.get("transfer_group")
        data = [t for t in self.objects.values() if t.get("object") == "transfer" and t["transfer_group"] == group]
        return 200, {"object": "list", "data": data, "has_more": False, "url": "/v1/transfers"}

    def _create_reversal(self, transfer_id, *, params, query):
        transfer = self._get(transfer_id)
        amount = int(params.get("amount") or transfer["amount"] - transfer["amount_reversed"])
        if amount > transfer["amount"] - transfer["amount_reversed"]:
            return 400, _error("invalid_request_error", "Reversal exceeds the transfer.")
        reversal = {
            "id": self.new_id("trr"),
            "object": "transfer_reversal",
            "amount": amount,
            "currency": transfer["currency"],
            "transfer": transfer_id,
            "metadata": params.get("metadata", {}),
        }
        transfer["amount_reversed"] += amount
        transfer["reversed"] = transfer["amount_reversed"] == transfer["amount"]
        transfer["reversals"]["data"].append(reversal)
        return 200, reversal

    def _list_events(self, *, params, query):
        """Newest first, `starting_after` pages towards older ones, as Stripe lists them."""
        since = int(query.get("created[gte]", 0))
        found = [e for e in reversed(self.events) if e["created"] >= since]
        if query.get("delivery_success") == "false":
            found = [e for e in found if e["pending_webhooks"] > 0]
        if query.get("starting_after"):
            ids = [e["id"] for e in found]
            found = found[ids.index(query["starting_after"]) + 1 :]
        limit = int(query.get("limit", 10))
        return 200, {"object": "list", "url": "/v1/events", "data": found[:limit], "has_more": len(found) > limit}

    def delivered(self, events: list[dict[str, Any]]) -> None:
        """Stripe got a 2xx for these: they no longer show under delivery_success=false."""
        ids = {e["id"] for e in events}
        for event in self.events:
            if event["id"] in ids:
                event["pending_webhooks"] = 0

    # --- what buyers, Stripe and the dashboard do ---------------------------------------------------
    def pay(self, session_id: str) -> list[dict[str, Any]]:
        """The buyer pays the session. Returns the events Stripe sends."""
        session = self.objects[session_id]
        pi = self._payment_intent_for(session)
        charge_id, txn_id = self.new_id("ch"), self.new_id("txn")
        fee = session["amount_total"] * self.fee_bps // 10000 + self.fee_fixed
        self.objects[txn_id] = {
            "id": txn_id,
            "object": "balance_transaction",
            "amount": session["amount_total"],
            "currency": session["currency"],
            "fee": fee,
            "net": session["amount_total"] - fee,
            "type": "charge",
        }
        self.objects[charge_id] = {
            "id": charge_id,
            "object": "charge",
            "amount": session["amount_total"],
            "amount_captured": session["amount_total"],
            "amount_refunded": 0,
            "refunded": False,
            "currency": session["currency"],
            "payment_intent": pi["id"],
            "balance_transaction": txn_id,
            "status": "succeeded",
            "disputed": False,
            "metadata": pi["metadata"],
            "transfer_group": pi["transfer_group"],
        }
        pi.update(
            status="succeeded",
            amount_received=session["amount_total"],
            latest_charge=charge_id,
            last_payment_error=None,
        )
        session.update(status="complete", payment_status="paid")
        return [
            self.event("checkout.session.completed", _public(session)),
            self.event("payment_intent.succeeded", dict(pi)),
        ]

    def pay_by_bank_debit(self, session_id: str) -> list[dict[str, Any]]:
        """The buyer completes the session with a delayed method (SEPA Direct Debit): the session is complete
        but unpaid and the payment intent is processing until the bank answers (`settle_bank_debit`)."""
        session = self.objects[session_id]
        pi = self._payment_intent_for(session)
        pi.update(status="processing", last_payment_error=None)
        session.update(status="complete", payment_status="unpaid")
        return [
            self.event("checkout.session.completed", _public(session)),
            self.event("payment_intent.processing", dict(pi)),
        ]

    def settle_bank_debit(self, session_id: str, *, paid: bool) -> list[dict[str, Any]]:
        """The bank confirms (or refuses) the debit: the async_payment_* event and the payment intent's."""
        session = self.objects[session_id]
        if paid:
            events = self.pay(session_id)  # the charge, its balance transaction, the session paid
            return [
                self.event("checkout.session.async_payment_succeeded", _public(session)),
                events[1],  # payment_intent.succeeded
            ]
        pi = self._payment_intent_for(session)
        pi.update(
            status="requires_payment_method",
            last_payment_error={
                "type": "invalid_request_error",
                "code": "payment_method_provider_decline",
                "message": "The debit was refused by the bank.",
            },
        )
        return [
            self.event("checkout.session.async_payment_failed", _public(session)),
            self.event("payment_intent.payment_failed", dict(pi)),
        ]

    def _payment_intent_for(self, session: dict[str, Any]) -> dict[str, Any]:
        if session["payment_intent"] is None:
            data = session["_payment_intent_data"]
            pi_id = self.new_id("pi")
            self.objects[pi_id] = {
                "id": pi_id,
                "object": "payment_intent",
                "amount": session["amount_total"],
                "amount_received": 0,
                "currency": session["currency"],
                "status": "requires_payment_method",
                "metadata": data.get("metadata", {}),
                "transfer_group": data.get("transfer_group"),
                "latest_charge": None,
                "last_payment_error": None,
            }
            session["payment_intent"] = pi_id
        return self.objects[session["payment_intent"]]

    def decline(self, session_id: str, decline_code: str = "insufficient_funds") -> list[dict[str, Any]]:
        pi = self._payment_intent_for(self.objects[session_id])
        pi.update(
            status="requires_payment_method",
            last_payment_error={
                "type": "card_error",
                "code": "card_declined",
                "decline_code": decline_code,
                "message": "Your card was declined.",
            },
        )
        return [self.event("payment_intent.payment_failed", dict(pi))]

    def expire(self, session_id: str) -> list[dict[str, Any]]:
        session = self.objects[session_id]
        session["status"] = "expired"
        return [self.event("checkout.session.expired", _public(session))]

    def charge_of(self, pi_id: str) -> dict[str, Any]:
        return self.objects[self.objects[pi_id]["latest_charge"]]

    def refund_events(self, refund: dict[str, Any]) -> list[dict[str, Any]]:
        charge = self.objects[refund["charge"]]
        return [self.event("refund.created", dict(refund)), self.event("charge.refunded", _public(charge))]

    def dashboard_refund(self, pi_id: str, amount: int) -> list[dict[str, Any]]:
        """Someone refunds in the Stripe dashboard: a refund without our metadata."""
        return self.refund_events(self._make_refund(self.objects[pi_id], amount, metadata={}))

    def open_dispute(self, pi_id: str, amount: int | None = None, fee: int = 2000) -> list[dict[str, Any]]:
        charge = self.charge_of(pi_id)
        amount = charge["amount"] if amount is None else amount
        dispute = {
            "id": self.new_id("dp"),
            "object": "dispute",
            "amount": amount,
            "currency": charge["currency"],
            "charge": charge["id"],
            "payment_intent": pi_id,
            "reason": "fraudulent",
            "status": "needs_response",
            "evidence_details": {"due_by": int(time.time()) + 7 * 86400},
            "balance_transactions": [self._dispute_move(-amount, fee, charge["currency"])],
        }
        charge["disputed"] = True
        self.objects[dispute["id"]] = dispute
        return [
            self.event("charge.dispute.created", _copy(dispute)),
            self.event("charge.dispute.funds_withdrawn", _copy(dispute)),
        ]

    def _dispute_move(self, amount: int, fee: int, currency: str) -> dict[str, Any]:
        return {
            "id": self.new_id("txn"),
            "object": "balance_transaction",
            "amount": amount,
            "fee": fee,
            "currency": currency,
            "type": "adjustment",
        }

    def close_dispute(self, dispute_id: str, *, won: bool) -> list[dict[str, Any]]:
        dispute = self.objects[dispute_id]
        events = []
        if won:
            dispute["balance_transactions"].append(self._dispute_move(dispute["amount"], 0, dispute["currency"]))
            dispute["status"] = "won"
            events.append(self.event("charge.dispute.funds_reinstated", _copy(dispute)))
        else:
            dispute["status"] = "lost"
        events.append(self.event("charge.dispute.closed", _copy(dispute)))
        return events

    def account_updated(self, account_id: str, *, enabled: bool = True) -> list[dict[str, Any]]:
        account = self.objects[account_id]
        account.update(
            charges_enabled=enabled,
            payouts_enabled=enabled,
            details_submitted=enabled,
            requirements={"currently_due": [], "disabled_reason": None} if enabled else account["requirements"],
        )
        return [self.event("account.updated", dict(account), account=account_id)]

    def transfer_events(self, transfer_id: str, event_type: str = "transfer.created") -> list[dict[str, Any]]:
        return [self.event(event_type, _copy(self.objects[transfer_id]))]

    def dashboard_reverse_transfer(self, transfer_id: str, amount: int) -> list[dict[str, Any]]:
        """Someone reverses (part of) a transfer in the Stripe dashboard."""
        status, _ = self._create_reversal(transfer_id, params={"amount": str(amount)}, query={})
        assert status == 200
        return self.transfer_events(transfer_id, "transfer.reversed")

    def bank_payout(
        self, account_id: str, amount: int, currency: str, status: str = "paid", *, payout_id: str | None = None
    ) -> list[dict[str, Any]]:
        """A connected account's payout to its bank reaches `status` (payout.paid|failed|canceled, else
        payout.updated); pass the id of an earlier one for another status of the same payout."""
        payout = {
            "id": payout_id or self.new_id("po"),
            "object": "payout",
            "amount": amount,
            "currency": currency,
            "status": status,
            "arrival_date": int(time.time()) + 86400,
            "failure_message": "The bank account was closed." if status == "failed" else None,
        }
        event_type = f"payout.{status}" if status in ("paid", "failed", "canceled") else "payout.updated"
        return [self.event(event_type, payout, account=account_id)]

    # --- reading back ------------------------------------------------------------------------------------
    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects.values() if o.get("object") == kind]

    def refunds_of(self, pi_id: str) -> list[dict[str, Any]]:
        return [r for r in self.of_type("refund") if r["payment_intent"] == pi_id]

    def balance_parts(self, currency: str) -> dict[str, int]:
        """The platform's Stripe balance in `currency`, by what moved it (each part signed)."""
        cur = currency.lower()
        charges = [t for t in self.of_type("balance_transaction") if t["type"] == "charge" and t["currency"] == cur]
        disputes = [d for d in self.of_type("dispute") if d["currency"] == cur]
        moves = [m for d in disputes for m in d["balance_transactions"]]
        transfers = [t for t in self.of_type("transfer") if t["currency"] == cur]
        return {
            "charges": sum(t["amount"] for t in charges),
            "fees": -sum(t["fee"] for t in charges),
            "refunds": -sum(
                r["amount"]
                for r in self.of_type("refund")
                if r["currency"] == cur and r["status"] not in ("failed", "canceled")
            ),
            "dispute_withdrawals": sum(m["amount"] for m in moves if m["amount"] < 0),
            "dispute_fees": -sum(m["fee"] for m in moves),
            "dispute_reinstatements": sum(m["amount"] for m in moves if m["amount"] > 0),
            "transfers": -sum(t["amount"] for t in transfers),
            "transfer_reversals": sum(t["amount_reversed"] for t in transfers),
        }

    def balance(self, currency: str) -> int:
        """charges - fees - refunds - dispute withdrawals - dispute fees + reinstatements - transfers + reversals."""
        return sum(self.balance_parts(currency).values())

    def withheld(self, currency: str) -> int:
        """What Stripe has withdrawn for disputes not lost (yet), and may still give back."""
        return -sum(
            move["amount"]
            for dispute in self.of_type("dispute")
            if dispute["currency"] == currency.lower() and dispute["status"] != "lost"
            for move in dispute["balance_transactions"]
        )

    def event(self, event_type: str, obj: dict[str, Any], *, account: str | None = None) -> dict[str, Any]:
        event = {
            "id": self.new_id("evt"),
            "object": "event",
            "api_version": API_VERSION,
            "created": int(time.time()),
            "type": event_type,
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "data": {"object": obj},
        }
        if account:
            event["account"] = account
        else:
            self.events.append(event)  # the platform's Events API lists it (a connected account's: not here)
        return event


def deliver(client, event: dict[str, Any], *, secret: str, timestamp: int | None = None):
    """POST one event to /webhooks/stripe/ with a valid Stripe-Signature."""
    body = json.dumps(event).encode()
    return client.post(
        "/webhooks/stripe/",
        data=body,
        content_type="application/json",
        headers={"Stripe-Signature": sign(body, secret, timestamp)},
    )


def _public(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if not k.startswith("_")}


def _copy(obj: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(obj))


def _error(kind: str, message: str, code: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"type": kind, "message": message}
    if code:
        error["code"] = code
    return {"error": error}
