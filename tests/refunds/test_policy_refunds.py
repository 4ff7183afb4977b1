"""Refunds through the policy: the ledger per case (fee to payee or platform, commission returned or not,
store credit, a payee already paid out), guards, overrides (audited), maker-checker, force majeure."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from core.errors import DomainError, ErrorCode
from core.models import AuditEntry
from ledger import accounts
from ledger.models import Entry, LedgerTransaction
from ledger.money import Money
from ledger.selectors import check_ledger
from ledger.services import credit, debit, post_transaction
from payments.models import OrderStatus
from refunds.models import Dispute, FeeTo, Refund, RefundStatus
from refunds.services import approve_refund, cancel_event, reject_refund, request_policy_refund
from tests.factories import PayeeFactory, StaffFactory
from tests.refunds.policy_helpers import balances, make_policy, paid_order

pytestmark = pytest.mark.django_db


def entries(refund):
    tx = LedgerTransaction.objects.get(idempotency_key=f"refund:{refund.pk}")
    return sorted(
        (e.account.code, e.direction, e.amount_minor)
        for e in Entry.objects.filter(transaction=tx).select_related("account")
    )


def refund(order, django_capture_on_commit_callbacks, **kwargs):
    kwargs.setdefault("now", timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        result = request_policy_refund(order=order, **kwargs)
    result.refresh_from_db()
    return result


def test_capture_split_is_what_the_cases_below_assume(payee):
    order = paid_order(payee)
    line = order.lines.get()
    assert (line.commission_minor, line.commission_vat_minor, line.payee_share_minor) == (1000, 210, 8790)


def test_full_refund_inside_the_window_reverses_the_capture(payee, django_capture_on_commit_callbacks):
    make_policy()
    order = paid_order(payee)
    before = balances(payee)
    r = refund(order, django_capture_on_commit_callbacks)
    assert (r.status, r.amount_minor, r.fee_minor, r.commission_kept_minor) == (RefundStatus.SUCCEEDED, 10000, 0, 0)
    p = payee.pk
    assert entries(r) == sorted(
        [
            ("provider:sandbox:clearing", "credit", 10000),
            ("platform:commission", "debit", 1000),
            ("platform:vat_payable", "debit", 210),
            (f"payee:{p}:pending", "debit", 8790),
        ]
    )
    after = balances(payee)
    assert after["pending"] == before["pending"] - 8790
    order.refresh_from_db()
    assert (order.status, order.refunded_minor) == (OrderStatus.REFUNDED, 10000)
    assert check_ledger().ok


def test_tier_fee_kept_by_the_payee(payee, django_capture_on_commit_callbacks):
    make_policy(fee_to=FeeTo.PAYEE)
    order = paid_order(payee, event_in=timedelta(days=10))  # tier 1: 10 %
    r = refund(order, django_capture_on_commit_callbacks)
    assert (r.amount_minor, r.fee_minor, r.fee_to) == (9000, 1000, FeeTo.PAYEE)
    assert entries(r) == sorted(
        [
            ("provider:sandbox:clearing", "credit", 9000),
            ("platform:commission", "debit", 1000),
            ("platform:vat_payable", "debit", 210),
            (f"payee:{payee.pk}:pending", "debit", 7790),
        ]
    )
    assert balances(payee)["pending"] == 1000  # the payee keeps the fee
    order.refresh_from_db()
    assert (order.status, order.refunded_minor) == (OrderStatus.REFUNDED, 10000)  # nothing left to refund
    assert check_ledger().ok


def test_tier_fee_kept_by_the_platform(payee, django_capture_on_commit_callbacks):
    make_policy(fee_to=FeeTo.PLATFORM)
    order = paid_order(payee, event_in=timedelta(days=10))
    r = refund(order, django_capture_on_commit_callbacks)
    assert entries(r) == sorted(
        [
            ("provider:sandbox:clearing", "credit", 9000),
            ("platform:commission", "debit", 1000),
            ("platform:vat_payable", "debit", 210),
            ("platform:commission", "credit", 1000),
            (f"payee:{payee.pk}:pending", "debit", 8790),
        ]
    )
    b = balances(payee)
    assert (b["pending"], b["commission"], b["vat"]) == (0, 1000, 0)
    assert check_ledger().ok


def test_commission_not_returned(payee, django_capture_on_commit_callbacks):
    make_policy(commission_returned=False)
    order = paid_order(payee)
    r = refund(order, django_capture_on_commit_callbacks)
    assert (r.amount_minor, r.commission_kept_minor, r.commission_returned) == (8790, 1210, False)
    assert entries(r) == sorted(
        [("provider:sandbox:clearing", "credit", 8790), (f"payee:{payee.pk}:pending", "debit", 8790)]
    )
    b = balances(payee)
    assert (b["commission"], b["vat"], b["pending"]) == (1000, 210, 0)
    assert check_ledger().ok


def test_commission_not_returned_and_fee_to_payee(payee, django_capture_on_commit_callbacks):
    make_policy(commission_returned=False, fee_to=FeeTo.PAYEE)
    order = paid_order(payee, event_in=timedelta(days=10))
    r = refund(order, django_capture_on_commit_callbacks)
    assert (r.amount_minor, r.fee_minor, r.commission_kept_minor) == (7790, 1000, 1210)
    assert entries(r) == sorted(
        [("provider:sandbox:clearing", "credit", 7790), (f"payee:{payee.pk}:pending", "debit", 7790)]
    )
    assert check_ledger().ok


def test_partial_refunds_by_amount_then_the_rest(payee, django_capture_on_commit_callbacks):
    make_policy()
    order = paid_order(payee, amount=3333, quantity=3)
    first = refund(order, django_capture_on_commit_callbacks, amount_minor=1001)
    second = refund(order, django_capture_on_commit_callbacks, lines={order.lines.get().pk: 1})
    rest = refund(order, django_capture_on_commit_callbacks)
    assert [first.amount_minor, second.amount_minor, rest.amount_minor] == [1001, 3333, 9999 - 1001 - 3333]
    with pytest.raises(DomainError) as raised:
        request_policy_refund(order=order, amount_minor=1, now=timezone.now())
    assert raised.value.code in (ErrorCode.ORDER_NOT_REFUNDABLE, ErrorCode.REFUND_EXCEEDS_CAPTURED)
    b = balances(payee)
    assert (b["commission"], b["vat"], b["pending"]) == (0, 0, 0)
    assert check_ledger().ok


def test_store_credit_completes_at_once_without_the_provider(payee, django_capture_on_commit_callbacks):
    make_policy()
    order = paid_order(payee)
    before = balances(payee)
    r = refund(order, django_capture_on_commit_callbacks, method="store_credit")
    assert r.status == RefundStatus.SUCCEEDED
    assert ("buyers:store_credit", "credit", 10000) in entries(r)
    b = balances(payee)
    # the money stays with us, owed as credit
    assert (b["store_credit"], b["clearing"]) == (10000, before["clearing"])
    r.payment.refresh_from_db()
    assert r.payment.refunded_minor == 0  # nothing went back through the provider
    assert check_ledger().ok


def test_payee_already_paid_out_goes_negative(payee, django_capture_on_commit_callbacks):
    make_policy()
    order = paid_order(payee)
    now = timezone.now()
    # Release and pay out everything the payee had.
    post_transaction(
        idempotency_key="test-release",
        kind="release",
        entries=[
            debit(accounts.payee_pending(payee.pk), Money(8790, "EUR")),
            credit(accounts.payee_available(payee.pk), Money(8790, "EUR")),
        ],
        occurred_at=now,
        memo="release",
    )
    post_transaction(
        idempotency_key="test-payout",
        kind="payout",
        entries=[
            debit(accounts.payee_available(payee.pk), Money(8790, "EUR")),
            credit(accounts.PAYOUTS_IN_TRANSIT, Money(8790, "EUR")),
        ],
        occurred_at=now,
        memo="payout",
    )
    r = refund(order, django_capture_on_commit_callbacks, amount_minor=5000)
    assert (f"payee:{payee.pk}:available", "debit", 4395) in entries(r)
    assert balances(payee)["available"] == -4395
    assert check_ledger().ok


def test_outside_the_policy_is_refused_without_an_override(payee):
    make_policy()
    order = paid_order(payee, event_in=timedelta(days=1))  # after the last tier
    with pytest.raises(DomainError) as raised:
        request_policy_refund(order=order, now=timezone.now(), actor=StaffFactory())
    assert raised.value.code == ErrorCode.REFUND_OUTSIDE_POLICY
    assert not Refund.objects.exists()


def test_staff_override_refunds_in_full_and_is_audited(payee, django_capture_on_commit_callbacks):
    make_policy()
    order = paid_order(payee, event_in=timedelta(days=10))
    staff = StaffFactory()
    r = refund(order, django_capture_on_commit_callbacks, actor=staff, override_reason="Venue changed the seats")
    assert (r.amount_minor, r.fee_minor, r.override_reason) == (10000, 0, "Venue changed the seats")
    audit = AuditEntry.objects.get(action="refund.override")
    assert (audit.actor, audit.message, audit.object_id) == (staff, "Venue changed the seats", str(r.pk))
    assert check_ledger().ok


def test_method_not_allowed_by_the_policy(payee):
    make_policy(allow_store_credit=False)
    order = paid_order(payee)
    with pytest.raises(DomainError) as raised:
        request_policy_refund(order=order, now=timezone.now(), method="store_credit")
    assert raised.value.code == ErrorCode.REFUND_OUTSIDE_POLICY


def test_guards_unpaid_order_and_open_dispute(payee):
    from tests.payments.helpers import make_order

    with pytest.raises(DomainError) as raised:
        request_policy_refund(order=make_order(payee), now=timezone.now())
    assert raised.value.code == ErrorCode.ORDER_NOT_REFUNDABLE
    order = paid_order(payee)
    payment = order.payments.get(settles_order=True)
    Dispute.objects.create(
        order=order, payment=payment, provider_ref="dp_1", amount_minor=10000, currency="EUR", opened_at=timezone.now()
    )
    with pytest.raises(DomainError) as raised:
        request_policy_refund(order=order, now=timezone.now())
    assert raised.value.code == ErrorCode.REFUND_BLOCKED_BY_DISPUTE


def test_most_specific_policy_wins(payee, django_capture_on_commit_callbacks):
    make_policy(name="default", tiers=())  # nothing after 14 days before
    make_policy(name="payee", scope="payee", payee=payee, tiers=((timedelta(0), 5000, 0, ""),))
    make_policy(name="event", scope="event", event_ref="concert-1", tiers=((timedelta(0), 2000, 0, ""),))
    order = paid_order(payee, event_in=timedelta(days=3))
    r = refund(order, django_capture_on_commit_callbacks)
    assert (r.fee_minor, r.policy.name) == (2000, "event")
    other = paid_order(payee, event_in=timedelta(days=3), event_ref="other-event")
    assert refund(other, django_capture_on_commit_callbacks).fee_minor == 5000


# --- maker-checker ------------------------------------------------------------------------------------


def approver(**kwargs):
    user = StaffFactory(**kwargs)
    user.user_permissions.add(Permission.objects.get(codename="approve_refund"))
    return user


@pytest.fixture
def big_order(payee, settings):
    settings.TOLLGATE_REFUND_APPROVAL_THRESHOLD = {"default": 5000}
    return paid_order(payee)


def test_below_the_threshold_needs_no_approval(payee, settings, django_capture_on_commit_callbacks):
    settings.TOLLGATE_REFUND_APPROVAL_THRESHOLD = {"default": 5000}
    order = paid_order(payee)
    r = refund(order, django_capture_on_commit_callbacks, amount_minor=5000, actor=StaffFactory())
    assert r.status == RefundStatus.SUCCEEDED


def test_above_the_threshold_waits_for_a_second_staff_user(big_order, django_capture_on_commit_callbacks):
    maker = approver()
    r = refund(big_order, django_capture_on_commit_callbacks, actor=maker)
    assert r.status == RefundStatus.REQUESTED
    assert not LedgerTransaction.objects.filter(idempotency_key=f"refund:{r.pk}").exists()

    with pytest.raises(DomainError) as raised:  # own refund, even with the permission
        approve_refund(refund_id=r.pk, actor=maker, now=timezone.now())
    assert raised.value.code == ErrorCode.APPROVER_IS_REQUESTER

    with pytest.raises(DomainError) as raised:  # staff without the permission
        approve_refund(refund_id=r.pk, actor=StaffFactory(), now=timezone.now())
    assert raised.value.code == ErrorCode.PERMISSION_DENIED
    assert AuditEntry.objects.filter(action="refund.approve", outcome="denied").count() == 2

    checker = approver()
    with django_capture_on_commit_callbacks(execute=True):
        approve_refund(refund_id=r.pk, actor=checker, now=timezone.now())
    r.refresh_from_db()
    assert (r.status, r.approved_by) == (RefundStatus.SUCCEEDED, checker)
    assert AuditEntry.objects.filter(action="refund.approve", outcome="success", actor=checker).exists()
    with pytest.raises(DomainError) as raised:
        approve_refund(refund_id=r.pk, actor=approver(), now=timezone.now())
    assert raised.value.code == ErrorCode.REFUND_NOT_PENDING
    assert check_ledger().ok


def test_rejection_frees_the_amount(big_order, django_capture_on_commit_callbacks):
    r = refund(big_order, django_capture_on_commit_callbacks, actor=StaffFactory())
    rejected = reject_refund(
        refund_id=r.pk, actor=approver(), reason="Buyer already got a replacement", now=timezone.now()
    )
    assert (rejected.status, rejected.rejection_reason) == (RefundStatus.CANCELED, "Buyer already got a replacement")
    assert AuditEntry.objects.filter(action="refund.reject").exists()
    # the whole amount can be asked for again
    again = refund(big_order, django_capture_on_commit_callbacks, actor=StaffFactory(), amount_minor=4000)
    assert again.status == RefundStatus.SUCCEEDED


# --- force majeure ------------------------------------------------------------------------------------


def test_cancel_event_refunds_everything_once(payee, django_capture_on_commit_callbacks):
    make_policy(commission_returned=False, tiers=())
    other_payee = PayeeFactory()
    orders = [paid_order(payee, event_in=timedelta(days=1)) for _ in range(3)]
    unrelated = paid_order(other_payee, event_ref="other")
    with django_capture_on_commit_callbacks(execute=True):
        first = cancel_event(event_ref="concert-1", reason="Storm", now=timezone.now())
    assert (first.orders, len(first.refunds), first.amounts, first.failures) == (3, 3, {"EUR": 30000}, [])
    with django_capture_on_commit_callbacks(execute=True):
        second = cancel_event(event_ref="concert-1", reason="Storm", now=timezone.now())
    assert (second.refunds, second.amounts) == ([], {})
    for order in orders:
        order.refresh_from_db()
        assert order.status == OrderStatus.REFUNDED
    unrelated.refresh_from_db()
    assert unrelated.status == OrderStatus.PAID
    assert Refund.objects.filter(force_majeure=True, commission_returned=True, fee_minor=0).count() == 3
    b = balances(payee)
    assert (b["pending"], b["commission"] - 1000, b["vat"] - 210) == (0, 0, 0)  # only the unrelated order's remain
    assert check_ledger().ok


def test_goods_use_the_time_since_payment(payee, django_capture_on_commit_callbacks):
    make_policy(name="goods", tiers=((timedelta(days=30), 2000, 0, ""),))
    paid_at = timezone.now() - timedelta(days=20)
    order = paid_order(payee, event_in=None, now=paid_at)
    r = refund(order, django_capture_on_commit_callbacks, amount_minor=5000)
    assert (r.amount_minor, r.fee_minor, r.policy_snapshot["lines"][0]["tier"]) == (4000, 1000, "tier 1")
    with pytest.raises(DomainError) as raised:
        request_policy_refund(order=order, now=paid_at + timedelta(days=31))
    assert raised.value.code == ErrorCode.REFUND_OUTSIDE_POLICY
    assert check_ledger().ok


def test_jpy_is_exact(payee, django_capture_on_commit_callbacks):
    make_policy(tiers=((timedelta(days=7), 1250, 0, ""),))  # 12.5 %
    order = paid_order(payee, amount=1004, currency="JPY", event_in=timedelta(days=10))
    line = order.lines.get()
    r = refund(order, django_capture_on_commit_callbacks)
    assert (r.fee_minor, r.amount_minor) == (126, 878)  # 125.5 yen rounds half up
    assert (f"payee:{payee.pk}:pending", "debit", line.payee_share_minor - 126) in entries(r)
    assert balances(payee, currency="JPY")["pending"] == 126
    assert check_ledger().ok


def test_two_payees_each_keep_their_own_fee(payee, django_capture_on_commit_callbacks):
    from payments.services.orders import LineInput

    make_policy()
    other = PayeeFactory()
    order = paid_order(
        payee,
        event_in=timedelta(days=10),
        extra_lines=[
            LineInput(
                payee_id=other.pk,
                description="Merch",
                quantity=1,
                unit_amount_minor=5000,
                kind="event_ticket",
                event_ref="concert-1",
                event_starts_at=timezone.now() + timedelta(days=10),
            )
        ],
    )
    r = refund(order, django_capture_on_commit_callbacks)
    assert (r.amount_minor, r.fee_minor) == (13500, 1500)
    assert balances(payee)["pending"] == 1000
    assert balances(other)["pending"] == 500
    assert check_ledger().ok


def test_cancel_event_reports_a_disputed_order_and_goes_on(payee, django_capture_on_commit_callbacks):
    disputed = paid_order(payee)
    fine = paid_order(payee)
    Dispute.objects.create(
        order=disputed,
        payment=disputed.payments.get(settles_order=True),
        provider_ref="dp_2",
        amount_minor=10000,
        currency="EUR",
        opened_at=timezone.now(),
    )
    with django_capture_on_commit_callbacks(execute=True):
        summary = cancel_event(event_ref="concert-1", reason="Storm", now=timezone.now())
    assert (summary.orders, len(summary.refunds), [t for t, _ in summary.failures]) == (2, 1, [str(disputed.token)])
    fine.refresh_from_db()
    assert fine.status == OrderStatus.REFUNDED
    assert AuditEntry.objects.filter(action="event.cancel", object_id="concert-1").exists()
