"""PostgreSQL: 20 parallel 10 % refunds of one 100.00 EUR capture never refund more than was captured
(RELIABILITY §6 row 21, I4; issue 6 "Guards under row locks").

Each thread is started by a barrier and runs on its own connection. Requests come the way staff (the admin)
and the API make them: `request_refund` (the admin's service) and `POST /api/v1/refunds` (the policy
service behind it), each under the order and payment row locks, the refund's task queued on commit; the
tasks are then run by 10 parallel "workers". Refunds made at the provider arrive as Stripe webhooks (the
dashboard refund, then its events delivered to /webhooks/stripe/ at the same instant as the requests); the
Stripe fake sits behind `responses`, which is process-global, so every thread talks to the same fake (its
handler is serialised by a lock here, as Stripe serialises writes to one charge).

The sandbox test also runs once with its guard patched out (the order and payment row locks), to show that
the checker catches the over-refund it is there to catch.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
import responses
from django.db.models import F, Sum
from django.test import Client
from django.urls import Resolver404, resolve
from django.utils import timezone
from rest_framework.test import APIClient

from core.errors import DomainError, ErrorCode
from ledger.models import LedgerTransaction
from ledger.selectors import check_ledger
from payments.models import Order, OrderStatus, Payment, PaymentStatus, WebhookEvent
from payments.providers.registry import get_provider
from payments.providers.sandbox import gateway
from payments.providers.sandbox.models import SandboxRefund
from payments.services.fulfilment import apply_payment_state
from refunds.models import Refund, RefundReason, RefundStatus
from refunds.services import ACTIVE_STATUSES, execute_refund, request_refund
from refunds.services import core as refund_core
from tests.factories import PayeeFactory
from tests.payments.concurrency import run_concurrently
from tests.payments.helpers import gateway_deliveries_suppressed, make_order, session_of, start_sandbox_payment
from tests.payments.stripe import helpers as stripe
from tests.payments.stripe.conftest import (
    WEBHOOK_SECRET,
    fake_stripe,  # noqa: F401 - the fixture, used here too
)
from tests.payments.stripe.fake import API, deliver
from tests.reporting import report

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

TOTAL = 10000  # 100.00 EUR
TENTH = TOTAL // 10
THREADS = 20
WIDEN = 0.05  # seconds each request sleeps between reading what is left and writing its row


def _api_refunds_exist() -> bool:
    try:
        resolve("/api/v1/refunds")
    except Resolver404:
        return False
    return True


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("refunder", "refunder@example.com", "x", is_staff=True)


@pytest.fixture
def widened(monkeypatch):
    """Every request sleeps between reading what is still refundable and creating its row, so that the 20
    requests overlap whatever the scheduler does (with the guard, the sleep happens under the locks)."""
    original = refund_core.refundable_minor

    def slow(payment):
        left = original(payment)
        time.sleep(WIDEN)
        return left

    monkeypatch.setattr(refund_core, "refundable_minor", slow)


@pytest.fixture
def queued(monkeypatch):
    """The refund tasks the requests queue on commit, collected instead of run (a worker runs them later)."""
    from refunds import tasks

    ids: list[int] = []
    lock = threading.Lock()

    def delay(*, refund_id, **kwargs):
        with lock:
            ids.append(refund_id)

    monkeypatch.setattr(tasks.execute_refund, "delay", delay)
    return ids


def _without_the_guard(monkeypatch) -> None:
    """The row locks request_refund (and complete_refund) take on the order and its payment, patched out:
    `select_for_update()` returns the plain queryset, as tests/ledger/test_concurrency.py does for accounts."""
    monkeypatch.setattr(Order.objects, "select_for_update", lambda *a, **k: Order.objects.all())
    monkeypatch.setattr(Payment.objects, "select_for_update", lambda *a, **k: Payment.objects.all())


def _request(order_id: int, *, actor=None, label: str):
    """One refund of 10 %, as the admin (a staff user) or the API (an API client) asks for it."""
    try:
        refund = request_refund(
            order=Order.objects.get(pk=order_id),
            amount_minor=TENTH,
            reason="requested_by_customer",
            now=timezone.now(),
            actor=actor,
            actor_label=label,
        )
    except DomainError as exc:
        return ("refused", exc.code)
    return ("requested", refund.pk)


def _mode(index: int, modes: list[str]) -> str:
    return modes[index % len(modes)]


def check_refunds(order: Order) -> list[str]:
    """The checker: what must hold of one order's refunds after any interleaving. Returns the violations."""
    order.refresh_from_db()
    payment = Payment.objects.get(order=order, settles_order=True)
    problems = []
    refunds = Refund.objects.filter(payment=payment)
    held = refunds.filter(status__in=ACTIVE_STATUSES).aggregate(s=Sum("amount_minor"))["s"] or 0
    succeeded = refunds.filter(status=RefundStatus.SUCCEEDED).aggregate(s=Sum("amount_minor"))["s"] or 0
    gross = (
        refunds.filter(status=RefundStatus.SUCCEEDED).aggregate(
            s=Sum(F("amount_minor") + F("fee_minor") + F("commission_kept_minor"))
        )["s"]
        or 0
    )
    if held > payment.captured_minor:
        problems.append(f"refunds accepted for {held} of a capture of {payment.captured_minor}")
    if payment.refunded_minor > payment.captured_minor:
        problems.append(f"I4: payment refunded {payment.refunded_minor} > captured {payment.captured_minor}")
    if payment.refunded_minor != succeeded:
        problems.append(f"payment says {payment.refunded_minor} refunded, its succeeded refunds {succeeded}")
    if order.refunded_minor != gross:
        problems.append(f"order says {order.refunded_minor} refunded, its succeeded refunds {gross}")
    report = check_ledger()
    if not report.ok:
        problems.append(f"ledger: {report}")
    return problems


