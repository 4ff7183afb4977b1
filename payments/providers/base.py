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
class ProviderEvent:
    """One verified event. `kind` says what it is about: "payment" (then `payment_state` is set),
    "refund", or "ignored" for types we record but do not act on."""

    event_id: str
    event_type: str
    kind: str
    payload: dict[str, Any]
    occurred_at: datetime | None = None
    payment_state: ProviderPaymentState | None = None
    our_payment_id: int | None = None
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

    def parse_webhook(self, *, request: HttpRequest) -> list[ProviderEvent]: ...

    def interpret_event(self, *, payload: dict[str, Any]) -> ProviderEvent: ...
