"""Paying payees: single payouts (`core`: create, send by Stripe transfer, confirm, fail, reverse) and payout
runs (`runs`: eligible payees, approval, paying by method; `sepa`: the pain.001 files)."""

from commissions.payouts.core import (
    PROVIDER,
    apply_transfer_reversal,
    apply_transfer_state,
    confirm_payout,
    create_payout,
    fail_payout,
    reverse_payout,
    send_payout,
)

__all__ = [
    "PROVIDER",
    "apply_transfer_reversal",
    "apply_transfer_state",
    "confirm_payout",
    "create_payout",
    "fail_payout",
    "reverse_payout",
    "send_payout",
]
