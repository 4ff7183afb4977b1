"""Fixtures for the recurring-payment tests: GoPay faked at the HTTP layer (the real SDK talks to it)."""

import pytest

from tests.payments.gopay.conftest import fake_gopay  # noqa: F401


@pytest.fixture
def capture(django_capture_on_commit_callbacks):
    return django_capture_on_commit_callbacks


@pytest.fixture
def staff_mail(settings):
    settings.ADMINS = [("Finance", "finance@tollgate.example")]
    settings.TOLLGATE_STAFF_EMAILS = None
