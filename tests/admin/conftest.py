"""Back-office fixtures: orders, payments, webhook events and refunds made through the real services, and
staff clients holding exactly the permissions a test names. Stripe is the fake of tests/payments/stripe
(the real SDK talking HTTP to it through `responses`)."""

from __future__ import annotations

import pytest
import responses
from django.utils import timezone

from payments.models import WebhookEvent
from payments.providers.registry import get_provider
from payments.providers.sandbox import gateway
from payments.providers.sandbox.models import SandboxEvent
from payments.services.checkout import start_payment
from payments.services.orders import LineInput, create_order
from payments.webhooks.services import process_webhook_event, store_event
from tests.factories import PayeeFactory
from tests.factories import staff_client as make_staff_client
from tests.payments.gopay.conftest import fake_gopay  # noqa: F401 - capture / void of GoPay holds
from tests.payments.stripe.fake import FakeStripe

STRIPE_WEBHOOK_SECRET = "whsec_test_admin"


@pytest.fixture
def make_order(payee):
    def make(*, currency="EUR", unit_amount_minor=12900, quantity=2, reference=None, buyer_email="buyer@example.com"):
        return create_order(
            currency=currency,
            lines=[
                LineInput(
                    payee_id=payee.pk,
                    description="Amplifier 4×100 W",
                    quantity=quantity,
                    unit_amount_minor=unit_amount_minor,
                )
            ],
            buyer_email=buyer_email,
            reference=reference,
            now=timezone.now(),
        )

    return make


@pytest.fixture
def make_succeeded_event():
    """Start a sandbox payment for `order`, let the buyer pay at the gateway, and store (not process) the
    gateway's signed event in our inbox, as the webhook view would."""

    def make(order) -> WebhookEvent:
        now = timezone.now()
        payment = start_payment(order=order, provider_name="sandbox", now=now)
        session = gateway.get_session(payment.provider_ref)
        gateway.buyer_pays(str(session.token), now=now)
        sandbox_event = SandboxEvent.objects.filter(session=session).latest("pk")
        event = get_provider("sandbox").interpret_event(payload=sandbox_event.payload)
        return store_event(provider_name="sandbox", event=event, now=now)

    return make


@pytest.fixture
def make_paid_order(make_order, make_succeeded_event):
    def make(**kwargs):
        order = make_order(**kwargs)
        webhook_event = make_succeeded_event(order)
        assert process_webhook_event(webhook_event_id=webhook_event.pk, now=timezone.now()) == "processed"
        order.refresh_from_db()
        return order

    return make


@pytest.fixture
def staff_client(db):
    """`staff_client("payments.view_order", ...)`: a logged-in staff user with only those permissions."""
    return make_staff_client


@pytest.fixture
def other_payee(db):
    return PayeeFactory(legal_name="Eventy Brno s.r.o.", kind="organizer")


@pytest.fixture
def fake_stripe(settings, monkeypatch):
    """Stripe configured with a test key and faked at the HTTP layer (as tests/payments/stripe/conftest.py)."""
    settings.STRIPE_SECRET_KEY = "sk_test_fake"
    settings.STRIPE_WEBHOOK_SECRETS = [STRIPE_WEBHOOK_SECRET]
    settings.STRIPE_API_BASE = ""
    monkeypatch.setattr("stripe._http_client.HTTPClient._sleep_time_seconds", lambda self, *a, **k: 0)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake = FakeStripe(mock)
        yield fake
    assert not fake.spec_errors, f"requests not valid against Stripe's spec: {fake.spec_errors}"
