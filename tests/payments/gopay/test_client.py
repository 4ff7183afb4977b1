"""The GoPay client (payments/providers/gopay/client.py) through the official SDK against the fake: OAuth scopes,
the token cache (Django's), its 30-minute life, one refresh after a 401 and never a loop, GoPay or its token
endpoint down, status 0 / 5xx (unavailable on a read, outcome unknown on a write), error bodies, and RELIABILITY
row 11: 1000 notifications with ~20 % injected faults and no lost update."""

import random
import re
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.cache import cache

from ledger.models import LedgerTransaction
from payments.models import OrderStatus, PaymentStatus, WebhookEvent
from payments.providers.base import (
    ProviderConfigurationError,
    ProviderOutcomeUnknown,
    ProviderRequestRejected,
    ProviderUnavailable,
)
from payments.providers.gopay import client as gopay
from payments.providers.gopay.adapter import STATES
from payments.providers.registry import get_provider
from refunds.models import Refund, RefundReason, RefundStatus
from tests.payments.gopay.helpers import (
    assert_conserved,
    gopay_id,
    gopay_order,
    notify_and_process,
    start_gopay_payment,
)

pytestmark = pytest.mark.django_db
TOKEN = r"/oauth2/token"
STATUS = r"/payments/payment/\d+"
REFUND = r"/payments/payment/\d+/refund"
CREATE = r"/payments/payment"
START = datetime(2026, 8, 21, 10, 0, tzinfo=UTC)


@pytest.fixture
def payment(payee, fake_gopay):
    """A GoPay payment of ours, paid at GoPay; the fake's log starts empty (both tokens cached)."""
    order = gopay_order(payee)
    payment = start_gopay_payment(order)
    fake_gopay.pay(gopay_id(payment))
    gopay.get_status(gopay_id(payment))
    assert fake_gopay.token_requests == {"payment-create": 1, "payment-all": 1}
    fake_gopay.requests.clear()
    return payment


def token_posts(fake):
    return fake.calls("POST", TOKEN)


def body(payment, **extra):
    return (
        get_provider("gopay").payment_body(
            payment=payment, return_url="https://tollgate.example/r", notification_url="https://tollgate.example/n"
        )
        | extra
    )


# --- scopes and the token cache ----------------------------------------------------------------------------


def test_create_uses_payment_create_and_everything_else_payment_all(payee, fake_gopay):
    payment = start_gopay_payment(gopay_order(payee))
    payment_id = gopay_id(payment)
    fake_gopay.pay(payment_id)
    gopay.get_status(payment_id)
    gopay.refund(payment_id, 10000)
    gopay.refund_history(payment_id)

    assert fake_gopay.scopes(CREATE) == ["payment-create"]
    assert set(fake_gopay.scopes(r"/payments/payment/.+")) == {"payment-all"}
    assert [r.body["scope"] for r in token_posts(fake_gopay)] == ["payment-create", "payment-all"]
    assert all(r.body["grant_type"] == "client_credentials" for r in token_posts(fake_gopay))
    assert fake_gopay.token_requests == {"payment-create": 1, "payment-all": 1}


def test_tokens_are_cached_in_djangos_cache_per_scope(payment, fake_gopay):
    for _ in range(20):
        assert gopay.get_status(gopay_id(payment))["state"] == "PAID"
    assert fake_gopay.token_requests == {"payment-create": 1, "payment-all": 1}

    gopay.reset()  # a new process: no SDK object, but the shared cache still has the token
    for _ in range(5):
        gopay.get_status(gopay_id(payment))
    start_gopay_payment(gopay_order(payment.order.lines.first().payee))
    assert fake_gopay.token_requests == {"payment-create": 1, "payment-all": 1}
    assert token_posts(fake_gopay) == []

    cache.clear()  # the shared cache lost it: one new token, then cached again
    for _ in range(5):
        gopay.get_status(gopay_id(payment))
    assert fake_gopay.token_requests == {"payment-create": 1, "payment-all": 2}


