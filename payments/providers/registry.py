"""Providers by name, from dotted paths in settings (TOLLGATE_PROVIDERS)."""

from __future__ import annotations

from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string

from payments.providers.base import CAPTURE, RECURRING, PaymentProvider, ProviderConfigurationError


@cache
def _load(name: str, path: str) -> PaymentProvider:
    return import_string(path)()


def get_provider(name: str) -> PaymentProvider:
    path = settings.TOLLGATE_PROVIDERS.get(name)
    if path is None:
        raise ProviderConfigurationError(f"Unknown provider {name!r}", code="unknown_provider")
    return _load(name, path)


def required_capabilities(order) -> frozenset[str]:
    """What a provider must be able to do to take this order's payment."""
    needed = set()
    if order.recurring:
        needed.add(RECURRING)
    if order.capture_method == "manual":
        needed.add(CAPTURE)
    return frozenset(needed)


def checkout_providers(order=None) -> list[PaymentProvider]:
    """Providers a buyer may choose at checkout: enabled and configured (and, for an order, able to do
    what it asks: recurring charges, a later capture)."""
    needed = required_capabilities(order) if order is not None else frozenset()
    providers = []
    for name in settings.TOLLGATE_CHECKOUT_PROVIDERS:
        if name in settings.TOLLGATE_PROVIDERS:
            provider = get_provider(name)
            currencies = getattr(provider, "currencies", None)  # None: any currency
            if order is not None and currencies is not None and order.currency not in currencies:
                continue
            if provider.is_configured() and needed <= provider.capabilities:
                providers.append(provider)
    return providers