# --- the sandbox: admin and API requests, run by parallel workers ---------------------------------------------


def _sandbox_paid_order(api_client=None) -> Order:
    order = make_order(PayeeFactory(), unit_amount_minor=TOTAL, api_client=api_client)
    with gateway_deliveries_suppressed():
        payment = start_sandbox_payment(order)
        gateway.buyer_pays(str(session_of(payment).token), now=timezone.now())
    state = get_provider("sandbox").fetch_payment(payment=payment)
    apply_payment_state(payment_id=payment.pk, state=state, now=timezone.now(), source="test")
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    return order


@pytest.fixture
def api_key(api_client_obj):
    """An API key of the client the order belongs to, and a refund policy under which a refund is whole
    (a full refund for ten years after payment: no fee, commission returned, original method)."""
    from core.models import ApiClientKey
    from refunds.models import RefundPolicy

    RefundPolicy.objects.create(name="Whole refunds", full_refund_until=timedelta(days=3650))
    _, key = ApiClientKey.objects.create_key(name="parallel", client=api_client_obj)
    return key


def _post_refund(order: Order, key: str, index: int):
    """`POST /api/v1/refunds` with an Idempotency-Key, as a marketplace does."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    response = client.post(
        "/api/v1/refunds",
        {"order": str(order.token), "amount": TENTH, "reason": "requested_by_customer"},
        format="json",
        HTTP_IDEMPOTENCY_KEY=f"parallel-{order.pk}-{index}",
    )
    if response.status_code == 201:
        return ("requested", response.json()["id"])
    assert response.status_code == 409, (response.status_code, response.content)
    return ("refused", response.json()["error"]["code"])


def _race_sandbox(order: Order, staff, queued: list[int], api_key: str):
    assert _api_refunds_exist()
    modes = ["admin", "api"]

    def work(index: int):
        if _mode(index, modes) == "admin":
            return _request(order.pk, actor=staff, label="")
        return _post_refund(order, api_key, index)

    results = run_concurrently(THREADS, work)
    run_concurrently(10, lambda i: [execute_refund(refund_id=pk, now=timezone.now()) for pk in queued[i::10]])
    return results


def test_20_parallel_tenth_refunds_from_admin_and_api_refund_exactly_the_capture(
    staff, widened, queued, api_client_obj, api_key
):
    order = _sandbox_paid_order(api_client=api_client_obj)
    payment = Payment.objects.get(order=order)

    results = _race_sandbox(order, staff, queued, api_key)

    outcomes = Counter(kind for kind, _ in results)
    assert outcomes == {"requested": 10, "refused": 10}, results
    assert Counter(code for kind, code in results if kind == "refused") == {ErrorCode.REFUND_EXCEEDS_CAPTURED: 10}
    assert sorted(queued) == sorted(pk for kind, pk in results if kind == "requested")
    assert Refund.objects.filter(status=RefundStatus.SUCCEEDED).count() == 10
    assert Refund.objects.exclude(status=RefundStatus.SUCCEEDED).count() == 0
    # One provider call per refund that succeeded: the gateway holds exactly ten, each one of ours.
    session = session_of(payment)
    assert SandboxRefund.objects.filter(session=session).count() == 10
    assert session.refunded_minor == TOTAL
    assert set(SandboxRefund.objects.values_list("idempotency_key", flat=True)) == {
        f"tollgate-refund-{pk}" for pk in queued
    }
    payment.refresh_from_db()
    order.refresh_from_db()
    assert (payment.refunded_minor, order.refunded_minor, order.status) == (TOTAL, TOTAL, OrderStatus.REFUNDED)
    assert LedgerTransaction.objects.filter(kind="refund").count() == 10
    assert check_refunds(order) == []


def test_the_checker_catches_the_over_refund_when_the_row_locks_are_patched_out(request, staff, queued, monkeypatch):
    order = _sandbox_paid_order()
    payment = Payment.objects.get(order=order)
    _without_the_guard(monkeypatch)
    # Widen the window deterministically: all 20 read what is left before any of them writes.
    all_read = threading.Barrier(THREADS)
    original = refund_core.refundable_minor

    def read_then_wait(payment_):
        left = original(payment_)
        all_read.wait(timeout=60)
        return left

    monkeypatch.setattr(refund_core, "refundable_minor", read_then_wait)

    def work(index: int):
        try:
            return _request(order.pk, actor=staff if index % 2 else None, label="" if index % 2 else "api")
        except ValueError as exc:  # what the allocation over lines does once it sees them over-taken
            return ("crashed", str(exc))

    results = run_concurrently(THREADS, work)
    outcomes = Counter(kind for kind, _ in results)

    # Without the locks every request reads "100.00 left": none is refused with refund_exceeds_captured
    # (the guard row 21 counts on), more than ten are accepted, and those that see the others' rows while
    # allocating crash (weights below zero: a 500 for the API) instead of being refused.
    assert outcomes["refused"] == 0, results
    assert outcomes["requested"] + outcomes["crashed"] == THREADS
    assert outcomes["requested"] > 10, results
    accepted = outcomes["requested"] * TENTH
    assert check_refunds(order) == [f"refunds accepted for {accepted} of a capture of {TOTAL}"]

    # The gateway's own lock is what stops real money going out twice: run one at a time, the first ten
    # are paid and the rest refused by the gateway (amount_too_large), failed and flagged for review.
    for refund_id in sorted(queued):
        execute_refund(refund_id=refund_id, now=timezone.now())
    assert session_of(payment).refunded_minor == TOTAL
    assert Counter(Refund.objects.values_list("status", flat=True)) == {
        RefundStatus.SUCCEEDED: 10,
        RefundStatus.FAILED: outcomes["requested"] - 10,
    }
    payment.refresh_from_db()
    assert payment.needs_review is True
    assert payment.refunded_minor == TOTAL  # executed one at a time: no lost update, no constraint fired
    assert check_refunds(order) == []
    report(request, f"row 21 guard patched out: {dict(outcomes)}")


# --- Stripe: admin and API requests racing dashboard refunds delivered by webhook --------------------------------


def _serialised(fake) -> None:
    """Stripe handles one write to a charge at a time: the fake's handler runs under a lock."""
    lock = threading.RLock()
    handle = fake._handle

    def locked(request):
        with lock:
            return handle(request)

    fake.lock = lock
    fake.mock.reset()
    fake.mock.add_callback(responses.POST, re.compile(API + r"/v1/.*"), callback=locked)
    fake.mock.add_callback(responses.GET, re.compile(API + r"/v1/.*"), callback=locked)