def test_a_token_is_refreshed_after_30_minutes(payee, fake_gopay):
    with time_machine.travel(START, tick=False) as traveller:
        payment = start_gopay_payment(gopay_order(payee))
        fake_gopay.pay(gopay_id(payment))
        gopay.get_status(gopay_id(payment))
        assert fake_gopay.token_requests["payment-all"] == 1

        traveller.shift(timedelta(minutes=28))
        gopay.get_status(gopay_id(payment))
        assert fake_gopay.token_requests["payment-all"] == 1

        traveller.shift(timedelta(minutes=3))  # 31 minutes: GoPay would refuse the old token
        fake_gopay.requests.clear()
        assert gopay.get_status(gopay_id(payment))["state"] == "PAID"
        assert fake_gopay.token_requests["payment-all"] == 2
        assert [(r.path, r.status) for r in fake_gopay.requests] == [
            ("/oauth2/token", 200),
            (f"/payments/payment/{gopay_id(payment)}", 200),
        ]  # never a 401 first

        traveller.shift(timedelta(hours=5))
        gopay.refund_history(gopay_id(payment))
        start_gopay_payment(gopay_order(payee))
        assert fake_gopay.token_requests == {"payment-create": 2, "payment-all": 3}
    assert {r.status for r in fake_gopay.requests} == {200}


# --- 401: one refresh, never a loop ------------------------------------------------------------------------


def test_a_revoked_token_is_refreshed_once_and_the_call_succeeds(payment, fake_gopay):
    fake_gopay.fail(STATUS, "401")
    assert gopay.get_status(gopay_id(payment))["state"] == "PAID"
    assert [(r.method, r.path.split("/")[-1], r.status) for r in fake_gopay.requests] == [
        ("GET", str(gopay_id(payment)), 401),
        ("POST", "token", 200),
        ("GET", str(gopay_id(payment)), 200),
    ]

    fake_gopay.requests.clear()
    fake_gopay.revoke_tokens()  # every token GoPay issued so far
    assert gopay.refund_history(gopay_id(payment)) == []
    assert [r.status for r in fake_gopay.requests] == [401, 200, 200]
    assert len(token_posts(fake_gopay)) == 1


def test_a_revoked_token_on_a_refund_is_refreshed_and_the_refund_made_once(payment, fake_gopay):
    fake_gopay.fail(REFUND, "401")
    assert gopay.refund(gopay_id(payment), 50000)["result"] == "FINISHED"
    assert [r.status for r in fake_gopay.posts(REFUND)] == [401, 200]
    assert fake_gopay.refunded(gopay_id(payment)) == 50000
    assert len(token_posts(fake_gopay)) == 1


@pytest.mark.parametrize("call", ["get_status", "refund", "refund_history"])
def test_a_401_that_persists_is_a_configuration_error_never_a_loop(payment, fake_gopay, call):
    fake_gopay.fail(r"/payments/payment/.*", "401", times=50)
    args = (gopay_id(payment), 50000) if call == "refund" else (gopay_id(payment),)
    with pytest.raises(ProviderConfigurationError) as raised:
        getattr(gopay, call)(*args)

    assert raised.value.code == "gopay_auth"
    assert [r.status for r in fake_gopay.calls(None, r"/payments/.*")] == [401, 401]
    assert len(token_posts(fake_gopay)) == 1
    assert fake_gopay.refunded(gopay_id(payment)) == 0
    # The token GoPay refused is not kept: the next call asks for a new one (and works once GoPay does).
    fake_gopay.faults.clear()
    fake_gopay.requests.clear()
    assert gopay.get_status(gopay_id(payment))["state"] == "PAID"
    assert [r.status for r in fake_gopay.requests] == [200, 200]
    assert len(token_posts(fake_gopay)) == 1


def test_a_payment_create_token_is_never_used_for_anything_else(payment, fake_gopay, monkeypatch):
    """Were the client to mix its scopes up, GoPay's 403 is a configuration error, not retried."""
    monkeypatch.setattr(gopay, "ALL", gopay.CREATE)
    with pytest.raises(ProviderConfigurationError):
        gopay.get_status(gopay_id(payment))
    assert [r.status for r in fake_gopay.calls("GET", STATUS)] == [403]


