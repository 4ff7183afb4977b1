"""The chart of accounts (DESIGN.md §4). Accounts exist per currency and are created on first use."""

from __future__ import annotations

from dataclasses import dataclass

from ledger.models import AccountKind, BalanceRule


@dataclass(frozen=True, slots=True)
class AccountSpec:
    code: str
    kind: AccountKind
    balance_rule: BalanceRule = BalanceRule.NONE
    payee_id: int | None = None
    name: str = ""


def provider_clearing(provider: str) -> AccountSpec:
    return AccountSpec(f"provider:{provider}:clearing", AccountKind.ASSET, name=f"Money held for us at {provider}")


def provider_authorized(provider: str) -> AccountSpec:
    """Card holds (pre-authorizations) at provider p: promised to us, not ours until captured."""
    return AccountSpec(
        f"provider:{provider}:authorized",
        AccountKind.ASSET,
        BalanceRule.CREDITS_MUST_NOT_EXCEED_DEBITS,
        name=f"Card holds at {provider}, not ours yet",
    )


BANK_OPERATING = AccountSpec("bank:operating", AccountKind.ASSET, name="Platform bank account")
PAYOUTS_IN_TRANSIT = AccountSpec(
    "payouts:in_transit",
    AccountKind.LIABILITY,
    BalanceRule.DEBITS_MUST_NOT_EXCEED_CREDITS,
    name="Payouts sent, not confirmed",
)
BUYERS_STORE_CREDIT = AccountSpec(
    "buyers:store_credit",
    AccountKind.LIABILITY,
    BalanceRule.DEBITS_MUST_NOT_EXCEED_CREDITS,
    name="Store credit issued to buyers",
)
# Money received that no order can keep (a second payment for a paid order, a payment for a canceled one):
# owed back to the buyer until the automatic refund goes out.
BUYERS_OVERPAYMENTS = AccountSpec(
    "buyers:overpayments",
    AccountKind.LIABILITY,
    BalanceRule.DEBITS_MUST_NOT_EXCEED_CREDITS,
    name="Overpayments owed back to buyers",
)
# The other side of a card hold: the buyer's money, held on their card until it is captured or released.
BUYERS_AUTHORIZATIONS = AccountSpec(
    "buyers:authorizations",
    AccountKind.LIABILITY,
    BalanceRule.DEBITS_MUST_NOT_EXCEED_CREDITS,
    name="Card holds (authorized, not captured)",
)
PLATFORM_COMMISSION = AccountSpec("platform:commission", AccountKind.INCOME, name="Commission (net of VAT)")
PLATFORM_VAT_PAYABLE = AccountSpec("platform:vat_payable", AccountKind.LIABILITY, name="VAT on commission")
PLATFORM_PROVIDER_FEES = AccountSpec("platform:provider_fees", AccountKind.EXPENSE, name="Provider fees")
PLATFORM_DISPUTE_LOSSES = AccountSpec("platform:dispute_losses", AccountKind.EXPENSE, name="Dispute losses")
# Staff adjustments of payee balances: a credit to a payee costs the platform, a debit recovers it.
PLATFORM_PAYEE_ADJUSTMENTS = AccountSpec(
    "platform:payee_adjustments", AccountKind.EXPENSE, name="Adjustments of payee balances"
)
# Store credit given by staff as a goodwill gesture (the platform pays for it) ...
PLATFORM_GOODWILL = AccountSpec("platform:goodwill", AccountKind.EXPENSE, name="Goodwill store credit")
# ... and store credit that expired unspent (the liability released as income).
PLATFORM_STORE_CREDIT_BREAKAGE = AccountSpec(
    "platform:store_credit_breakage", AccountKind.INCOME, name="Expired store credit (breakage)"
)


def payee_pending(payee_id: int) -> AccountSpec:
    return AccountSpec(
        f"payee:{payee_id}:pending",
        AccountKind.LIABILITY,
        BalanceRule.DEBITS_MUST_NOT_EXCEED_CREDITS,
        payee_id,
        "Owed, not yet releasable",
    )


def payee_available(payee_id: int) -> AccountSpec:
    # May go negative: a refund or lost dispute after a payout leaves a debt carried into the next payout.
    return AccountSpec(
        f"payee:{payee_id}:available", AccountKind.LIABILITY, BalanceRule.NONE, payee_id, "Owed and payable"
    )


def payee_reserved(payee_id: int) -> AccountSpec:
    return AccountSpec(
        f"payee:{payee_id}:reserved",
        AccountKind.LIABILITY,
        BalanceRule.DEBITS_MUST_NOT_EXCEED_CREDITS,
        payee_id,
        "Held against disputes",
    )