def _dashboard_refund(fake, pi: str):
    """Someone refunds 10 % in the Stripe dashboard, which (like Stripe) refuses more than is left."""
    with fake.lock:
        charge = fake.charge_of(pi)
        if charge["amount"] - charge["amount_refunded"] < TENTH:
            return None
        return fake.dashboard_refund(pi, TENTH)


def test_20_parallel_refunds_from_admin_api_and_stripe_webhooks_never_over_refund(
    request,
    fake_stripe,  # noqa: F811
    staff,
):
    fake = fake_stripe
    _serialised(fake)
    order = stripe.stripe_order(PayeeFactory(), lines=((1, TOTAL),))
    payment = stripe.start_stripe_payment(order)
    for event in fake.pay(payment.provider_ref):
        assert deliver(Client(), event, secret=WEBHOOK_SECRET).status_code == 200
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    pi = payment.provider_payment_ref
    modes = ["admin", "api", "webhook"]

    def work(index: int):
        mode = _mode(index, modes)
        if mode == "admin":
            return _request(order.pk, actor=staff, label="")
        if mode == "api":  # the service behind the API; the API itself is raced in the sandbox test above
            return _request(order.pk, label="api:demo-marketplace")
        events = _dashboard_refund(fake, pi)
        if events is None:
            return ("refused_at_stripe", None)
        codes = [deliver(Client(), event, secret=WEBHOOK_SECRET).status_code for event in events]
        return ("made_at_stripe", (events[0]["data"]["object"]["id"], codes))

    # Our requests' tasks run inline (eager Celery, on commit), so our refunds reach Stripe while the
    # dashboard's are being made and delivered.
    results = run_concurrently(THREADS, work)
    retried = WebhookEvent.objects.filter(status=WebhookEvent.Status.FAILED).count()
    stripe.drain_webhooks(_no_capture)  # webhook events refused meanwhile are retried to the end

    kinds = Counter(kind for kind, _ in results)
    made_at_stripe = [value[0] for kind, value in results if kind == "made_at_stripe"]
    assert all(set(value[1]) == {200} for kind, value in results if kind == "made_at_stripe")
    refused_here = [value for kind, value in results if kind == "refused"]
    assert set(refused_here) <= {ErrorCode.REFUND_EXCEEDS_CAPTURED, ErrorCode.REFUND_NOT_ALLOWED}

    # Stripe: exactly ten refunds of 10 %, the charge refunded in full, never more.
    at_stripe = fake.refunds_of(pi)
    charge = fake.charge_of(pi)
    assert len(at_stripe) == 10
    assert (charge["amount_refunded"], charge["refunded"]) == (TOTAL, True)

    # Ours: exactly ten succeeded, one for each refund at Stripe, adding up to the capture (I4).
    succeeded = Refund.objects.filter(status=RefundStatus.SUCCEEDED)
    assert sorted(succeeded.values_list("provider_ref", flat=True)) == sorted(r["id"] for r in at_stripe)
    assert succeeded.aggregate(s=Sum("amount_minor"))["s"] == TOTAL
    ingested = succeeded.filter(reason=RefundReason.MADE_AT_PROVIDER)
    assert sorted(ingested.values_list("provider_ref", flat=True)) == sorted(made_at_stripe)
    ours = succeeded.exclude(reason=RefundReason.MADE_AT_PROVIDER)
    # Every one of ours that Stripe accepted was sent once (its key from the row), and none twice.
    accepted_posts = [r for r in fake.posts("/v1/refunds") if r.status == 200]
    assert sorted(r.idempotency_key for r in accepted_posts) == sorted(f"tollgate-refund-{r.pk}" for r in ours)
    # A request of ours that got a row but found the charge used up by dashboard refunds the guard could not
    # see yet is refused by Stripe: failed, and the payment flagged for staff. Nothing is over-refunded.
    failed = Refund.objects.filter(status=RefundStatus.FAILED)
    assert Refund.objects.exclude(status__in=[RefundStatus.SUCCEEDED, RefundStatus.FAILED]).count() == 0
    assert all(r.reason != RefundReason.MADE_AT_PROVIDER for r in failed)
    payment.refresh_from_db()
    assert payment.needs_review == failed.exists()
    # Every attempt is accounted for: 10 succeeded, 10 refused somewhere.
    assert len(refused_here) + kinds["refused_at_stripe"] + failed.count() == 10
    assert ours.count() + ingested.count() == 10

    order.refresh_from_db()
    assert (payment.refunded_minor, order.refunded_minor, order.status) == (TOTAL, TOTAL, OrderStatus.REFUNDED)
    assert LedgerTransaction.objects.filter(kind="refund").count() == 10
    assert not WebhookEvent.objects.filter(status__in=stripe.UNSETTLED).exists()
    assert check_refunds(order) == []
    stripe.assert_conserved(fake)
    report(
        request,
        f"row 21 (Stripe mix): {kinds['requested']} requested, {len(refused_here)} refused here "
        f"{dict(Counter(refused_here))}, {len(made_at_stripe)} dashboard refunds, "
        f"{kinds['refused_at_stripe']} refused by the dashboard, {failed.count()} of ours refused by Stripe, "
        f"{retried} webhook events refused at first (retried)",
    )


class _no_capture:  # noqa: N801 - stands in for django_capture_on_commit_callbacks in a transactional test
    """In a transactional test on_commit callbacks run at once; drain_webhooks only needs the context."""

    def __init__(self, execute: bool = False):
        pass

    def __enter__(self):
        return []

    def __exit__(self, *exc):
        return False
