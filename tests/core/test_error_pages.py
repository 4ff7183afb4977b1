"""An unexpected exception in a buyer-facing view is a generic page: no stack trace, no detail, and the
request id in a header for support (ASVS 7.4.1)."""

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_exception_in_a_page_is_a_generic_500(monkeypatch, caplog):
    def explode(token):
        raise RuntimeError("secret detail sk_live_abc in /srv/tollgate/payments/selectors.py")

    monkeypatch.setattr("payments.checkout.views.order_by_token", explode)
    response = Client(raise_request_exception=False).get("/checkout/7d5e6a4c-1111-4a8e-9a57-0b2c3d4e5f60/")
    assert response.status_code == 500
    page = response.content.decode()
    assert "Something went wrong on our side" in page
    for leak in ("Traceback", "RuntimeError", "sk_live_abc", "selectors.py"):
        assert leak not in page
    assert len(response["X-Request-Id"]) == 16
    assert response["X-Request-Id"] in page  # the buyer can quote it; the log line carries the same id
    assert any(record.exc_info and record.levelname == "ERROR" for record in caplog.records)
