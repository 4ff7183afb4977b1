"""Payees ready to be paid and money put in their balances through the ledger (every posting balanced)."""

from __future__ import annotations

import itertools

from django.utils import timezone

from commissions.models.payees import PayoutMethod
from ledger import accounts
from ledger.money import Money
from ledger.selectors import account_balance
from ledger.services import credit, debit, post_transaction
from tests.factories import PayeeFactory, staff_with

_keys = itertools.count(1)
GOOD_IBAN = "DE89370400440532013000"
GOOD_BIC = "COBADEFFXXX"


def stripe_payee(**kwargs):
    n = next(_keys)
    defaults = {
        "payout_method": PayoutMethod.STRIPE_TRANSFER,
        "payout_method_verified": True,
        "stripe_account_id": f"acct_test_{n}_{timezone.now().timestamp():.0f}",
        "stripe_payouts_enabled": True,
    }
    return PayeeFactory(**(defaults | kwargs))


def sepa_payee(**kwargs):
    defaults = {
        "payout_method": PayoutMethod.SEPA_CREDIT_TRANSFER,
        "payout_method_verified": True,
        "bank_account_holder": "Autozvuk Müller GmbH",
        "iban": GOOD_IBAN,
        "bic": GOOD_BIC,
    }
    return PayeeFactory(**(defaults | kwargs))


def fund(payee, amount_minor: int, currency: str = "EUR", provider: str = "stripe") -> None:
    """A released sale: the provider holds the money, the payee's available balance owes it."""
    money = Money(amount_minor, currency)
    post_transaction(
        idempotency_key=f"test-fund:{payee.pk}:{next(_keys)}",
        kind="release",
        entries=[debit(accounts.provider_clearing(provider), money), credit(accounts.payee_available(payee.pk), money)],
        occurred_at=timezone.now(),
        memo="test funding",
    )


def charge(payee, amount_minor: int, currency: str = "EUR", provider: str = "stripe") -> None:
    """A refund after the payee was paid: taken from available (may go negative)."""
    money = Money(amount_minor, currency)
    post_transaction(
        idempotency_key=f"test-charge:{payee.pk}:{next(_keys)}",
        kind="refund",
        entries=[debit(accounts.payee_available(payee.pk), money), credit(accounts.provider_clearing(provider), money)],
        occurred_at=timezone.now(),
        memo="test refund after payout",
    )


def available(payee, currency: str = "EUR") -> int:
    return account_balance(accounts.payee_available(payee.pk), currency).amount_minor


staff = staff_with