def test_wrong_credentials_send_no_payment_call(payment, fake_gopay, settings):
    settings.GOPAY_CLIENT_SECRET = "wrong"
    cache.clear()  # no token left from before
    with pytest.raises(ProviderUnavailable) as raised:
        gopay.get_status(gopay_id(payment))
    assert raised.value.code == "token_unavailable"
    assert fake_gopay.calls(None, r"/payments/.*") == []
    assert {r.status for r in token_posts(fake_gopay)} == {401}


def test_not_configured(settings, fake_gopay):
    settings.GOPAY_CLIENT_ID = ""
    with pytest.raises(ProviderConfigurationError):
        gopay.get_status(3299531053)
    assert fake_gopay.requests == []


# --- GoPay's token endpoint down ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["500", "status0"])
def test_token_endpoint_down_is_unavailable_and_no_payment_call_is_sent(payment, fake_gopay, kind):
    gopay.reset()
    cache.clear()  # a fresh process with nothing cached
    fake_gopay.fail(TOKEN, kind, times=2)  # the SDK asks when built and again before the call
    with pytest.raises(ProviderUnavailable) as raised:
        gopay.get_status(gopay_id(payment))
    assert raised.value.code == "token_unavailable"
    assert len(token_posts(fake_gopay)) == 2
    assert fake_gopay.calls(None, r"/payments/.*") == []  # never "Bearer None"

    assert gopay.get_status(gopay_id(payment))["state"] == "PAID"  # back: the next call fetches a token
    assert [r.status for r in fake_gopay.calls(None, r"/payments/.*")] == [200]


@pytest.mark.parametrize("kind", ["500", "status0"])
def test_token_endpoint_down_on_a_refund_sends_no_refund(payment, fake_gopay, kind):
    cache.clear()  # the cached token expired
    fake_gopay.fail(TOKEN, kind)
    with pytest.raises(ProviderUnavailable):  # not "unknown": nothing left us
        gopay.refund(gopay_id(payment), 50000)
    assert fake_gopay.posts(REFUND) == []
    assert fake_gopay.refunded(gopay_id(payment)) == 0


def test_token_endpoint_down_when_the_sdk_is_built_but_back_before_the_call(payment, fake_gopay):
    gopay.reset()
    cache.clear()
    fake_gopay.fail(TOKEN, "500", times=1)
    assert gopay.get_status(gopay_id(payment))["state"] == "PAID"
    assert [r.status for r in fake_gopay.requests] == [500, 200, 200]


def test_token_endpoint_down_during_the_refresh_after_a_401(payment, fake_gopay):
    fake_gopay.fail(STATUS, "401")
    fake_gopay.fail(TOKEN, "500")
    with pytest.raises(ProviderUnavailable):
        gopay.get_status(gopay_id(payment))
    assert [r.status for r in fake_gopay.requests] == [401, 500]
    assert gopay.get_status(gopay_id(payment))["state"] == "PAID"


def test_token_endpoint_down_on_create_fails_the_attempt_and_creates_nothing(payee, fake_gopay):
    from core.errors import DomainError

    cache.clear()
    gopay.reset()
    fake_gopay.fail(TOKEN, "500", times=2)
    order = gopay_order(payee)
    with pytest.raises(DomainError) as raised:
        start_gopay_payment(order)
    assert raised.value.status == 503
    assert fake_gopay.posts(CREATE) == []
    assert fake_gopay.objects == {}
    payment = order.payments.get()
    assert (payment.status, payment.failure_code) == (PaymentStatus.FAILED, "token_unavailable")


