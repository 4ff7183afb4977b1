"""Stripe faked as in the back-office tests: one definition of the fixture."""

from tests.admin.conftest import fake_stripe  # noqa: F401
