"""API authentication: `Authorization: Api-Key <key>` resolves to an `ApiClient` in `request.auth`."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions, throttling

from core.models import ApiClient, ApiClientKey

KEYWORD = "Api-Key"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        keyword, _, key = header.partition(" ")
        if keyword != KEYWORD or not key.strip():
            raise exceptions.AuthenticationFailed("Use 'Authorization: Api-Key <key>'.")
        try:
            api_key = ApiClientKey.objects.get_from_key(key.strip())
        except ApiClientKey.DoesNotExist:
            raise exceptions.AuthenticationFailed("The API key is not valid.") from None
        if api_key.has_expired or not api_key.client.is_active:
            raise exceptions.AuthenticationFailed("The API key is not valid.")
        return AnonymousUser(), api_key.client

    def authenticate_header(self, request):
        return KEYWORD


class IsApiClient(permissions.BasePermission):
    def has_permission(self, request, view):
        return isinstance(request.auth, ApiClient)


class ApiClientRateThrottle(throttling.SimpleRateThrottle):
    """Rate limit per API client (ASVS 13.2.4); anonymous requests are limited per IP."""

    scope = "api_client"

    def get_cache_key(self, request, view):
        if isinstance(request.auth, ApiClient):
            ident = f"client:{request.auth.pk}"
        else:
            ident = f"ip:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "core.api_auth.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization", "description": "`Api-Key <key>`"}