# --- GoPay itself down: status 0 and 5xx -------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["500", "status0"])
@pytest.mark.parametrize("call", ["get_status", "refund_history"])
def test_a_read_without_an_answer_is_unavailable(payment, fake_gopay, kind, call):
    fake_gopay.fail(r"/payments/payment/\d+(/refunds)?", kind)
    with pytest.raises(ProviderUnavailable) as raised:
        getattr(gopay, call)(gopay_id(payment))
    assert raised.value.code == "unavailable"
    assert not isinstance(raised.value, ProviderOutcomeUnknown)
    assert len(fake_gopay.calls("GET", r"/payments/.*")) == 1  # not retried by the client


@pytest.mark.parametrize("kind", ["500", "status0", "lost"])
def test_a_refund_without_an_answer_is_outcome_unknown(payment, fake_gopay, kind):
    fake_gopay.fail(REFUND, kind)
    with pytest.raises(ProviderOutcomeUnknown) as raised:
        gopay.refund(gopay_id(payment), 50000)
    assert raised.value.code == "outcome_unknown"
    assert len(fake_gopay.posts(REFUND)) == 1  # never resent blind
    # What did happen: "lost" was applied at GoPay, the others were not.
    assert fake_gopay.refunded(gopay_id(payment)) == (50000 if kind == "lost" else 0)


@pytest.mark.parametrize("kind", ["500", "status0", "lost"])
def test_a_create_without_an_answer_is_outcome_unknown(payee, fake_gopay, kind):
    payment = start_gopay_payment(gopay_order(payee))  # an SDK with a token
    fake_gopay.fail(CREATE, kind)
    with pytest.raises(ProviderOutcomeUnknown) as raised:
        gopay.create_payment(body(payment))
    assert raised.value.code == "outcome_unknown"
    assert len(fake_gopay.posts(CREATE)) == 2  # never resent blind
    assert len(fake_gopay.objects) == (2 if kind == "lost" else 1)


@pytest.mark.parametrize("status_code", [500, 502, 503, 504])
def test_every_5xx_on_a_read_is_unavailable(payment, fake_gopay, status_code, monkeypatch):
    real = fake_gopay._status
    monkeypatch.setattr(fake_gopay, "_status", lambda p, b: (status_code, {}))
    with pytest.raises(ProviderUnavailable):
        gopay.get_status(gopay_id(payment))
    monkeypatch.setattr(fake_gopay, "_status", real)
    assert gopay.get_status(gopay_id(payment))["state"] == "PAID"


def test_unavailable_is_never_applied_as_a_state(payment, fake_gopay):
    from payments.services.checkout import sync_payment_from_provider

    pending = payment
    fake_gopay.fail(STATUS, "status0")
    assert sync_payment_from_provider(payment=pending, now=pending.created_at).status == PaymentStatus.PENDING
    fake_gopay.fail(STATUS, "500")
    assert sync_payment_from_provider(payment=pending, now=pending.created_at).status == PaymentStatus.PENDING
    assert LedgerTransaction.objects.count() == 0
    assert sync_payment_from_provider(payment=pending, now=pending.created_at).status == PaymentStatus.SUCCEEDED


# --- GoPay's error bodies ----------------------------------------------------------------------------------


def test_an_unknown_payment_is_rejected_with_gopays_error_name(fake_gopay, payment):
    with pytest.raises(ProviderRequestRejected) as raised:
        gopay.get_status(1234567890)
    assert raised.value.code == "PAYMENT_NOT_FOUND"
    assert "not found" in str(raised.value)


def test_a_refund_over_the_amount_is_rejected_with_gopays_error_name(fake_gopay, payment):
    with pytest.raises(ProviderRequestRejected) as raised:
        gopay.refund(gopay_id(payment), 150001)
    assert raised.value.code == "PAYMENT_REFUND_AMOUNT_EXCEEDED"
    assert str(raised.value).startswith("amount: ")  # the field GoPay names
    assert fake_gopay.refunded(gopay_id(payment)) == 0


def test_a_refund_of_an_unpaid_payment_is_rejected(payee, fake_gopay):
    payment = start_gopay_payment(gopay_order(payee))
    with pytest.raises(ProviderRequestRejected) as raised:
        gopay.refund(gopay_id(payment), 100)
    assert raised.value.code == "PAYMENT_WRONG_STATE"


