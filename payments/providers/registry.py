"""Providers by name, from dotted paths in settings (TOLLGATE_PROVIDERS)."""

from __future__ import annotations

from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string

from payments.providers.base import PaymentProvider, ProviderConfigurationError


@cache
def _load(name: str, path: str) -> PaymentProvider:
    return import_string(path)()


def get_provider(name: str) -> PaymentProvider:
    path = settings.TOLLGATE_PROVIDERS.get(name)
    if path is None:
        raise ProviderConfigurationError(f"Unknown provider {name!r}", code="unknown_provider")
    return _load(name, path)


def checkout_providers() -> list[PaymentProvider]:
    """Providers a buyer may choose at checkout: enabled and configured."""
    providers = []
    for name in settings.TOLLGATE_CHECKOUT_PROVIDERS:
        if name in settings.TOLLGATE_PROVIDERS:
            provider = get_provider(name)
            if provider.is_configured():
                providers.append(provider)
    return providers
