"""Shared fixtures.

PostgreSQL-only tests are marked `@pytest.mark.postgres`; on SQLite they skip, unless
TOLLGATE_REQUIRE_SERVICES=1 (set by .ci/run), where a missing PostgreSQL is a failure.
"""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit

import pytest
import responses
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from core.models import ApiClientKey
from tests.factories import ApiClientFactory, PayeeFactory

REQUIRE_SERVICES = os.environ.get("TOLLGATE_REQUIRE_SERVICES") == "1"


@pytest.fixture(autouse=True)
def _require_services(request):
    needs_postgres = request.node.get_closest_marker("postgres") or request.node.get_closest_marker("worker")
    if needs_postgres and connection.vendor != "postgresql":
        message = "needs PostgreSQL: set DATABASE_URL=postgres://..."
        if REQUIRE_SERVICES:
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(autouse=True)
def _clear_cache():
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def api_client_obj(db):
    return ApiClientFactory(name="demo-marketplace")


@pytest.fixture
def api(api_client_obj):
    """A DRF test client authenticated as an API client."""
    _, key = ApiClientKey.objects.create_key(name="test", client=api_client_obj)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return client


@pytest.fixture
def payee(db):
    return PayeeFactory(legal_name="Autozvuk Praha s.r.o.", country="CZ")


@pytest.fixture
def webhook_relay():
    """Routes the sandbox gateway's outgoing HTTP deliveries (requests.post to http://testserver/...) into
    the Django test client, so they go through the real URL, middleware and signature check."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        deliveries: list[tuple[str, int]] = []

        def relay(request):
            path = urlsplit(request.url).path
            headers = {k: v for k, v in request.headers.items() if k.lower().startswith("tollgate-")}
            response = Client().post(path, data=request.body, content_type="application/json", headers=headers)
            deliveries.append((path, response.status_code))
            return response.status_code, {}, response.content

        mock.add_callback(responses.POST, re.compile(r"http://testserver/webhooks/.*"), callback=relay)
        mock.deliveries = deliveries
        yield mock
