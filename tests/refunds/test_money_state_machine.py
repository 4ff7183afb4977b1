"""A Hypothesis state machine over the money paths of refunds, disputes and payouts, through the real services
(RELIABILITY.md §6 rows 17 and 24; issue 6 "conservation after every refund path and dispute outcome").

Steps, in random order: create and pay an order through the sandbox (1-3 lines, 1-2 payees with their own
commission, EUR, CZK or JPY); refund part or all of what is left (`request_refund` + `execute_refund`), or
more than is left, or while a dispute is open, or on a fully refunded order (each refused with its code and
nothing written); open a dispute (`apply_provider_dispute`, the provider withholding the amount and a fee
or not); close it won or lost; release a payee's pending money to available (no service exists yet: the
release transaction is posted as tests/payments/stripe/test_conservation.py does); pay out part of a
payee's available balance (`create_payout` + `send_payout`, a Stripe Connect transfer to the fake).

After every step:
- `check_ledger().ok` (I1-I3) and every currency nets to zero (I2);
- every payment: refunded <= captured (I4), and refunded == its succeeded refunds; every order: refunded ==
  the part its succeeded refunds undid;
- no-overdraft accounts (pending, reserved, in transit, disputed) are not below zero (I5);
- I8, derived from the rows and the provider's moves the machine sent: sandbox clearing == captured - fees -
  refunded - (withheld + fees) of disputes - what lost disputes took beyond the withheld amount; sandbox
  disputed == what is withheld for disputes not lost; Stripe clearing == - paid payouts;
- per payee and currency: pending + available + reserved + paid out (payouts not failed) == shares earned -
  shares refunded - held shares of lost disputes the payee bears (`dispute_loss_bearer`) - their part of
  the dispute fee when they bear it (`dispute_fee_bearer`); reserved == the holds of the disputes open.
  Payees get each combination of bearers across examples.

Size: TOLLGATE_HYPOTHESIS_PROFILE (as tests/ledger/conftest.py): `dev` (default) 50 runs x 30 steps, `ci`
200 x 50. Each example runs in a savepoint rolled back in `teardown`.
"""

from __future__ import annotations

import itertools
import os
import time
from collections import defaultdict
from dataclasses import dataclass, field

import pytest
from django.db import transaction
from django.db.models import F, Q, Sum
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from commissions.models import Payout
from commissions.payouts import create_payout, send_payout
from core.errors import DomainError, ErrorCode
from ledger import accounts
from ledger.models import Account, BalanceRule, LedgerTransaction
from ledger.money import Money, allocate
from ledger.selectors import account_balance, check_ledger
from ledger.services import credit, debit, post_transaction
from payments.models import Order, OrderLine, OrderStatus, Payment, PaymentStatus
from payments.providers.base import DisputeBalanceMove, ProviderDisputeState
from payments.providers.registry import get_provider
from payments.providers.sandbox import gateway
from payments.services.fulfilment import apply_payment_state
from payments.services.orders import LineInput, create_order
from refunds.disputes import apply_provider_dispute, provider_disputed
from refunds.models import Dispute, DisputeStatus, Refund, RefundLine, RefundStatus
from refunds.services import execute_refund, refundable_minor, request_refund
from tests.factories import PayeeFactory
from tests.payments.helpers import gateway_deliveries_suppressed, session_of, start_sandbox_payment
from tests.payments.stripe.conftest import fake_stripe  # noqa: F401 - the fixture, used here too

pytestmark = pytest.mark.django_db

