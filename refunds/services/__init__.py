"""Refunds: creating them under the order lock (never more than was captured), sending them to the
provider with a key derived from the refund row, posting the reversal to the ledger once (`core`), and
reconciling what the provider reports (`provider`)."""

from refunds.services.approvals import approve_refund, reject_refund
from refunds.services.core import (
    ACTIVE_STATUSES,
    complete_refund,
    create_overpayment_refund,
    execute_refund,
    fail_refund,
    record_uncaptured_release,
    refund_postings,
    refundable_minor,
    request_refund,
)
from refunds.services.force_majeure import CancelEventSummary, cancel_event
from refunds.services.policy_refunds import quote_refund, request_policy_refund
from refunds.services.provider import apply_provider_refund, resend_stuck_refunds

__all__ = [
    "ACTIVE_STATUSES",
    "apply_provider_refund",
    "approve_refund",
    "CancelEventSummary",
    "cancel_event",
    "quote_refund",
    "reject_refund",
    "request_policy_refund",
    "complete_refund",
    "create_overpayment_refund",
    "execute_refund",
    "fail_refund",
    "record_uncaptured_release",
    "refund_postings",
    "refundable_minor",
    "request_refund",
    "resend_stuck_refunds",
]