def test_an_invalid_create_is_rejected_with_the_first_field_error(payee, fake_gopay):
    payment = start_gopay_payment(gopay_order(payee))
    with pytest.raises(ProviderRequestRejected) as raised:
        gopay.create_payment(body(payment, amount=0))
    assert raised.value.code == "WRONG_FORMAT"
    assert str(raised.value) == "amount: Wrong format."
    with pytest.raises(ProviderRequestRejected) as raised:
        gopay.create_payment({k: v for k, v in body(payment).items() if k != "order_number"})
    assert raised.value.code == "MANDATORY"
    assert "order_number" in str(raised.value)


def test_an_error_without_a_body_still_has_a_code(payment, fake_gopay, monkeypatch):
    monkeypatch.setattr(fake_gopay, "_status", lambda p, b: (418, {"weird": True}))
    with pytest.raises(ProviderRequestRejected) as raised:
        gopay.get_status(gopay_id(payment))
    assert raised.value.code == "gopay_error"
    assert "418" in str(raised.value)


# --- RELIABILITY row 11 ------------------------------------------------------------------------------------


def _watch_calls(monkeypatch, fake):
    """Record, for every client call, the fake's requests it made and how it ended."""
    trace = []
    real = gopay._call

    def watched(scope, changes, method, *args):
        start = len(fake.requests)
        try:
            result = real(scope, changes, method, *args)
        except Exception as exc:
            trace.append((method, fake.requests[start:], type(exc)))
            raise
        trace.append((method, fake.requests[start:], None))
        return result

    monkeypatch.setattr(gopay, "_call", watched)
    return trace


def _gopay_side_change(rng, fake, payments, refunded):
    """GoPay's buyer or merchant acts on one of the payments (or nobody does); only half of them get refunds."""
    payment = rng.choice(payments)
    payment_id = gopay_id(payment)
    state = fake.payment(payment_id)["state"]
    roll = rng.random()
    if state == "CREATED" and roll < 0.05:
        fake.choose_method(payment_id)
    elif state in ("CREATED", "PAYMENT_METHOD_CHOSEN") and roll < 0.12:
        fake.pay(payment_id)
    elif state in ("CREATED", "PAYMENT_METHOD_CHOSEN") and roll < 0.16:
        rng.choice([fake.cancel, fake.timeout])(payment_id)
    elif state in ("PAID", "PARTIALLY_REFUNDED") and roll < 0.04 and payment_id % 2 and refunded[payment_id] < 150000:
        amount = rng.choice([10000, 25000, 150000 - refunded[payment_id]])
        fake.portal_refund(payment_id, amount)
        refunded[payment_id] += amount
    return payment


