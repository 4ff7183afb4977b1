"""Dispute outcomes in the ledger, per bearer (Payee.dispute_loss_bearer / dispute_fee_bearer), on sandbox
payments disputed at the gateway and delivered as signed webhooks. The sandbox's dispute fee is 15.00 (kept
by the gateway when the dispute is won); each outcome leaves the ledger balanced (check_ledger)."""

from __future__ import annotations

import pytest

from ledger.models import LedgerTransaction
from ledger.money import allocate
from payments.providers.sandbox.gateway import sandbox_dispute_fee
from refunds.models import DisputeStatus
from tests.factories import PayeeFactory
from tests.refunds.disputes_helpers import (
    assert_ledger_ok,
    balances,
    close_dispute,
    one_line,
    open_dispute,
    paid_sandbox_order,
)

pytestmark = pytest.mark.django_db

GROSS = 12900
DISPUTE_FEE = 1500


@pytest.fixture
def relay(webhook_relay):
    return webhook_relay


def _setup(payee, capture, *, loss="payee", fee="platform"):
    payee.dispute_loss_bearer, payee.dispute_fee_bearer = loss, fee
    payee.save()
    order, payment = paid_sandbox_order(capture, [one_line(payee, GROSS)])
    line = order.lines.get()
    return order, payment, line.payee_share_minor


def test_the_sandbox_dispute_fee_is_15_in_the_main_unit():
    assert sandbox_dispute_fee("EUR") == DISPUTE_FEE
    assert sandbox_dispute_fee("JPY") == 15


def test_opening_holds_the_payee_share_even_into_negative_available(payee, relay, django_capture_on_commit_callbacks):
    order, payment, share = _setup(payee, django_capture_on_commit_callbacks)
    dispute = open_dispute(django_capture_on_commit_callbacks, payment)
    assert dispute.status == DisputeStatus.OPEN
    assert dispute.held_minor == share
    assert balances([payee]) == {
        "clearing": GROSS - payment.fee_minor - GROSS - DISPUTE_FEE,
        "disputed": GROSS,
        "provider_fees": payment.fee_minor + DISPUTE_FEE,
        "dispute_losses": 0,
        f"{payee.pk}:available": -share,  # the money is still pending: available goes negative
        f"{payee.pk}:reserved": share,
        f"{payee.pk}:pending": share,
    }
    assert_ledger_ok()


def test_lost_payee_bears_the_loss_platform_the_fee(payee, relay, django_capture_on_commit_callbacks):
    order, payment, share = _setup(payee, django_capture_on_commit_callbacks)  # the defaults
    dispute = close_dispute(
        django_capture_on_commit_callbacks, open_dispute(django_capture_on_commit_callbacks, payment), won=False
    )
    assert dispute.status == DisputeStatus.LOST
    assert balances([payee]) == {
        "clearing": -(payment.fee_minor + DISPUTE_FEE),
        "disputed": 0,
        "provider_fees": payment.fee_minor + DISPUTE_FEE,
        "dispute_losses": GROSS - share,  # commission and VAT on it: the platform's part
        f"{payee.pk}:available": -share,
        f"{payee.pk}:reserved": 0,
        f"{payee.pk}:pending": share,
    }
    loss = LedgerTransaction.objects.get(idempotency_key=f"dispute_loss:{dispute.pk}")
    assert sorted(loss.entries.values_list("account__code", "direction", "amount_minor")) == sorted(
        [
            (f"payee:{payee.pk}:reserved", "debit", share),
            ("platform:dispute_losses", "debit", GROSS - share),
            ("provider:sandbox:disputed", "credit", GROSS),
        ]
    )
    assert not LedgerTransaction.objects.filter(kind="dispute_fee").exists()
    assert_ledger_ok()


def test_lost_platform_bears_the_loss_and_releases_the_hold(payee, relay, django_capture_on_commit_callbacks):
    order, payment, share = _setup(payee, django_capture_on_commit_callbacks, loss="platform")
    dispute = close_dispute(
        django_capture_on_commit_callbacks, open_dispute(django_capture_on_commit_callbacks, payment), won=False
    )
    assert balances([payee]) == {
        "clearing": -(payment.fee_minor + DISPUTE_FEE),
        "disputed": 0,
        "provider_fees": payment.fee_minor + DISPUTE_FEE,
        "dispute_losses": GROSS,
        f"{payee.pk}:available": 0,
        f"{payee.pk}:reserved": 0,
        f"{payee.pk}:pending": share,
    }
    loss = LedgerTransaction.objects.get(idempotency_key=f"dispute_loss:{dispute.pk}")
    assert loss.metadata["loss_bearers"] == {str(payee.pk): "platform"}
    assert_ledger_ok()


def test_lost_payee_bears_loss_and_fee(payee, relay, django_capture_on_commit_callbacks):
    order, payment, share = _setup(payee, django_capture_on_commit_callbacks, fee="payee")
    dispute = close_dispute(
        django_capture_on_commit_callbacks, open_dispute(django_capture_on_commit_callbacks, payment), won=False
    )
    assert balances([payee]) == {
        "clearing": -(payment.fee_minor + DISPUTE_FEE),
        "disputed": 0,
        "provider_fees": payment.fee_minor,  # the dispute fee was recovered from the payee
        "dispute_losses": GROSS - share,
        f"{payee.pk}:available": -share - DISPUTE_FEE,
        f"{payee.pk}:reserved": 0,
        f"{payee.pk}:pending": share,
    }
    fee = LedgerTransaction.objects.get(idempotency_key=f"dispute_fee:{dispute.pk}")
    assert sorted(fee.entries.values_list("account__code", "direction", "amount_minor")) == [
        (f"payee:{payee.pk}:available", "debit", DISPUTE_FEE),
        ("platform:provider_fees", "credit", DISPUTE_FEE),
    ]
    assert_ledger_ok()