PROFILE = os.environ.get("TOLLGATE_HYPOTHESIS_PROFILE", "dev")
SCALE = {"dev": (50, 30), "ci": (200, 50)}[PROFILE]
settings.register_profile(
    "tollgate-refund-machine",
    max_examples=SCALE[0],
    stateful_step_count=SCALE[1],
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

CURRENCIES = ["EUR", "CZK", "JPY"]
PAYEES = 2
COMMISSIONS = [None, 0, 850, 1500]  # None: the platform default
ACTIVE_DISPUTE = (DisputeStatus.OPEN, DisputeStatus.UNDER_REVIEW)
_refs = itertools.count(1)


@dataclass
class DisputeModel:
    pk: int
    payment_id: int
    currency: str
    amount: int
    moves: list[DisputeBalanceMove] = field(default_factory=list)
    status: str = DisputeStatus.OPEN

    @property
    def withheld(self) -> int:
        return -sum(move.amount.amount_minor for move in self.moves)

    @property
    def fees(self) -> int:
        return sum(move.fee.amount_minor for move in self.moves)


def _rows() -> tuple[int, ...]:
    return (
        Refund.objects.count(),
        RefundLine.objects.count(),
        LedgerTransaction.objects.count(),
        Order.objects.aggregate(s=Sum("refunded_minor"))["s"] or 0,
        Payment.objects.aggregate(s=Sum("refunded_minor"))["s"] or 0,
    )


class LeakedState(AssertionError):
    """An example started with rows left over from an earlier one."""


class MoneyMachine(RuleBasedStateMachine):
    examples = 0
    steps = 0
    counts: dict[str, int] = defaultdict(int)
    fake = None  # the Stripe fake (payouts are Connect transfers)

    def __init__(self):
        super().__init__()
        # The database forgets each example, so ids (and the idempotency keys made from them) come again:
        # the fake Stripe forgets its keys too, as it would never see an id twice.
        type(self).fake.idempotency.clear()
        if Order.objects.exists() or LedgerTransaction.objects.exists():
            raise LeakedState("an example started with orders or ledger transactions left over")
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        try:
            self.payees = []
            for index in range(PAYEES):
                payee = PayeeFactory(
                    country=["CZ", "DE"][index % 2], stripe_account_id=f"acct_machine{next(_refs):08d}"
                )
                self.payees.append(payee)
        except BaseException:
            self.teardown()
            raise
        type(self).examples += 1
        self.payments: list[int] = []
        self.disputes: dict[int, DisputeModel] = {}  # by payment id: one dispute per payment, as at Stripe
        # What the last invariant check read, for the preconditions (one read per step, not one per rule):
        self.positive: dict[str, list[tuple[object, str, int]]] = {"pending": [], "available": []}
        self.disputable: list[int] = []

    def teardown(self):
        transaction.set_rollback(True)
        self._atomic.__exit__(None, None, None)

    # --- helpers -----------------------------------------------------------------------------------------

    def count(self, what: str) -> None:
        type(self).counts[what] += 1

    def refusal(self, code: str, call) -> None:
        """`call` must be refused with `code` and write nothing."""
        before = _rows()
        with pytest.raises(DomainError) as raised:
            call()
        assert raised.value.code == code, (raised.value.code, code)
        assert _rows() == before, "a refused refund wrote something"
        self.count(f"refused:{code}")

    def open_dispute_of(self, payment_id: int) -> DisputeModel | None:
        model = self.disputes.get(payment_id)
        return model if model is not None and model.status in ACTIVE_DISPUTE else None

    def refundable_payments(self) -> list[int]:
        # Not after a lost dispute: the chargeback gave the buyer the disputed money back, and what is left
        # refundable is covered by test_after_a_lost_dispute_nothing_more_can_be_refunded below.
        return [
            pk for pk in self.payments if not (pk in self.disputes and self.disputes[pk].status == DisputeStatus.LOST)
        ]

    def disputable_payments(self) -> list[int]:
        return [pk for pk in self.disputable if pk not in self.disputes]

    @initialize(
        terms=st.lists(
            st.tuples(
                st.sampled_from(COMMISSIONS),
                st.sampled_from(["payee", "platform"]),
                st.sampled_from(["platform", "payee"]),
            ),
            min_size=PAYEES,
            max_size=PAYEES,
        )
    )
    def payee_terms(self, terms):
        """Each payee's commission and who bears a lost dispute and its fee (drawn, so examples replay)."""
        for payee, (commission, loss, fee) in zip(self.payees, terms, strict=True):
            payee.commission_bps, payee.dispute_loss_bearer, payee.dispute_fee_bearer = commission, loss, fee
            payee.save(update_fields=["commission_bps", "dispute_loss_bearer", "dispute_fee_bearer"])

    # --- pay ---------------------------------------------------------------------------------------------

    @rule(
        currency=st.sampled_from(CURRENCIES),
        lines=st.lists(
            st.tuples(st.integers(0, PAYEES - 1), st.integers(1, 3), st.integers(1, 50_000)), min_size=1, max_size=3
        ),
    )
    def pay(self, currency, lines):
        now = timezone.now()
        order = create_order(
            currency=currency,
            buyer_email="buyer@example.com",
            buyer_country="CZ",
            now=now,
            lines=[
                LineInput(payee_id=self.payees[p].pk, description=f"Item {n}", quantity=q, unit_amount_minor=unit)
                for n, (p, q, unit) in enumerate(lines, start=1)
            ],
        )
        with gateway_deliveries_suppressed():
            payment = start_sandbox_payment(order, now=now)
            gateway.buyer_pays(str(session_of(payment).token), now=now)
        state = get_provider("sandbox").fetch_payment(payment=payment)
        apply_payment_state(payment_id=payment.pk, state=state, now=now, source="machine")
        payment.refresh_from_db()
        assert payment.status == PaymentStatus.SUCCEEDED
        assert payment.captured_minor == order.total_minor
        self.payments.append(payment.pk)
        self.count("pay")

    # --- refunds -----------------------------------------------------------------------------------------

    @precondition(lambda self: self.refundable_payments())
    @rule(data=st.data(), kind=st.sampled_from(["partial", "full", "too_much"]))
    def refund(self, data, kind):
        payment = Payment.objects.get(pk=data.draw(st.sampled_from(self.refundable_payments())))
        order = payment.order
        left = refundable_minor(payment)
        if kind == "full":
            amount = left
        elif kind == "partial":
            amount = data.draw(st.integers(1, max(1, left)))
        else:
            amount = left + data.draw(st.integers(1, 10_000))

        def call():
            return request_refund(order=order, amount_minor=amount, reason="requested_by_customer", now=timezone.now())

        if order.status not in (OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED):
            self.refusal(ErrorCode.REFUND_NOT_ALLOWED, call)
        elif amount <= 0 or amount > left:
            self.refusal(ErrorCode.REFUND_EXCEEDS_CAPTURED if amount > 0 else ErrorCode.AMOUNT_NOT_POSITIVE, call)
        elif self.open_dispute_of(payment.pk) is not None:
            self.refusal(ErrorCode.REFUND_BLOCKED_BY_DISPUTE, call)
        else:
            refund = call()
            refund = execute_refund(refund_id=refund.pk, now=timezone.now())
            assert refund.status == RefundStatus.SUCCEEDED, refund.failure_message
            assert session_of(payment).refunded_minor == Payment.objects.get(pk=payment.pk).refunded_minor
            self.count(f"refund:{kind}")

    # --- disputes ----------------------------------------------------------------------------------------

    @precondition(lambda self: self.disputable_payments())
    @rule(data=st.data(), withheld=st.booleans(), fee=st.sampled_from([0, 1500, 2000]))
    def open_dispute(self, data, withheld, fee):
        payment = Payment.objects.get(pk=data.draw(st.sampled_from(self.disputable_payments())))
        currency = payment.currency
        amount = data.draw(st.integers(1, payment.captured_minor - payment.refunded_minor))
        moves = []
        if withheld:
            moves.append(DisputeBalanceMove(f"txn_dp_{next(_refs)}", Money(-amount, currency), Money(fee, currency)))
        state = ProviderDisputeState(
            provider_ref=f"sbx_dp_{next(_refs)}",
            payment_ref=payment.provider_payment_ref or payment.provider_ref,
            amount=Money(amount, currency),
            status=DisputeStatus.OPEN,
            reason="product_not_received",
            balance_moves=tuple(moves),
        )
        dispute = apply_provider_dispute(payment=payment, state=state, now=timezone.now())
        assert dispute.status == DisputeStatus.OPEN
        self.disputes[payment.pk] = DisputeModel(dispute.pk, payment.pk, currency, amount, moves)
        self.count("dispute:open")

    # Won and lost are two rules rather than one with a drawn boolean: Hypothesis's generation can keep a
    # boolean at one value through whole examples, and a run once closed 28 disputes all lost (none won).
    @precondition(lambda self: any(d.status in ACTIVE_DISPUTE for d in self.disputes.values()))
    @rule(data=st.data())
    def win_dispute(self, data):
        self.close_dispute(data, won=True)

    @precondition(lambda self: any(d.status in ACTIVE_DISPUTE for d in self.disputes.values()))
    @rule(data=st.data())
    def lose_dispute(self, data):
        self.close_dispute(data, won=False)

    def close_dispute(self, data, *, won: bool):
        model = data.draw(st.sampled_from([d for d in self.disputes.values() if d.status in ACTIVE_DISPUTE]))
        if won and model.withheld:  # the provider gives the withheld amount back
            model.moves.append(
                DisputeBalanceMove(
                    f"txn_dp_{next(_refs)}", Money(model.withheld, model.currency), Money(0, model.currency)
                )
            )
        dispute = Dispute.objects.get(pk=model.pk)
        payment = Payment.objects.get(pk=model.payment_id)
        state = ProviderDisputeState(
            provider_ref=dispute.provider_ref,
            payment_ref=payment.provider_payment_ref or payment.provider_ref,
            amount=Money(model.amount, model.currency),
            status=DisputeStatus.WON if won else DisputeStatus.LOST,
            reason="product_not_received",
            balance_moves=tuple(model.moves),  # every event carries all of the dispute's moves so far
        )
        for _ in range(2):  # the closing event delivered twice changes nothing the second time
            dispute = apply_provider_dispute(payment=payment, state=state, now=timezone.now())
        model.status = dispute.status
        assert model.status == (DisputeStatus.WON if won else DisputeStatus.LOST)
        self.count("dispute:won" if won else "dispute:lost")

    # --- payees ------------------------------------------------------------------------------------------

    @precondition(lambda self: self.positive["pending"])
    @rule(data=st.data())
    def release(self, data):
        payee, currency, pending = data.draw(st.sampled_from(self.positive["pending"]))
        amount = Money(data.draw(st.integers(1, pending)), currency)
        post_transaction(
            idempotency_key=f"release:machine:{next(_refs)}",
            kind="release",
            entries=[
                debit(accounts.payee_pending(payee.pk), amount),
                credit(accounts.payee_available(payee.pk), amount),
            ],
            occurred_at=timezone.now(),
            memo="released by the state machine",
        )
        self.count("release")

    @precondition(lambda self: self.positive["available"])
    @rule(data=st.data())
    def payout(self, data):
        payee, currency, available = data.draw(st.sampled_from(self.positive["available"]))
        amount = Money(data.draw(st.integers(1, available)), currency)
        payout = create_payout(payee=payee, amount=amount, now=timezone.now())
        payout = send_payout(payout_id=payout.pk, now=timezone.now())
        assert payout.status == Payout.Status.PAID, payout.failure_message
        assert (
            account_balance(accounts.payee_available(payee.pk), currency).amount_minor
            == available - amount.amount_minor
        )
        self.count("payout")

    # --- invariants --------------------------------------------------------------------------------------

    @invariant()
    def money_is_conserved(self):
        type(self).steps += 1
        report = check_ledger()
        assert report.ok, report
        net: dict[str, int] = defaultdict(int)
        balances: dict[tuple[str, str], int] = {}
        for code, currency, debits, credits, rule_ in Account.objects.values_list(
            "code", "currency", "debits_posted", "credits_posted", "balance_rule"
        ):
            net[currency] += debits - credits
            balances[(code, currency)] = debits - credits
            if rule_ == BalanceRule.DEBITS_MUST_NOT_EXCEED_CREDITS:
                assert debits <= credits, f"I5: {code} {currency} overdrawn"
            if rule_ == BalanceRule.CREDITS_MUST_NOT_EXCEED_DEBITS:
                assert credits <= debits, f"I5: {code} {currency} overdrawn"
        assert all(v == 0 for v in net.values()), f"I2: {dict(net)}"

        def asset(spec, currency) -> int:
            return balances.get((spec.code, currency), 0)

        def liability(spec, currency) -> int:
            return -balances.get((spec.code, currency), 0)

        # Payments and orders against their refunds (I4).
        succeeded = Q(refunds__status=RefundStatus.SUCCEEDED)
        self.disputable = []
        for payment in Payment.objects.filter(pk__in=self.payments).annotate(
            ours=Sum("refunds__amount_minor", filter=succeeded, default=0)
        ):
            assert 0 <= payment.refunded_minor <= payment.captured_minor, "I4"
            assert payment.refunded_minor == payment.ours
            if payment.captured_minor > payment.refunded_minor:
                self.disputable.append(payment.pk)
        for order in Order.objects.filter(payments__pk__in=self.payments).annotate(
            undone=Sum(
                F("refunds__amount_minor") + F("refunds__fee_minor") + F("refunds__commission_kept_minor"),
                filter=succeeded,
                default=0,
            )
        ):
            assert order.refunded_minor == order.undone
            expected = (
                OrderStatus.REFUNDED
                if order.refunded_minor >= order.total_minor
                else OrderStatus.PARTIALLY_REFUNDED
                if order.refunded_minor
                else OrderStatus.PAID
            )
            assert order.status == expected

        # I8: the provider accounts, from the rows and the moves the machine sent.
        expected_clearing: dict[str, int] = defaultdict(int)
        expected_disputed: dict[str, int] = defaultdict(int)
        for currency, captured, fee, refunded in Payment.objects.filter(pk__in=self.payments).values_list(
            "currency", "captured_minor", "fee_minor", "refunded_minor"
        ):
            expected_clearing[currency] += captured - fee - refunded
        for model in self.disputes.values():
            expected_clearing[model.currency] -= model.withheld + model.fees
            if model.status == DisputeStatus.LOST:
                kept = max(0, min(model.withheld, model.amount))
                expected_clearing[model.currency] -= model.amount - kept
                expected_disputed[model.currency] += model.withheld - kept
            else:
                expected_disputed[model.currency] += model.withheld
        paid_out: dict[str, int] = defaultdict(int)
        for currency, amount in Payout.objects.filter(status=Payout.Status.PAID).values_list(
            "currency", "amount_minor"
        ):
            paid_out[currency] += amount
        for currency in CURRENCIES:
            assert asset(accounts.provider_clearing("sandbox"), currency) == expected_clearing[currency], "I8 clearing"
            assert asset(provider_disputed("sandbox"), currency) == expected_disputed[currency], "I8 disputed"
            assert asset(accounts.provider_clearing("stripe"), currency) == -paid_out[currency], "I8 payouts"

        # Payees: what they hold (or were paid) is what they earned, less refunds and lost disputes.
        earned: dict[tuple[int, str], int] = defaultdict(int)
        for payee_id, currency, share in OrderLine.objects.filter(order__payments__pk__in=self.payments).values_list(
            "payee_id", "order__currency", "payee_share_minor"
        ):
            earned[(payee_id, currency)] += share
        for payee_id, currency, share in RefundLine.objects.filter(refund__status=RefundStatus.SUCCEEDED).values_list(
            "order_line__payee_id", "refund__currency", "payee_share_minor"
        ):
            earned[(payee_id, currency)] -= share
        open_holds: dict[tuple[int, str], int] = defaultdict(int)
        bearers = {p.pk: (p.dispute_loss_bearer, p.dispute_fee_bearer) for p in self.payees}
        held_total = 0
        for model in self.disputes.values():
            hold = LedgerTransaction.objects.filter(idempotency_key=f"dispute_hold:{model.pk}").first()
            split = {}
            if hold is not None:
                for entry in hold.entries.select_related("account").filter(account__code__endswith=":reserved"):
                    split[entry.account.payee_id] = entry.amount_minor
            assert sum(split.values()) == Dispute.objects.get(pk=model.pk).held_minor
            held_total += sum(split.values())
            for payee_id, amount in split.items():
                if model.status == DisputeStatus.LOST and bearers[payee_id][0] == "payee":
                    earned[(payee_id, model.currency)] -= amount  # the payee loses the held share
                elif model.status in ACTIVE_DISPUTE:
                    open_holds[(payee_id, model.currency)] += amount
            if model.status == DisputeStatus.LOST and model.fees > 0 and split:
                # the dispute fee, split in proportion to the hold, charged to payees who bear it
                ids = sorted(split)
                for payee_id, part in zip(ids, allocate(model.fees, [split[p] for p in ids]), strict=True):
                    if bearers[payee_id][1] == "payee":
                        earned[(payee_id, model.currency)] -= part
        for payout in Payout.objects.exclude(status=Payout.Status.FAILED):
            earned[(payout.payee_id, payout.currency)] -= payout.amount_minor - payout.reversed_minor
        self.positive = {"pending": [], "available": []}
        for payee in self.payees:
            for currency in CURRENCIES:
                pending = liability(accounts.payee_pending(payee.pk), currency)
                available = liability(accounts.payee_available(payee.pk), currency)
                reserved = liability(accounts.payee_reserved(payee.pk), currency)
                if pending > 0:
                    self.positive["pending"].append((payee, currency, pending))
                if available > 0:
                    self.positive["available"].append((payee, currency, available))
                assert pending + available + reserved == earned[(payee.pk, currency)], (payee.pk, currency)
                assert reserved == open_holds[(payee.pk, currency)], (payee.pk, currency)


def test_money_state_machine(fake_stripe, request):  # noqa: F811
    MoneyMachine.examples = MoneyMachine.steps = 0
    MoneyMachine.counts = defaultdict(int)
    MoneyMachine.fake = fake_stripe
    profile = settings.get_profile("tollgate-refund-machine")
    started = time.monotonic()

    run_state_machine_as_test(MoneyMachine, settings=profile)

    elapsed = time.monotonic() - started
    assert MoneyMachine.examples >= profile.max_examples
    assert MoneyMachine.steps >= profile.max_examples * profile.stateful_step_count // 2
    # every example was rolled back
    assert not Order.objects.exists()
    assert not LedgerTransaction.objects.exists()
    counts = dict(sorted(MoneyMachine.counts.items()))
    # The run covered every path (a distribution that skipped one would prove nothing about it).
    for path in ["pay", "refund:partial", "refund:full", "dispute:open", "dispute:won", "dispute:lost", "payout"]:
        assert counts.get(path, 0) > 0, (path, counts)
    assert counts.get(f"refused:{ErrorCode.REFUND_EXCEEDS_CAPTURED}", 0) > 0, counts
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(
                f"money machine: {MoneyMachine.examples} examples, {MoneyMachine.steps} steps, "
                f"{elapsed:.1f} s; {counts}"
            )


# --- what the machine steers around (found while writing it) -------------------------------------------------


def _paid_sandbox_order(payee, amount: int = 10000) -> Payment:
    order = create_order(
        currency="EUR",
        buyer_email="buyer@example.com",
        buyer_country="CZ",
        now=timezone.now(),
        lines=[LineInput(payee_id=payee.pk, description="Ticket", quantity=1, unit_amount_minor=amount)],
    )
    with gateway_deliveries_suppressed():
        payment = start_sandbox_payment(order)
        gateway.buyer_pays(str(session_of(payment).token), now=timezone.now())
    state = get_provider("sandbox").fetch_payment(payment=payment)
    apply_payment_state(payment_id=payment.pk, state=state, now=timezone.now(), source="test")
    payment.refresh_from_db()
    return payment


def test_after_a_lost_dispute_nothing_more_can_be_refunded(payee):
    payment = _paid_sandbox_order(payee)
    ref = payment.provider_payment_ref or payment.provider_ref
    for status in (DisputeStatus.OPEN, DisputeStatus.LOST):
        state = ProviderDisputeState(
            provider_ref="sbx_dp_lost", payment_ref=ref, amount=Money(10000, "EUR"), status=status
        )
        apply_provider_dispute(payment=payment, state=state, now=timezone.now())
    assert Dispute.objects.get().status == DisputeStatus.LOST

    # The whole 100.00 went back to the buyer through the chargeback; nothing should be refundable now.
    payment.refresh_from_db()
    assert refundable_minor(payment) == 0
    with pytest.raises(DomainError):
        request_refund(order=payment.order, amount_minor=10000, reason="requested_by_customer", now=timezone.now())


def test_a_payout_above_the_available_balance_is_refused(payee):
    payee.stripe_account_id = "acct_machine_i5"
    payee.save(update_fields=["stripe_account_id"])
    _paid_sandbox_order(payee)
    pending = account_balance(accounts.payee_pending(payee.pk), "EUR")
    post_transaction(
        idempotency_key="release:i5",
        kind="release",
        entries=[debit(accounts.payee_pending(payee.pk), pending), credit(accounts.payee_available(payee.pk), pending)],
        occurred_at=timezone.now(),
        memo="released for the test",
    )
    available = account_balance(accounts.payee_available(payee.pk), "EUR").amount_minor

    with pytest.raises(DomainError):
        create_payout(payee=payee, amount=Money(available + 1, "EUR"), now=timezone.now())
    assert Payout.objects.count() == 0
