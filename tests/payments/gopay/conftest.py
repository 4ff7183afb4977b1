import importlib

import pytest
import responses
from django.core.cache import cache

from tests.payments.gopay.fake import FakeGoPay

GOID = 8123456789
CLIENT_ID = "1061399163"
CLIENT_SECRET = "stDTmVXF"
GATEWAY_URL = "https://gw.sandbox.gopay.com/api"


def _reset_gopay_client() -> None:
    """Drop the adapter's cached tokens / SDK objects (payments.providers.gopay.client.reset), if it exists yet."""
    try:
        module = importlib.import_module("payments.providers.gopay.client")
    except ModuleNotFoundError as exc:
        if exc.name in ("payments.providers.gopay", "payments.providers.gopay.client"):
            return
        raise
    reset = getattr(module, "reset", None)
    if reset is not None:
        reset()


@pytest.fixture
def fake_gopay(settings):
    """GoPay configured and faked at the HTTP layer (nothing passes through to the network)."""
    settings.GOPAY_GOID = GOID
    settings.GOPAY_CLIENT_ID = CLIENT_ID
    settings.GOPAY_CLIENT_SECRET = CLIENT_SECRET
    settings.GOPAY_GATEWAY_URL = GATEWAY_URL
    _reset_gopay_client()
    cache.clear()
    try:
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            fake = FakeGoPay(mock, goid=GOID, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
            yield fake
    finally:
        _reset_gopay_client()
        cache.clear()
    assert not fake.spec_errors, f"requests with keys GoPay does not know: {fake.spec_errors}"