def test_lost_platform_bears_loss_payee_bears_fee(payee, relay, django_capture_on_commit_callbacks):
    order, payment, share = _setup(payee, django_capture_on_commit_callbacks, loss="platform", fee="payee")
    close_dispute(
        django_capture_on_commit_callbacks, open_dispute(django_capture_on_commit_callbacks, payment), won=False
    )
    result = balances([payee])
    assert result["dispute_losses"] == GROSS
    assert result[f"{payee.pk}:available"] == -DISPUTE_FEE
    assert result[f"{payee.pk}:reserved"] == 0
    assert result["provider_fees"] == payment.fee_minor
    assert_ledger_ok()


@pytest.mark.parametrize(("loss", "fee"), [("payee", "payee"), ("platform", "platform")])
def test_won_releases_the_hold_and_the_platform_keeps_the_fee(
    payee, relay, django_capture_on_commit_callbacks, loss, fee
):
    order, payment, share = _setup(payee, django_capture_on_commit_callbacks, loss=loss, fee=fee)
    dispute = close_dispute(
        django_capture_on_commit_callbacks, open_dispute(django_capture_on_commit_callbacks, payment), won=True
    )
    assert dispute.status == DisputeStatus.WON
    assert balances([payee]) == {
        "clearing": GROSS - payment.fee_minor - DISPUTE_FEE,
        "disputed": 0,
        "provider_fees": payment.fee_minor + DISPUTE_FEE,
        "dispute_losses": 0,
        f"{payee.pk}:available": 0,
        f"{payee.pk}:reserved": 0,
        f"{payee.pk}:pending": share,
    }
    assert not LedgerTransaction.objects.filter(kind__in=["dispute_loss", "dispute_fee"]).exists()
    assert_ledger_ok()


def test_two_payees_each_by_their_own_bearers(payee, relay, django_capture_on_commit_callbacks):
    other = PayeeFactory(legal_name="Eventy Brno s.r.o.", kind="organizer")
    payee.dispute_loss_bearer, payee.dispute_fee_bearer = "payee", "payee"
    payee.save()
    other.dispute_loss_bearer, other.dispute_fee_bearer = "platform", "platform"
    other.save()
    order, payment = paid_sandbox_order(
        django_capture_on_commit_callbacks, [one_line(payee, 10000), one_line(other, 5000, description="Ticket")]
    )
    shares = {line.payee_id: line.payee_share_minor for line in order.lines.all()}
    dispute = open_dispute(django_capture_on_commit_callbacks, payment, amount_minor=9000)  # a part of the 150.00
    held = {payee.pk: 0, other.pk: 0}
    total = sum(shares.values()) * 9000 // 15000
    held[payee.pk], held[other.pk] = allocate(total, [shares[payee.pk], shares[other.pk]])
    assert dispute.held_minor == total
    close_dispute(django_capture_on_commit_callbacks, dispute, won=False)
    fee_parts = dict(zip([payee.pk, other.pk], allocate(DISPUTE_FEE, [held[payee.pk], held[other.pk]]), strict=True))
    result = balances([payee, other])
    assert result[f"{payee.pk}:available"] == -held[payee.pk] - fee_parts[payee.pk]
    assert result[f"{other.pk}:available"] == 0
    assert result[f"{payee.pk}:reserved"] == result[f"{other.pk}:reserved"] == 0
    assert result["dispute_losses"] == 9000 - held[payee.pk]
    assert result["provider_fees"] == payment.fee_minor + DISPUTE_FEE - fee_parts[payee.pk]
    assert result["disputed"] == 0
    assert result["clearing"] == 15000 - payment.fee_minor - 9000 - DISPUTE_FEE
    assert_ledger_ok()


def test_a_late_duplicate_of_the_loss_changes_nothing_even_if_the_bearer_changed(
    payee, relay, django_capture_on_commit_callbacks
):
    from django.utils import timezone

    from payments.providers.registry import get_provider
    from payments.providers.sandbox.models import SandboxEvent
    from refunds.disputes import apply_provider_dispute

    order, payment, share = _setup(payee, django_capture_on_commit_callbacks)
    dispute = close_dispute(
        django_capture_on_commit_callbacks, open_dispute(django_capture_on_commit_callbacks, payment), won=False
    )
    before = balances([payee])
    payee.dispute_loss_bearer = "platform"
    payee.save()
    closed = SandboxEvent.objects.filter(event_type="dispute.closed").latest("pk")
    state = get_provider("sandbox").interpret_event(payload=closed.payload).dispute_state
    apply_provider_dispute(payment=payment, state=state, now=timezone.now())
    assert balances([payee]) == before
    assert LedgerTransaction.objects.filter(idempotency_key=f"dispute_loss:{dispute.pk}").count() == 1
    assert_ledger_ok()
