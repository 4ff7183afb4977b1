import pytest
import responses

from tests.payments.stripe.fake import FakeStripe

WEBHOOK_SECRET = "whsec_test_primary"


@pytest.fixture
def fake_stripe(settings, monkeypatch):
    """Stripe configured and faked at the HTTP layer; the SDK's retry pauses are skipped."""
    settings.STRIPE_SECRET_KEY = "sk_test_fake"
    settings.STRIPE_WEBHOOK_SECRETS = [WEBHOOK_SECRET]
    settings.STRIPE_API_BASE = ""
    monkeypatch.setattr("stripe._http_client.HTTPClient._sleep_time_seconds", lambda self, *a, **k: 0)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake = FakeStripe(mock)
        yield fake
    assert not fake.spec_errors, f"requests not valid against Stripe's spec: {fake.spec_errors}"
