"""Paying with store credit, as a provider (DESIGN.md §6). There is no hosted page and no outside party:
the buyer types a code on our checkout page (`refunds.store_credit.pay_with_store_credit`), and the payment
succeeds at once through the normal fulfilment path. Refunds give the money back as a new credit."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone

from ledger.money import Money
from payments.providers import base
from payments.providers.base import (
    CheckoutRedirect,
    ProviderEvent,
    ProviderPaymentState,
    ProviderRefundResult,
    ProviderRequestRejected,
    WebhookRejected,
)


class StoreCreditProvider:
    name = "store_credit"
    display_name = "Store credit"
    capabilities = frozenset({base.REFUND, base.PARTIAL_REFUND})
    reports_fees = False  # no fees
    pays_with_code = True  # paid with a code on our checkout page, not on a provider's page

    def is_configured(self) -> bool:
        return bool(getattr(settings, "TOLLGATE_STORE_CREDIT_ENABLED", True))

    def create_checkout(self, *, payment, return_url: str, cancel_url: str, notification_url: str) -> CheckoutRedirect:
        raise ProviderRequestRejected("Store credit is paid with its code on the checkout page.", code="code_required")

    def fetch_payment(self, *, payment) -> ProviderPaymentState:
        """Our own rows are the truth: a payment with a spend succeeded (in the same transaction)."""
        spend = getattr(payment, "store_credit_spend", None)
        if spend is None:
            return ProviderPaymentState(provider_ref=payment.provider_ref, status="failed", failure_code="no_spend")
        amount = Money(spend.amount_minor, payment.currency)
        return ProviderPaymentState(
            provider_ref=payment.provider_ref, status="succeeded", amount=amount, captured=amount, raw_status="spent"
        )

    def expire_checkout(self, *, payment) -> None:
        return None

    def refund(self, *, refund) -> ProviderRefundResult:
        from refunds.store_credit import return_credit_for_refund

        store_credit = return_credit_for_refund(refund=refund, now=timezone.now())
        return ProviderRefundResult(
            provider_ref=f"store_credit_{store_credit.pk}",
            status="succeeded",
            amount=Money(refund.amount_minor, refund.currency),
        )

    def parse_webhook(self, *, request: HttpRequest) -> list[ProviderEvent]:
        raise WebhookRejected("store credit sends no webhooks", code="not_supported")

    def interpret_event(self, *, payload) -> ProviderEvent:
        raise WebhookRejected("store credit sends no webhooks", code="not_supported")
