"""A stateful fake of GoPay's REST API behind `responses`: the official `gopay` SDK talks HTTP to it.

Shapes follow ../shared/holdout/gopay_samples (NOTES.md and its json files; the bits reused here are copied
inline so the tests do not depend on that folder). It checks OAuth2 (HTTP Basic for the token, bearer tokens of
scope payment-create / payment-all, 30 min expiry, revocation), validates payment creation like GoPay (409 with
field errors; unknown top-level keys land in `spec_errors`) and can inject faults (`fail`). Buyer and GoPay-side
actions (`pay`, `cancel`, `timeout`, `portal_refund`, `expire_authorization`, ...) change its state; `notify`
sends GoPay's notification (a bare GET with `?id=`) to our webhook.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import secrets
import string
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

import requests
import responses

HOST = "https://gw.sandbox.gopay.com"
API = HOST + "/api"
TOKEN_TTL = 1800
SCOPES = ("payment-create", "payment-all")
CURRENCIES = ("CZK", "EUR", "PLN", "HUF", "GBP", "USD", "RON", "BGN")
CREATE_KEYS = {
    "payer", "target", "amount", "currency", "order_number", "order_description", "items", "callback",
    "additional_params", "lang", "preauthorization", "recurrence",
}  # fmt: skip
RECURRENCE_KEYS = {"amount", "currency", "order_number", "order_description", "items", "additional_params"}
CAPTURE_KEYS = {"amount", "items"}
CYCLES = ("DAY", "WEEK", "MONTH", "ON_DEMAND")
FAULT_KINDS = ("500", "status0", "lost", "401")
PRAGUE = ZoneInfo("Europe/Prague")
# payer details GoPay shows once the buyer paid (payment_status_PAID.json, payment_status_PAID_bank_account.json)
PAYMENT_CARD = {
    "card_number": "444444******4448",
    "card_expiration": "2706",
    "card_brand": "Visa Gold",
    "card_issuer_country": "POL",
    "card_issuer_bank": "CREDIT AGRICOLE BANK POLSKA, S.A.",
}
BANK_ACCOUNT = {
    "prefix": "",
    "account_number": "2600012345",
    "bank_code": "2010",
    "iban": "CZ6520100000002600012345",
    "bic": "FIOBCZPP",
    "account_name": "NOVÁK JAN",
}


def stamp(at: float | None = None) -> str:
    """GoPay's timestamp form, e.g. 2026-08-21T14:02:11.000+0200 (Prague time)."""
    moment = datetime.fromtimestamp(time.time() if at is None else at, PRAGUE)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}" + moment.strftime("%z")


def error_body(*errors: dict[str, Any]) -> dict[str, Any]:
    return {"date_issued": stamp(), "errors": list(errors)}


def err(scope: str, code: int, name: str, message: str, field: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"scope": scope}
    if field is not None:
        error["field"] = field
    error.update(error_code=code, error_name=name, message=message)
    return error


def missing(name: str) -> dict[str, Any]:
    return err("F", 110, "MANDATORY", "Mandatory field is missing.", name)


def invalid(name: str, message: str = "Wrong format.") -> dict[str, Any]:
    return err("F", 111, "WRONG_FORMAT", message, name)


WRONG_TOKEN = ("G", 202, "AUTH_WRONG_TOKEN", "Wrong token.")
RECURRENCE_STOPPED = ("G", 342, "PAYMENT_RECURRENCE_STOPPED", "Recurring payment stopped")  # error_recurrence_stopped
REFUND_NOT_SUPPORTED = ("G", 330, "PAYMENT_REFUND_NOT_SUPPORTED", "Payment cannot be refunded")  # error_refund_...


@dataclass
class Fault:
    path: str
    kind: str  # "500" answered 500 | "status0" never reaches GoPay | "lost" applied, answer lost | "401" revoked
    times: int = 1
    method: str | None = None


