"""Sandbox orders paid and disputed through the gateway, every event delivered signed to /webhooks/sandbox/
(the `webhook_relay` fixture routes the gateway's HTTP deliveries into the Django test client)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from ledger import accounts
from ledger.selectors import account_balance, check_ledger
from payments.models import Order, Payment, PaymentStatus
from payments.providers.sandbox import gateway
from payments.services.checkout import start_payment
from payments.services.orders import LineInput, create_order
from refunds.disputes import provider_disputed
from refunds.models import Dispute


def paid_sandbox_order(capture, lines: list[LineInput], **order_kwargs) -> tuple[Order, Payment]:
    """An order paid at the sandbox gateway; `capture` is django_capture_on_commit_callbacks."""
    now = timezone.now()
    order = create_order(
        currency=order_kwargs.pop("currency", "EUR"),
        lines=lines,
        buyer_email=order_kwargs.pop("buyer_email", "buyer@example.com"),
        buyer_country=order_kwargs.pop("buyer_country", "CZ"),
        now=now,
        **order_kwargs,
    )
    with capture(execute=True):
        payment = start_payment(order=order, provider_name="sandbox", now=now)
    with capture(execute=True):
        gateway.buyer_pays(str(gateway.get_session(payment.provider_ref).token), now=now)
    payment.refresh_from_db()
    order.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    return order, payment


def one_line(payee, amount: int = 12900, **kwargs) -> LineInput:
    return LineInput(
        payee_id=payee.pk,
        description=kwargs.pop("description", "Amplifier 4x100 W"),
        quantity=1,
        unit_amount_minor=amount,
        **kwargs,
    )


def open_dispute(capture, payment: Payment, **kwargs) -> Dispute:
    with capture(execute=True):
        data = gateway.dispute_as_dict(
            gateway.open_dispute(session_id=payment.provider_ref, reason="fraudulent", now=timezone.now(), **kwargs)
        )
    return Dispute.objects.get(provider_ref=data["id"])


def close_dispute(capture, dispute: Dispute, *, won: bool) -> Dispute:
    with capture(execute=True):
        gateway.close_dispute(dispute.provider_ref, won=won, now=timezone.now())
    dispute.refresh_from_db()
    return dispute


def balance(spec, currency: str = "EUR") -> int:
    return account_balance(spec, currency).amount_minor


def balances(payees, currency: str = "EUR") -> dict[str, int]:
    result = {
        "clearing": balance(accounts.provider_clearing("sandbox"), currency),
        "disputed": balance(provider_disputed("sandbox"), currency),
        "provider_fees": balance(accounts.PLATFORM_PROVIDER_FEES, currency),
        "dispute_losses": balance(accounts.PLATFORM_DISPUTE_LOSSES, currency),
    }
    for payee in payees:
        result[f"{payee.pk}:available"] = balance(accounts.payee_available(payee.pk), currency)
        result[f"{payee.pk}:reserved"] = balance(accounts.payee_reserved(payee.pk), currency)
        result[f"{payee.pk}:pending"] = balance(accounts.payee_pending(payee.pk), currency)
    return result


def assert_ledger_ok() -> None:
    report = check_ledger()
    assert report.ok, report


def soon(days: int = 7):
    return timezone.now() + timedelta(days=days)
