"""Reads for orders and payments."""

from __future__ import annotations

from django.conf import settings
from django.db.models import QuerySet
from django.urls import reverse

from core.models import ApiClient
from payments.models import Order, Payment


def checkout_url(order: Order) -> str:
    return f"{settings.PUBLIC_BASE_URL}{reverse('checkout:page', args=[order.token])}"


def orders_for_client(client: ApiClient) -> QuerySet[Order]:
    return Order.objects.filter(api_client=client).prefetch_related("lines__payee", "payments")


def payments_for_client(client: ApiClient) -> QuerySet[Payment]:
    return Payment.objects.filter(order__api_client=client).select_related("order")


def order_by_token(token) -> Order | None:
    return Order.objects.filter(token=token).prefetch_related("lines__payee", "payments").first()


def latest_payment(order: Order) -> Payment | None:
    return order.payments.order_by("-created_at", "-pk").first()


def settling_payment(order: Order) -> Payment | None:
    return order.payments.filter(settles_order=True).first()
