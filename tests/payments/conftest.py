"""Fixtures for the payments tests: an open order with a pending sandbox payment, and its session."""

import pytest

from tests.payments.gopay.conftest import fake_gopay  # noqa: F401 - the payments API tests capture at GoPay
from tests.payments.helpers import make_order, session_of, start_sandbox_payment


@pytest.fixture
def order(payee):
    return make_order(payee)


@pytest.fixture
def payment(order):
    return start_sandbox_payment(order)


@pytest.fixture
def session(payment):
    return session_of(payment)
