from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

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
