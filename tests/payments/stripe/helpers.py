"""Helpers for the Stripe tests: orders paid through the fake, webhook deliveries with retries driven to the
end, and the checks every money path ends with (the ledger's invariants and I8: our Stripe accounts equal
the balance the fake's objects add up to)."""

from __future__ import annotations

import re
from collections import Counter
from datetime import timedelta
from typing import Any

from django.db.models import Sum
from django.utils import timezone

from ledger import accounts
from ledger.models import Account, LedgerTransaction
from ledger.selectors import account_balance, check_ledger
from payments.models import Order, Payment, WebhookEvent
from payments.services.checkout import start_payment
from payments.services.orders import LineInput, create_order
from payments.webhooks.services import resend_stuck_events, retry_failed_events
from refunds.disputes import provider_disputed
from tests.payments.stripe.conftest import WEBHOOK_SECRET
from tests.payments.stripe.fake import FakeStripe, deliver

WEBHOOK_URL = "/webhooks/stripe/"
UNSETTLED = [WebhookEvent.Status.RECEIVED, WebhookEvent.Status.FAILED, WebhookEvent.Status.PROCESSING]


def stripe_order(
    payee, *, currency: str = "EUR", lines: tuple[tuple[int, int], ...] = ((1, 12900),), **kwargs
) -> Order:
    """An open order of (quantity, unit amount) lines, all sold by `payee`."""
    return create_order(
        currency=currency,
        buyer_email="buyer@example.com",
        buyer_country="CZ",
        now=kwargs.pop("now", None) or timezone.now(),
        lines=[
            LineInput(payee_id=payee.pk, description=f"Item {n}", quantity=quantity, unit_amount_minor=unit)
            for n, (quantity, unit) in enumerate(lines, start=1)
        ],
        **kwargs,
    )


def start_stripe_payment(order: Order) -> Payment:
    return start_payment(order=order, provider_name="stripe", now=timezone.now())


def session_of(fake: FakeStripe, payment: Payment) -> dict[str, Any]:
    return fake.objects[payment.provider_ref]


def deliver_all(client, events: list[dict[str, Any]], capture, *, secret: str = WEBHOOK_SECRET) -> list[int]:
    """Deliver each event to /webhooks/stripe/ and run the processing task it queues. Returns the codes."""
    codes = []
    for event in events:
        with capture(execute=True):
            codes.append(deliver(client, event, secret=secret).status_code)
    return codes


def drain_webhooks(capture, *, rounds: int = 10) -> int:
    """Drive the inbox's retries (the beat tasks, with a clock far enough ahead for any backoff) until no
    event is left received, processing or failed. Returns how many rounds it took."""
    for round_ in range(rounds):
        if not WebhookEvent.objects.filter(status__in=UNSETTLED).exists():
            return round_
        later = timezone.now() + timedelta(days=1 + round_)
        with capture(execute=True):
            resend_stuck_events(now=later)
            retry_failed_events(now=later)
    left = list(WebhookEvent.objects.filter(status__in=UNSETTLED).values_list("event_type", "status", "last_error"))
    raise AssertionError(f"webhook events still unsettled after {rounds} rounds: {left}")


def pay_and_return(client, fake: FakeStripe, payment: Payment) -> tuple[list[dict[str, Any]], Any]:
    """The buyer pays at Stripe and comes back to our return page before any webhook. Returns the events
    Stripe sends (not delivered) and the return page's response."""
    events = fake.pay(payment.provider_ref)
    page = client.get(f"/checkout/{payment.order.token}/return/")
    return events, page


# --- reading back ---------------------------------------------------------------------------------------

_PAYEE = re.compile(r"payee:(\d+):")


def normalized_code(code: str, payee_numbers: dict[int, int]) -> str:
    """payee:<id>:x -> payee:N:x, numbering payees by id so two databases compare."""

    def replace(match: re.Match) -> str:
        payee_id = int(match.group(1))
        number = payee_numbers.setdefault(payee_id, len(payee_numbers) + 1)
        return f"payee:{number}:"

    return _PAYEE.sub(replace, code)


def ledger_balances(currency: str | None = None) -> dict[str, int]:
    """Every non-zero account's balance (debits - credits) by normalized code (and currency if not given)."""
    numbers: dict[int, int] = {}
    rows = Account.objects.order_by("payee_id", "code")
    if currency:
        rows = rows.filter(currency=currency)
    result = {}
    for account in rows:
        net = account.debits_posted - account.credits_posted
        if net:
            code = normalized_code(account.code, numbers)
            result[code if currency else f"{code} {account.currency}"] = net
    return result


def transaction_kinds() -> Counter:
    return Counter(LedgerTransaction.objects.values_list("kind", flat=True))


def stripe_books(currency: str) -> tuple[int, int]:
    """What our ledger says about Stripe: the balance it holds for us (clearing) and what it withholds for
    disputes not settled yet (disputed)."""
    return (
        account_balance(accounts.provider_clearing("stripe"), currency).amount_minor,
        account_balance(provider_disputed("stripe"), currency).amount_minor,
    )


def assert_conserved(fake: FakeStripe, currency: str = "EUR") -> None:
    """The ledger's invariants (I1-I3) and I8: our Stripe accounts equal the fake's objects.

    `provider:stripe:clearing` is Stripe's balance (charges - fees - refunds - dispute withdrawals - dispute
    fees + reinstatements - transfers + reversals) and `provider:stripe:disputed` what Stripe withholds for
    disputes not lost; with no dispute open, clearing + disputed is the balance."""
    report = check_ledger()
    assert report.ok, report
    totals = Account.objects.values("currency").annotate(d=Sum("debits_posted"), c=Sum("credits_posted"))
    assert all(row["d"] == row["c"] for row in totals), list(totals)
    clearing, disputed = stripe_books(currency)
    assert clearing == fake.balance(currency), (clearing, fake.balance_parts(currency))
    assert disputed == fake.withheld(currency), (disputed, fake.withheld(currency))