def test_row_11_a_thousand_notifications_with_injected_faults_lose_no_update(
    client, payee, fake_gopay, django_capture_on_commit_callbacks, monkeypatch
):
    from payments.webhooks.services import retry_failed_events

    capture = django_capture_on_commit_callbacks
    rng = random.Random(20260821)
    injected = Counter()
    with time_machine.travel(START, tick=False) as traveller:
        payments = [start_gopay_payment(gopay_order(payee)) for _ in range(16)]
        trace = _watch_calls(monkeypatch, fake_gopay)
        refunded = Counter()
        for step in range(1000):
            traveller.shift(timedelta(seconds=rng.randint(1, 40)))  # ~5.5 h in all: tokens expire many times
            payment = _gopay_side_change(rng, fake_gopay, payments, refunded)
            if rng.random() < 0.2:
                kind = rng.choice(["token500", "401", "500", "status0"])
                injected[kind] += 1
                if kind == "token500":
                    fake_gopay.revoke_tokens()  # GoPay lost its tokens, and its token endpoint fails too
                    fake_gopay.fail(TOKEN, "500")
                else:
                    fake_gopay.fail(STATUS, kind)
            response = notify_and_process(client, capture, gopay_id(payment))
            assert response.status_code == 200, (step, response.content)

        # GoPay works again; our retries (the beat task) bring every failed hint home.
        fake_gopay.faults.clear()
        for _ in range(10):
            traveller.shift(timedelta(hours=7))
            with capture(execute=True):
                if not retry_failed_events(now=datetime.now(UTC)):
                    break

    failed = WebhookEvent.objects.exclude(status=WebhookEvent.Status.PROCESSED)
    assert not failed.exists(), list(failed.values_list("status", "attempts", "last_error"))
    assert min(injected.values()) > 20, injected
    assert 150 < sum(injected.values()) < 250, injected
    failures = Counter(exc.__name__ for _, _, exc in trace if exc)
    assert failures["ProviderUnavailable"] >= injected["500"] + injected["status0"]
    assert "ProviderConfigurationError" not in failures  # a single 401 is always recovered

    # No lost update: every payment is what GoPay says, every capture and refund booked once.
    seen = Counter()
    for payment in payments:
        payment.refresh_from_db()
        at_gopay = fake_gopay.payment(gopay_id(payment))["state"]
        seen[at_gopay] += 1
        assert payment.status == STATES[at_gopay], (payment.pk, at_gopay)
        if STATES[at_gopay] == PaymentStatus.SUCCEEDED:
            assert payment.refunded_minor == fake_gopay.refunded(gopay_id(payment))
            expected = OrderStatus.PAID if not payment.refunded_minor else None
            if payment.refunded_minor == 150000:
                expected = OrderStatus.REFUNDED
            elif payment.refunded_minor:
                expected = OrderStatus.PARTIALLY_REFUNDED
            assert payment.order.status == expected
    assert all(seen[state] for state in ("PAID", "PARTIALLY_REFUNDED", "REFUNDED")), seen
    assert seen["CANCELED"] + seen["TIMEOUTED"], seen
    paid = sum(STATES[s] == "succeeded" for s in (fake_gopay.payment(gopay_id(p))["state"] for p in payments))
    assert LedgerTransaction.objects.filter(kind="capture").count() == paid
    refunds = Refund.objects.all()
    assert {(r.reason, r.status) for r in refunds} == {(RefundReason.MADE_AT_PROVIDER, RefundStatus.SUCCEEDED)}
    assert LedgerTransaction.objects.filter(kind="refund").count() == refunds.count()
    assert sum(len(fake_gopay.refund_history(gopay_id(p))) for p in payments) == refunds.count()
    assert_conserved(fake_gopay)

    # OAuth: creation used payment-create, everything else payment-all; ≤ 1 refresh per 401, never a loop.
    assert set(fake_gopay.scopes(CREATE)) == {"payment-create"}
    assert set(fake_gopay.scopes(r"/payments/payment/.+")) == {"payment-all"}
    allowed = re.compile(r"(T200 )?(P\d+|P401 T200 P\d+|P401 T(500|0))|T(500|0)")
    for method, requests, exc in trace:
        shape = " ".join(f"{'T' if r.path == TOKEN else 'P'}{r.status}" for r in requests)
        # at most: a token because ours expired, the call, one refresh after a 401, the call again
        assert allowed.fullmatch(shape), (method, shape)
        if shape.endswith("P401 T200 P401"):
            assert exc is ProviderConfigurationError
        elif shape.endswith(("P500", "P0", "T500", "T0")):
            assert exc is ProviderUnavailable
        else:
            assert shape.endswith("P200"), (method, shape)
            assert exc is None, (method, shape, exc)
    shapes = [" ".join(f"{'T' if r.path == TOKEN else 'P'}{r.status}" for r in reqs) for _, reqs, _ in trace]
    assert sum("P401 T200 P200" in shape for shape in shapes) >= injected["401"]  # every lone 401 recovered
    # Tokens: the first, one per 401, and one each time ours expired (29 min in ~5.5 h).
    answered_401 = len([r for r in fake_gopay.requests if r.status == 401])
    assert fake_gopay.token_requests["payment-all"] <= 1 + answered_401 + 5.5 * 60 / 29 + 1
