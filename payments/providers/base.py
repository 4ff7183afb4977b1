"""The one interface every payment provider implements, and the values that cross it.

Results are frozen dataclasses carrying `Money`, never SDK objects. Only each provider's `client.py`
talks to the provider (its SDK, or for the sandbox its simulated gateway).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from ledger.money import Money

if TYPE_CHECKING:
    from django.http import HttpRequest

    from payments.models import Payment
    from refunds.models import Refund


# Capabilities a provider may declare.
REFUND = "refund"
PARTIAL_REFUND = "partial_refund"
CAPTURE = "capture"
VOID = "void"
TRANSFER = "transfer"
RECURRING = "recurring"
EXPIRE_CHECKOUT = "expire_checkout"
EVENT_BACKFILL = "event_backfill"  # the provider lists past events: missed deliveries can be fetched


@dataclass(frozen=True, slots=True)
class CheckoutRedirect:
    url: str
    provider_ref: str
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ProviderPaymentState:
    """What the provider says about one payment. `status` is one of PaymentStatus' values."""

    provider_ref: str
    status: str
    amount: Money | None = None
    captured: Money | None = None
    fee: Money | None = None
    provider_payment_ref: str = ""
    provider_charge_ref: str = ""  # the settled charge, where the provider has one apart from the payment
    recurrence_state: str = ""  # "requested", "started" or "stopped" where the payment set up a recurrence
    failure_code: str = ""
    failure_message: str = ""
    raw_status: str = ""


@dataclass(frozen=True, slots=True)
class ProviderRefundResult:
    provider_ref: str
    status: str  # "succeeded", "pending" or "failed"
    amount: Money
    failure_message: str = ""


@dataclass(frozen=True, slots=True)
class ProviderTransferResult:
    provider_ref: str
    status: str
    amount: Money


@dataclass(frozen=True, slots=True)
class ProviderRefundState:
    """A refund as the provider sees it; `our_refund_id` when it carries our metadata (we made it)."""

    provider_ref: str
    payment_ref: str  # the provider's payment object (Stripe: payment intent)
    amount: Money
    status: str  # "pending", "succeeded", "failed" or "canceled"
    our_refund_id: int | None = None
    reason: str = ""
    failure_message: str = ""


@dataclass(frozen=True, slots=True)
class DisputeBalanceMove:
    """Money the provider withheld (amount < 0) or gave back (amount > 0) for a dispute, plus its fee."""

    provider_ref: str
    amount: Money
    fee: Money


@dataclass(frozen=True, slots=True)
class ProviderDisputeState:
    provider_ref: str
    payment_ref: str
    amount: Money
    status: str  # DisputeStatus value: open, under_review, won, lost, warning_closed
    provider_status: str = ""
    reason: str = ""
    evidence_due_by: datetime | None = None
    balance_moves: tuple[DisputeBalanceMove, ...] = ()


@dataclass(frozen=True, slots=True)
class ProviderAccountState:
    """A payee's connected account at the provider (Stripe Connect)."""

    account_ref: str
    our_payee_id: int | None
    charges_enabled: bool
    payouts_enabled: bool
    details_submitted: bool
    requirements: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ProviderTransferState:
    provider_ref: str
    our_payout_id: int | None
    amount: Money
    amount_reversed: Money
    destination: str = ""
    reversals: tuple[tuple[str, Money], ...] = ()  # (reversal id, amount), each applied once


@dataclass(frozen=True, slots=True)
class ProviderBankPayoutState:
    """A payout from a connected account to its own bank."""

    provider_ref: str
    account_ref: str
    amount: Money
    status: str
    failure_message: str = ""
    arrival_date: datetime | None = None


@dataclass(frozen=True, slots=True)
class ProviderEvent:
    """One verified event. `kind` says what it is about and which state field is set:
    "payment" (payment_state), "refund" (refund_state), "refunds_changed" (payment_ref: ask the provider for
    the payment's refunds), "dispute" (dispute_state), "account" (account_state), "transfer"
    (transfer_state), "bank_payout" (bank_payout_state), or "ignored" for types we record but do not act on."""

    event_id: str
    event_type: str
    kind: str
    payload: dict[str, Any]
    occurred_at: datetime | None = None
    payment_state: ProviderPaymentState | None = None
    our_payment_id: int | None = None
    payment_ref: str = ""
    refund_state: ProviderRefundState | None = None
    dispute_state: ProviderDisputeState | None = None
    account_state: ProviderAccountState | None = None
    transfer_state: ProviderTransferState | None = None
    bank_payout_state: ProviderBankPayoutState | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class ProviderError(Exception):
    def __init__(self, message: str = "", *, code: str = ""):
        self.code = code
        super().__init__(message or code or type(self).__name__)


class PaymentDeclined(ProviderError):
    """Final: the provider refused (card declined, insufficient funds). `code` is the provider's reason."""


class ProviderRequestRejected(ProviderError):
    """Final: the provider refused the request itself (nothing left to refund, invalid parameters)."""


class ProviderUnavailable(ProviderError):
    """Transient (5xx, connection refused): retry with backoff, with the same idempotency key."""


class ProviderOutcomeUnknown(ProviderError):
    """We don't know whether it happened (timeout after sending): ask the provider later, never redo blindly."""


class ProviderConfigurationError(ProviderError):
    """Missing or wrong credentials/settings: nothing to retry until someone fixes the configuration."""


class WebhookRejected(ProviderError):
    """The delivery is not authentic or not parseable. `code` is the reason (bad_signature, stale, ...)."""


class PaymentProvider(Protocol):
    name: str
    display_name: str
    capabilities: frozenset[str]

    def is_configured(self) -> bool: ...

    def create_checkout(
        self, *, payment: Payment, return_url: str, cancel_url: str, notification_url: str
    ) -> CheckoutRedirect: ...

    def fetch_payment(self, *, payment: Payment) -> ProviderPaymentState: ...

    def expire_checkout(self, *, payment: Payment) -> None: ...

    def refund(self, *, refund: Refund) -> ProviderRefundResult: ...

    # Optional, by capability: "refund" providers may list a payment's refunds (refunds made elsewhere);
    # "transfer" providers implement transfer/reverse_transfer and connected-account onboarding.

    def parse_webhook(self, *, request: HttpRequest) -> list[ProviderEvent]: ...

    def interpret_event(self, *, payload: dict[str, Any]) -> ProviderEvent: ...
