from django.http import HttpRequest, HttpResponseNotAllowed, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from core.errors import error_body
from payments.providers.base import ProviderConfigurationError, WebhookRejected
from payments.providers.registry import get_provider
from payments.webhooks.services import receive_webhook


@csrf_exempt
@require_http_methods(["GET", "POST"])  # GoPay notifies with a GET; the provider refuses what it does not expect
def receive(request: HttpRequest, provider: str) -> JsonResponse:
    """Providers post events here. 2xx means stored (or already stored); 400 means not authentic."""
    try:
        gateway = get_provider(provider)
    except ProviderConfigurationError:
        return JsonResponse(error_body("not_found", "No such provider."), status=404)
    allowed = getattr(gateway, "webhook_methods", ("POST",))
    if request.method not in allowed:
        return HttpResponseNotAllowed(allowed)
    try:
        result = receive_webhook(provider_name=provider, request=request, now=timezone.now())
    except WebhookRejected as exc:
        return JsonResponse(error_body("webhook_rejected", f"Rejected: {exc.code}."), status=400)
    return JsonResponse({"received": result.stored, "duplicates": result.duplicates})
