from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static

from payments.models import PaymentLink


def landing(request: HttpRequest) -> HttpResponse:
    links = PaymentLink.objects.filter(is_active=True).prefetch_related("lines").order_by("pk")
    return render(request, "landing.html", {"links": links})


def ratelimited(request: HttpRequest, exception=None) -> HttpResponse:
    return render(
        request,
        "errors/refused.html",
        {"title": "Too many attempts", "detail": "Please wait a minute and try again.", "code": "rate_limited"},
        status=429,
    )


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness and database reachability, for the container health check."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"ok": True})


def server_error(request: HttpRequest) -> HttpResponse:
    """Generic 500 page with an error id (the request id, also in the logs) and no detail (ASVS 7.4.1)."""
    from core.middleware import current_request_id

    error_id = getattr(request, "request_id", None) or current_request_id()
    if request.path.startswith(("/api/", "/webhooks/")):
        return JsonResponse(
            {
                "error": {
                    "code": "internal_error",
                    "error_id": error_id,
                    "message": f"Something went wrong on our side. Quote error id {error_id}.",
                }
            },
            status=500,
        )
    return render(request, "500.html", {"error_id": error_id}, status=500)


def favicon(request: HttpRequest) -> HttpResponse:
    # Resolved per request: the production storage needs its manifest, which exists only after collectstatic.
    return redirect(static("img/favicon.svg"), permanent=True)
