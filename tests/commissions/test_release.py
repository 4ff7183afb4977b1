"""Fund release (issue 8): payees' shares move from pending to available after their release time (goods: the
payee's delay after payment; tickets: after the event), by the beat; holds stop it; staff can release now.
Orders are paid through the sandbox with fulfilment as in production; refunds go through the real services."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from commissions.release import ReasonRequired, hold_payee, lift_hold, release_due_funds, release_now
from commissions.tasks import release_due_funds as release_task
from core.models import AuditEntry
from ledger import accounts
from ledger.models import LedgerTransaction
from ledger.selectors import account_balance, check_ledger
from payments.models import LineKind, OrderLine, OrderStatus, Payment
from refunds.models import RefundLine, RefundStatus
from refunds.services import execute_refund, refundable_minor, request_refund
from tests.factories import PayeeFactory, StaffFactory
from tests.invoicing.helpers import line, pay

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def no_refund_approval(settings):
    settings.TOLLGATE_REFUND_APPROVAL_THRESHOLD = {"default": 10**12}


def balances(payee, currency="EUR") -> tuple[int, int, int]:
    return tuple(
        account_balance(spec(payee.pk), currency).amount_minor
        for spec in (accounts.payee_pending, accounts.payee_available, accounts.payee_reserved)
    )


def refund(order, amount: int, now: datetime):
    made = request_refund(order=order, amount_minor=amount, reason="requested_by_customer", now=now)
    made = execute_refund(refund_id=made.pk, now=now)
    assert made.status == RefundStatus.SUCCEEDED, made.failure_message
    return made


def shares(payee) -> int:
    return sum(OrderLine.objects.filter(payee=payee).values_list("payee_share_minor", flat=True))


def refunded_shares(payee) -> int:
    return sum(
        RefundLine.objects.filter(order_line__payee=payee, refund__status=RefundStatus.SUCCEEDED).values_list(
            "payee_share_minor", flat=True
        )
    )


def test_goods_are_released_after_the_payee_delay_and_not_before(payee):
    payee.release_delay_days = 7
    payee.save()
    order = pay(lines=[line(payee, 10000), line(payee, 5000)], now=T0)
    share = shares(payee)
    assert share > 0
    assert set(order.lines.values_list("release_at", flat=True)) == {T0 + timedelta(days=7)}

    assert release_due_funds(now=T0 + timedelta(days=6, hours=23)) == 0
    assert balances(payee) == (share, 0, 0)

    assert release_due_funds(now=T0 + timedelta(days=7)) == 2
    assert balances(payee) == (0, share, 0)
    assert set(order.lines.values_list("released_at", flat=True)) == {T0 + timedelta(days=7)}
    assert LedgerTransaction.objects.filter(kind="release").count() == 2
    assert check_ledger().ok


def test_tickets_are_released_after_the_event_and_its_delay(payee):
    payee.release_delay_days = 7
    payee.event_release_delay_days = 2
    payee.save()
    event = T0 + timedelta(days=30)
    pay(
        lines=[line(payee, 4000, kind=LineKind.EVENT_TICKET, event_ref="gig", event_starts_at=event)],
        now=T0,
    )
    share = shares(payee)
    assert OrderLine.objects.get().release_at == event + timedelta(days=2)

    assert release_due_funds(now=T0 + timedelta(days=8)) == 0  # the goods delay means nothing for a ticket
    assert release_due_funds(now=event + timedelta(days=1)) == 0
    assert balances(payee) == (share, 0, 0)
    assert release_due_funds(now=event + timedelta(days=2, minutes=1)) == 1
    assert balances(payee) == (0, share, 0)


def test_a_refund_before_release_reduces_what_is_released(payee):
    order = pay(lines=[line(payee, 10000), line(payee, 6000)], now=T0)
    refund(order, 7000, T0 + timedelta(days=1))
    taken = refunded_shares(payee)
    assert taken > 0

    release_due_funds(now=T0 + timedelta(days=8))

    assert balances(payee) == (0, shares(payee) - taken, 0)
    released = sum(
        entry.amount_minor
        for tx in LedgerTransaction.objects.filter(kind="release")
        for entry in tx.entries.filter(direction="credit")
    )
    assert released == shares(payee) - taken
    assert check_ledger().ok


def test_a_refund_after_release_comes_from_available(payee):
    order = pay(lines=[line(payee, 10000)], now=T0)
    release_due_funds(now=T0 + timedelta(days=8))
    share = shares(payee)
    assert balances(payee) == (0, share, 0)

    refund(order, 10000, T0 + timedelta(days=9))

    assert balances(payee) == (0, 0, 0)
    order.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED
    assert check_ledger().ok


def test_a_refund_of_a_released_line_takes_from_the_other_pending_lines_and_release_is_capped(payee):
    first = pay(lines=[line(payee, 10000)], now=T0)
    pay(lines=[line(payee, 10000)], now=T0 + timedelta(days=5))
    release_due_funds(now=T0 + timedelta(days=7))  # the first order's line only
    share = shares(payee) // 2
    assert balances(payee) == (share, share, 0)

    refund(first, 4000, T0 + timedelta(days=8))  # taken from pending (the second order's share)
    taken = refunded_shares(payee)
    assert balances(payee) == (share - taken, share, 0)

    assert release_due_funds(now=T0 + timedelta(days=13)) == 1
    assert balances(payee) == (0, 2 * share - taken, 0)  # capped at pending: never below zero
    assert check_ledger().ok


def test_the_beat_run_twice_releases_once(payee):
    pay(lines=[line(payee, 10000)], now=T0)
    later = T0 + timedelta(days=10)
    assert release_due_funds(now=later) == 1
    assert release_due_funds(now=later + timedelta(minutes=15)) == 0
    assert LedgerTransaction.objects.filter(kind="release").count() == 1
    assert balances(payee) == (0, shares(payee), 0)


def test_the_celery_task_releases_what_is_due(payee, time_machine):
    time_machine.move_to(T0)
    pay(lines=[line(payee, 10000)])
    time_machine.move_to(T0 + timedelta(days=8))
    assert release_task.delay().get() == 1
    assert balances(payee) == (0, shares(payee), 0)


def test_lines_paid_before_release_times_existed_get_them_from_the_payment_time(payee):
    order = pay(lines=[line(payee, 10000)], now=T0)
    order.lines.update(release_at=None)
    assert release_due_funds(now=T0 + timedelta(days=3)) == 0
    assert OrderLine.objects.get().release_at == T0 + timedelta(days=7)
    assert release_due_funds(now=T0 + timedelta(days=7)) == 1


def test_a_held_payee_is_not_released_until_the_hold_is_lifted(payee):
    other = PayeeFactory(country="DE")
    staff = StaffFactory()
    pay(lines=[line(payee, 10000), line(other, 8000)], now=T0)
    hold_payee(payee=payee, reason="KYC review", actor=staff, now=T0 + timedelta(days=1))
    payee.refresh_from_db()
    assert (payee.payouts_held, payee.hold_reason) == (True, "KYC review")

    assert release_due_funds(now=T0 + timedelta(days=10)) == 1  # the other payee only
    assert balances(payee)[1] == 0
    assert balances(other)[0] == 0

    assert lift_hold(payee=payee, reason="documents checked", actor=staff, now=T0 + timedelta(days=11))
    payee.refresh_from_db()
    assert (payee.payouts_held, payee.hold_reason) == (False, "")
    assert release_due_funds(now=T0 + timedelta(days=11)) == 1
    assert balances(payee) == (0, shares(payee), 0)
    actions = list(AuditEntry.objects.filter(object_id=str(payee.pk)).values_list("action", "message"))
    assert ("payee.held", "KYC review") in actions
    assert ("payee.hold_lifted", "documents checked") in actions


def test_release_now_releases_everything_with_an_audit_entry(payee):
    staff = StaffFactory()
    pay(lines=[line(payee, 10000)], now=T0)
    pay(
        lines=[line(payee, 3000, kind=LineKind.EVENT_TICKET, event_ref="x", event_starts_at=T0 + timedelta(days=90))],
        now=T0,
    )
    released = release_now(payee=payee, reason="trusted seller", actor=staff, now=T0 + timedelta(hours=1))

    assert released == {"EUR": shares(payee)}
    assert balances(payee) == (0, shares(payee), 0)
    assert not OrderLine.objects.filter(released_at__isnull=True).exists()
    entry = AuditEntry.objects.get(action="payee.released_now")
    assert (entry.actor, entry.message, entry.amount_minor, entry.currency) == (
        staff,
        "trusted seller",
        shares(payee),
        "EUR",
    )
    assert release_due_funds(now=T0 + timedelta(days=100)) == 0
    assert check_ledger().ok


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_no_reason_is_refused(payee, reason):
    staff = StaffFactory()
    pay(lines=[line(payee, 10000)], now=T0)
    for call in (hold_payee, lift_hold, release_now):
        with pytest.raises(ReasonRequired) as raised:
            call(payee=payee, reason=reason, actor=staff, now=T0)
        assert raised.value.code == "validation_error"
    payee.refresh_from_db()
    assert not payee.payouts_held
    assert balances(payee)[0] == shares(payee)
    assert not AuditEntry.objects.filter(action__startswith="payee.").exists()


# --- random sequences ------------------------------------------------------------------------------------

PAY = st.tuples(st.just("pay"), st.lists(st.tuples(st.integers(0, 1), st.integers(100, 20000)), min_size=1, max_size=2))
OPS = st.lists(
    st.one_of(
        PAY,
        st.tuples(st.just("refund"), st.tuples(st.integers(0, 10), st.integers(1, 100))),
        st.tuples(st.just("refund"), st.tuples(st.integers(0, 10), st.integers(1, 100))),
        st.tuples(st.just("advance"), st.integers(1, 6)),
        st.tuples(st.just("release"), st.integers(0, 6)),  # after advancing that many days
        st.tuples(st.just("hold"), st.integers(0, 1)),
    ),
    min_size=1,
    max_size=14,
)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(first=st.lists(PAY, min_size=1, max_size=3), ops=OPS)
def test_random_sequences_keep_the_ledger_and_pending_never_goes_negative(db, first, ops):
    with transaction.atomic():
        payees = [PayeeFactory(country="CZ", release_delay_days=3), PayeeFactory(country="DE", release_delay_days=5)]
        staff = StaffFactory()
        now = T0
        orders = []
        for op, arg in [*first, *ops]:
            if op == "pay":
                orders.append(pay(lines=[line(payees[i], amount) for i, amount in arg], now=now))
            elif op == "refund" and orders:
                order = orders[arg[0] % len(orders)]
                payment = Payment.objects.get(order=order, settles_order=True)
                left = refundable_minor(payment)
                if left:
                    refund(order, max(1, left * arg[1] // 100), now)
                    event("refund")
            elif op == "advance":
                now += timedelta(days=arg)
            elif op == "release":
                now += timedelta(days=arg)
                event(f"released {min(release_due_funds(now=now), 2)}+ lines")
            elif op == "hold":
                payee = payees[arg]
                payee.refresh_from_db()
                if payee.payouts_held:
                    lift_hold(payee=payee, reason="ok", actor=staff, now=now)
                else:
                    hold_payee(payee=payee, reason="check", actor=staff, now=now)
            assert_conserved(payees)
        for payee in payees:
            lift_hold(payee=payee, reason="end", actor=staff, now=now)
        release_due_funds(now=now + timedelta(days=30))
        assert_conserved(payees)
        for payee in payees:
            assert balances(payee)[0] == 0  # everything due was released
        transaction.set_rollback(True)


def assert_conserved(payees) -> None:
    assert check_ledger().ok
    for payee in payees:
        pending, available, reserved = balances(payee)
        assert pending >= 0
        assert pending + available + reserved == shares(payee) - refunded_shares(payee)
    released: dict[int, int] = defaultdict(int)
    for tx in LedgerTransaction.objects.filter(kind="release"):
        released[tx.metadata["order_line"]] += tx.entries.filter(direction="credit").get().amount_minor
    for line_id, amount in released.items():
        assert 0 < amount <= OrderLine.objects.get(pk=line_id).payee_share_minor