@dataclass
class Recorded:
    method: str
    path: str  # after /api, e.g. /payments/payment/3299531053/refund
    body: Any  # decoded JSON or form (dict of str), None without a body
    scope: str | None  # the scope of the bearer token sent (None: none, or a token GoPay never issued)
    status: int  # 0: the answer never arrived ("status0"); a "lost" call keeps the status GoPay answered

    @property
    def params(self) -> Any:
        return self.body


@dataclass
class Token:
    value: str
    scope: str
    issued_at: float
    revoked: bool = False

    @property
    def valid(self) -> bool:
        return not self.revoked and time.time() - self.issued_at <= TOKEN_TTL


@dataclass
class FakeGoPay:
    mock: responses.RequestsMock
    goid: int = 8123456789
    client_id: str = "1061399163"
    client_secret: str = "stDTmVXF"
    refund_result: str = "FINISHED"  # FINISHED | ACCEPTED (entry REQUESTED until finish_refunds) | FAILED
    recurrence_charge_outcome: str = "PAID"  # PAID | CANCELED (on settle_recurrence) | PAID_AT_ONCE
    objects: dict[int, dict[str, Any]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    spec_errors: list[str] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    tokens: dict[str, Token] = field(default_factory=dict)
    token_requests: Counter = field(default_factory=Counter)
    _payment_ids: Any = field(default_factory=lambda: itertools.count(3299531053))
    _refund_ids: Any = field(default_factory=lambda: itertools.count(3299540001))

    def __post_init__(self) -> None:
        for method in (responses.GET, responses.POST):
            self.mock.add_callback(method, re.compile(re.escape(API) + r"/.*"), callback=self._handle)

    # --- plumbing -----------------------------------------------------------------------------------------
    def fail(self, path: str, kind: str, times: int = 1, method: str | None = None) -> None:
        """The next `times` calls whose path (after /api) fully matches `path` fail as `kind`."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}, expected one of {FAULT_KINDS}")
        self.faults.append(Fault(path, kind, times, method))

    def _fault_for(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.times > 0 and re.fullmatch(fault.path, path) and fault.method in (None, method):
                fault.times -= 1
                return fault
        return None

    def _handle(self, request: requests.PreparedRequest):
        path = urlsplit(request.url).path.removeprefix("/api")
        method = request.method.upper()
        body = _decode(request)
        auth = request.headers.get("Authorization", "")
        token = self.tokens.get(auth.removeprefix("Bearer ")) if auth.startswith("Bearer ") else None
        scope = token.scope if token else None
        fault = self._fault_for(method, path)
        if fault is not None and fault.kind == "status0":
            self.requests.append(Recorded(method, path, body, scope, 0))
            raise requests.exceptions.ConnectionError("fake: connection refused")
        if fault is not None and fault.kind == "500":
            status, answer = 500, error_body(err("G", 100, "SYSTEM_ERROR", "System error."))
        elif fault is not None and fault.kind == "401":
            if token is not None:
                token.revoked = True
            status, answer = 401, error_body(err(*WRONG_TOKEN))
        elif method == "POST" and path == "/oauth2/token":
            status, answer = self._issue_token(auth, body or {})
        else:
            status, answer = self._authorize(token, method, path) or self._route(method, path, body)
        self.requests.append(Recorded(method, path, body, scope, status))
        if fault is not None and fault.kind == "lost":
            raise requests.exceptions.ReadTimeout("fake: the answer was lost")
        return status, {"Content-Type": "application/json"}, json.dumps(answer)

    def _issue_token(self, auth: str, form: dict[str, Any]) -> tuple[int, dict]:
        basic = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if auth != f"Basic {basic}":
            return 401, error_body(err("G", 202, "AUTH_WRONG_CREDENTIALS", "Wrong client credentials."))
        if form.get("grant_type") != "client_credentials":
            return 409, error_body(invalid("grant_type"))
        if form.get("scope") not in SCOPES:
            return 409, error_body(invalid("scope"))
        value = "AAA" + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(58))
        self.tokens[value] = Token(value, form["scope"], time.time())
        self.token_requests[form["scope"]] += 1
        return 200, {"token_type": "bearer", "access_token": value, "expires_in": TOKEN_TTL}

    def _authorize(self, token: Token | None, method: str, path: str) -> tuple[int, dict] | None:
        if token is None or not token.valid:
            return 401, error_body(err(*WRONG_TOKEN))
        if token.scope == "payment-create" and (method, path) != ("POST", "/payments/payment"):
            return 403, error_body(err("G", 201, "AUTH_WRONG_SCOPE", "The token's scope does not allow this call."))
        return None

    def _route(self, method: str, path: str, body: Any) -> tuple[int, dict | list]:
        if (method, path) == ("POST", "/payments/payment"):
            return self._create(body if isinstance(body, dict) else {})
        routes = [
            ("GET", "", self._status),
            ("POST", "/refund", self._refund),
            ("GET", "/refunds", self._refund_history),
            ("POST", "/capture", self._capture),
            ("POST", "/void-authorization", self._void_authorization),
            ("POST", "/create-recurrence", self._create_recurrence),
            ("POST", "/void-recurrence", self._void_recurrence),
        ]
        for route_method, suffix, handler in routes:
            match = re.fullmatch(r"/payments/payment/(\d+)" + suffix, path)
            if match and method == route_method:
                payment = self.objects.get(int(match.group(1)))
                if payment is None:
                    return 404, error_body(err("G", 304, "PAYMENT_NOT_FOUND", "Payment not found."))
                return handler(payment, body)
        return 404, error_body(err("G", 116, "INVALID_REQUEST", f"No such call: {method} {path}"))

    # --- creating -----------------------------------------------------------------------------------------
    def _create(self, body: dict[str, Any]) -> tuple[int, dict]:
        self.spec_errors += [f"/payments/payment: unknown key {k!r}" for k in sorted(set(body) - CREATE_KEYS)]
        errors = _amount_errors(body) + _items_errors(body)
        if not body.get("order_number"):
            errors.append(missing("order_number"))
        callback = body.get("callback") if isinstance(body.get("callback"), dict) else {}
        errors += [missing(f"callback.{k}") for k in ("return_url", "notification_url") if not callback.get(k)]
        payer = body.get("payer") if isinstance(body.get("payer"), dict) else {}
        if not (payer.get("contact") or {}).get("email"):
            errors.append(missing("payer.contact.email"))
        target = body.get("target") or {}
        if target.get("type") != "ACCOUNT" or str(target.get("goid")) != str(self.goid):
            errors.append(invalid("target.goid", "Unknown goid."))
        if "preauthorization" in body and not isinstance(body["preauthorization"], bool):
            errors.append(invalid("preauthorization"))
        recurrence = body.get("recurrence")
        if recurrence is not None:
            errors += _recurrence_errors(recurrence)
        if errors:
            return 409, error_body(*errors)
        payment = self._new_payment(
            body,
            payer=_copy(payer),
            target=_copy(target),
            lang=body.get("lang", "CS"),
            gw_url=f"{HOST}/gw/v3/{secrets.token_hex(16)}",
        )
        if body.get("preauthorization"):
            payment["preauthorization"] = {"requested": True, "state": "REQUESTED"}
        if recurrence is not None:
            payment["recurrence"] = {**_copy(recurrence), "recurrence_state": "REQUESTED"}
        payment["_callback"] = _copy(callback)
        return 200, self._view(payment, created=True)

    def _new_payment(self, body: dict[str, Any], **fields: Any) -> dict[str, Any]:
        payment = {
            "id": next(self._payment_ids),
            "order_number": body["order_number"],
            "state": "CREATED",
            "amount": body["amount"],
            "currency": body["currency"],
            **fields,
            "_order_description": body.get("order_description"),
            "_items": _copy(body.get("items")),
            "_instrument": None,
            "_refunds": [],
            "_refund_not_supported": False,
        }
        if "additional_params" in body:
            payment["additional_params"] = _copy(body["additional_params"])
        self.objects[payment["id"]] = payment
        return payment

    def _view(self, payment: dict[str, Any], *, created: bool = False) -> dict[str, Any]:
        """The create answer (payer echoed as sent) or the status document (payer: instrument details + contact)."""
        doc: dict[str, Any] = {"id": payment["id"]}
        if "parent_id" in payment:
            doc["parent_id"] = payment["parent_id"]
        doc.update(order_number=payment["order_number"], state=payment["state"])
        instrument = payment["_instrument"]
        if instrument and not created:
            doc["payment_instrument"] = instrument
        doc.update(amount=payment["amount"], currency=payment["currency"])
        if created:
            doc["payer"] = payment["payer"]
        else:
            doc["payer"] = {}
            if instrument == "PAYMENT_CARD":
                doc["payer"]["payment_card"] = PAYMENT_CARD
            elif instrument == "BANK_ACCOUNT":
                doc["payer"]["bank_account"] = BANK_ACCOUNT
            doc["payer"]["contact"] = payment["payer"].get("contact", {})
        for key in ("target", "recurrence", "preauthorization", "additional_params", "lang", "gw_url"):
            if key in payment:
                doc[key] = payment[key]
        return _copy(doc)

    # --- status and refunds ---------------------------------------------------------------------------------
    def _status(self, payment: dict[str, Any], body: Any) -> tuple[int, dict]:
        return 200, self._view(payment)

    def _refund_history(self, payment: dict[str, Any], body: Any) -> tuple[int, list]:
        return 200, _copy(payment["_refunds"])

    def _refund(self, payment: dict[str, Any], body: Any) -> tuple[int, dict]:
        amount = _int((body or {}).get("amount")) if isinstance(body, dict) else None
        return self._apply_refund(payment, amount, self.refund_result)

    def _apply_refund(self, payment: dict[str, Any], amount: int | None, result: str) -> tuple[int, dict]:
        if payment["state"] not in ("PAID", "PARTIALLY_REFUNDED"):
            return 409, error_body(err("G", 303, "PAYMENT_WRONG_STATE", "Payment in an incorrect state."))
        if payment["_refund_not_supported"]:
            return 409, error_body(err(*REFUND_NOT_SUPPORTED))
        if amount is None or amount <= 0:
            return 409, error_body(invalid("amount"))
        if amount > payment["amount"] - self.refunded(payment["id"]):
            return 409, error_body(
                err("F", 332, "PAYMENT_REFUND_AMOUNT_EXCEEDED", "Refund amount exceeds the remaining amount.", "amount")
            )
        if result == "FAILED":
            return 200, {"id": payment["id"], "result": "FAILED"}
        now = stamp()
        payment["_refunds"].append(
            {
                "id": next(self._refund_ids),
                "amount": amount,
                "currency": payment["currency"],
                "state": "SUCCESS" if result == "FINISHED" else "REQUESTED",
                "date_requested": now,
                "date_last_change": now,
            }
        )
        self._settle_refund_state(payment)
        return 200, {"id": payment["id"], "result": result}

    def _settle_refund_state(self, payment: dict[str, Any]) -> None:
        done = sum(r["amount"] for r in payment["_refunds"] if r["state"] == "SUCCESS")
        if payment["state"] in ("PAID", "PARTIALLY_REFUNDED", "REFUNDED"):
            payment["state"] = "REFUNDED" if done >= payment["amount"] else "PARTIALLY_REFUNDED" if done > 0 else "PAID"

    # --- pre-authorisation ----------------------------------------------------------------------------------
    def _authorized_only(self, payment: dict[str, Any]) -> tuple[int, dict] | None:
        if payment["state"] == "AUTHORIZED":
            return None
        preauth_state = (payment.get("preauthorization") or {}).get("state")
        if preauth_state == "CAPTURED":
            return 409, error_body(err("G", 303, "PAYMENT_CAPTURE_DONE", "The payment has already been captured."))
        if preauth_state == "CANCELED":
            return 409, error_body(err("G", 303, "PAYMENT_AUTH_VOID", "The authorization has been voided."))
        return 409, error_body(err("G", 303, "PAYMENT_WRONG_STATE", "Payment in an incorrect state."))

    def _capture(self, payment: dict[str, Any], body: Any) -> tuple[int, dict]:
        refused = self._authorized_only(payment)
        if refused:
            return refused
        amount = payment["amount"]
        if body:  # partial capture: {"amount", "items"}
            body = body if isinstance(body, dict) else {}
            self.spec_errors += [f"capture: unknown key {k!r}" for k in sorted(set(body) - CAPTURE_KEYS)]
            errors = _amount_errors(body, currency=False) + _items_errors(body)
            if not errors and body["amount"] > payment["amount"]:
                errors.append(invalid("amount", "Capture amount exceeds the authorized amount."))
            if errors:
                return 409, error_body(*errors)
            amount = body["amount"]
        payment["_authorized_amount"] = payment["amount"]
        payment.update(amount=amount, state="PAID")
        payment["preauthorization"]["state"] = "CAPTURED"
        return 200, {"id": payment["id"], "result": "FINISHED"}

    def _void_authorization(self, payment: dict[str, Any], body: Any) -> tuple[int, dict]:
        refused = self._authorized_only(payment)
        if refused:
            return refused
        payment["state"] = "CANCELED"
        payment["preauthorization"]["state"] = "CANCELED"
        return 200, {"id": payment["id"], "result": "FINISHED"}

    # --- recurrence -----------------------------------------------------------------------------------------
    def _create_recurrence(self, parent: dict[str, Any], body: Any) -> tuple[int, dict]:
        body = body if isinstance(body, dict) else {}
        self.spec_errors += [f"create-recurrence: unknown key {k!r}" for k in sorted(set(body) - RECURRENCE_KEYS)]
        recurrence = parent.get("recurrence")
        if recurrence is None or recurrence.get("recurrence_cycle") != "ON_DEMAND":
            return 409, error_body(err("G", 341, "PAYMENT_RECURRENCE_NOT_SUPPORTED", "Not an on-demand recurrence."))
        if recurrence["recurrence_state"] == "STOPPED":
            return 409, error_body(err(*RECURRENCE_STOPPED))
        if recurrence["recurrence_state"] != "STARTED":
            return 409, error_body(err("G", 303, "PAYMENT_WRONG_STATE", "The recurrence has not started yet."))
        errors = _amount_errors(body) + (_items_errors(body) if "items" in body else [])
        if not body.get("order_number"):
            errors.append(missing("order_number"))
        if not errors and body["currency"] != parent["currency"]:
            errors.append(invalid("currency", "The currency differs from the parent payment's."))
        if errors:
            return 409, error_body(*errors)
        inherited = {"additional_params": parent["additional_params"]} if "additional_params" in parent else {}
        child = self._new_payment(
            {**inherited, **body},
            parent_id=parent["id"],
            payer={"contact": _copy(parent["payer"].get("contact", {}))},
            target=_copy(parent["target"]),
            lang=parent.get("lang", "CS"),
        )
        answer = self._view(child)
        if self.recurrence_charge_outcome == "PAID_AT_ONCE":
            self.settle_recurrence(child["id"])
        return 200, answer

    def _void_recurrence(self, payment: dict[str, Any], body: Any) -> tuple[int, dict]:
        recurrence = payment.get("recurrence")
        if recurrence is None:
            return 409, error_body(err("G", 341, "PAYMENT_RECURRENCE_NOT_SUPPORTED", "Not a recurring payment."))
        if recurrence["recurrence_state"] == "STOPPED":
            return 409, error_body(err(*RECURRENCE_STOPPED))
        recurrence["recurrence_state"] = "STOPPED"
        return 200, {"id": payment["id"], "result": "FINISHED"}

    # --- what buyers, GoPay and the merchant portal do -----------------------------------------------------
    def _in(self, payment_id: int, *states: str) -> dict[str, Any]:
        payment = self.objects[int(payment_id)]
        if payment["state"] not in states:
            raise ValueError(f"payment {payment_id} is {payment['state']}, expected one of {states}")
        return payment

    def pay(self, payment_id: int, instrument: str = "PAYMENT_CARD") -> dict[str, Any]:
        """The buyer pays: PAID, or AUTHORIZED when pre-authorisation was requested; a recurrence STARTS."""
        payment = self._in(payment_id, "CREATED", "PAYMENT_METHOD_CHOSEN")
        payment["_instrument"] = instrument
        if payment.get("preauthorization"):
            payment["state"] = "AUTHORIZED"
            payment["preauthorization"]["state"] = "AUTHORIZED"
        else:
            payment["state"] = "PAID"
        if payment.get("recurrence"):
            payment["recurrence"]["recurrence_state"] = "STARTED"
        return self.payment(payment_id)

    def choose_method(self, payment_id: int) -> dict[str, Any]:
        self._in(payment_id, "CREATED")["state"] = "PAYMENT_METHOD_CHOSEN"
        return self.payment(payment_id)

    def cancel(self, payment_id: int) -> dict[str, Any]:
        self._in(payment_id, "CREATED", "PAYMENT_METHOD_CHOSEN")["state"] = "CANCELED"
        return self.payment(payment_id)

    def timeout(self, payment_id: int) -> dict[str, Any]:
        self._in(payment_id, "CREATED", "PAYMENT_METHOD_CHOSEN")["state"] = "TIMEOUTED"
        return self.payment(payment_id)

    def portal_refund(self, payment_id: int, amount: int) -> dict[str, Any]:
        """A refund made in GoPay's merchant portal (FINISHED at once); returns its history entry."""
        payment = self.objects[int(payment_id)]
        status, answer = self._apply_refund(payment, amount, "FINISHED")
        if status != 200:
            raise ValueError(f"GoPay would refuse this refund: {answer}")
        return _copy(payment["_refunds"][-1])

    def finish_refunds(self, payment_id: int, ok: bool = True) -> dict[str, Any]:
        """REQUESTED refunds (refund_result="ACCEPTED") become SUCCESS (ok) or FAILED."""
        payment = self.objects[int(payment_id)]
        for refund in payment["_refunds"]:
            if refund["state"] == "REQUESTED":
                refund.update(state="SUCCESS" if ok else "FAILED", date_last_change=stamp())
        self._settle_refund_state(payment)
        return self.payment(payment_id)

    def expire_authorization(self, payment_id: int) -> dict[str, Any]:
        """The hold lapsed (GoPay keeps an authorisation 4 days)."""
        payment = self._in(payment_id, "AUTHORIZED")
        payment["state"] = "CANCELED"
        payment["preauthorization"]["state"] = "CANCELED"
        return self.payment(payment_id)

    def stop_recurrence(self, payment_id: int) -> dict[str, Any]:
        """The buyer (or GoPay) cancelled the recurrence."""
        self.objects[int(payment_id)]["recurrence"]["recurrence_state"] = "STOPPED"
        return self.payment(payment_id)

    def settle_recurrence(self, child_id: int, outcome: str | None = None) -> dict[str, Any]:
        """A CREATED recurrence charge is PAID (with the parent's card) or CANCELED (`recurrence_charge_outcome`)."""
        child = self._in(child_id, "CREATED")
        outcome = outcome or self.recurrence_charge_outcome
        if outcome in ("PAID", "PAID_AT_ONCE"):
            child.update(state="PAID", _instrument=self.objects[child["parent_id"]]["_instrument"] or "PAYMENT_CARD")
        else:
            child["state"] = "CANCELED"
        return self.payment(child_id)

    def mark_refund_not_supported(self, payment_id: int) -> None:
        self.objects[int(payment_id)]["_refund_not_supported"] = True

    def revoke_tokens(self) -> None:
        for token in self.tokens.values():
            token.revoked = True

    # --- reading back ---------------------------------------------------------------------------------------
    def payment(self, payment_id: int) -> dict[str, Any]:
        """What GET /payments/payment/{id} would answer now."""
        return self._view(self.objects[int(payment_id)])

    def refund_history(self, payment_id: int) -> list[dict[str, Any]]:
        return _copy(self.objects[int(payment_id)]["_refunds"])

    def refunded(self, payment_id: int) -> int:
        """Refunded or being refunded: the sum of the history's amounts not FAILED."""
        return sum(r["amount"] for r in self.objects[int(payment_id)]["_refunds"] if r["state"] != "FAILED")

    def calls(self, method: str | None = None, path: str = r".*") -> list[Recorded]:
        return [r for r in self.requests if method in (None, r.method) and re.fullmatch(path, r.path)]

    def posts(self, path: str = r".*") -> list[Recorded]:
        return self.calls("POST", path)

    def scopes(self, path: str = r"/payments/.*") -> list[str | None]:
        return [r.scope for r in self.calls(None, path)]


def notify(client, payment_id: int, **extra_query: Any):
    """GoPay's notification: an HTTP GET with only ?id= (no body, no signature)."""
    return client.get("/webhooks/gopay/", {"id": payment_id, **extra_query})


def _decode(request: requests.PreparedRequest) -> Any:
    raw = request.body
    if not raw:
        return None
    text = raw.decode() if isinstance(raw, bytes) else raw
    if "json" in request.headers.get("Content-Type", ""):
        return json.loads(text)
    return dict(parse_qsl(text, keep_blank_values=True))


def _int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _is_amount(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _amount_errors(body: dict[str, Any], *, currency: bool = True) -> list[dict[str, Any]]:
    errors = []
    if "amount" not in body:
        errors.append(missing("amount"))
    elif not _is_amount(body["amount"]):
        errors.append(invalid("amount"))
    if currency and "currency" not in body:
        errors.append(missing("currency"))
    elif currency and body["currency"] not in CURRENCIES:
        errors.append(invalid("currency"))
    return errors


def _items_errors(body: dict[str, Any]) -> list[dict[str, Any]]:
    """items[].amount is the line total (all `count` pieces) and the lines add up to `amount`."""
    items = body.get("items")
    if not items or not isinstance(items, list):
        return [missing("items")]
    errors = []
    for i, item in enumerate(items):
        if not item.get("name"):
            errors.append(missing(f"items[{i}].name"))
        if not isinstance(item.get("amount"), int) or isinstance(item.get("amount"), bool):
            errors.append(invalid(f"items[{i}].amount"))
    if not errors and _is_amount(body.get("amount")) and sum(i["amount"] for i in items) != body["amount"]:
        errors.append(invalid("items", "The items' amounts do not add up to the payment amount."))
    return errors


def _recurrence_errors(recurrence: Any) -> list[dict[str, Any]]:
    if not isinstance(recurrence, dict):
        return [invalid("recurrence")]
    errors = []
    if recurrence.get("recurrence_cycle") not in CYCLES:
        errors.append(invalid("recurrence.recurrence_cycle"))
    elif recurrence["recurrence_cycle"] != "ON_DEMAND" and not _is_amount(recurrence.get("recurrence_period")):
        errors.append(missing("recurrence.recurrence_period"))
    if not recurrence.get("recurrence_date_to"):
        errors.append(missing("recurrence.recurrence_date_to"))
    return errors


def _copy(obj: Any) -> Any:
    return json.loads(json.dumps(obj))
