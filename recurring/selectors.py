"""Reads for recurrences and their charges."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from core.models import ApiClient
from payments.models import Order
from recurring.models import Recurrence, RecurringCharge


def recurrences_for_client(client: ApiClient) -> QuerySet[Recurrence]:
    """The recurrences an API client may see: those its own orders set up."""
    charges = RecurringCharge.objects.select_related("order", "payment").order_by("created_at", "pk")
    return (
        Recurrence.objects.filter(first_order__api_client=client)
        .select_related("first_order")
        .prefetch_related(Prefetch("charges", queryset=charges))
    )


def recurrence_id_for_order(order: Order) -> int | None:
    """The recurrence an order set up (a first order) or belongs to (a recurring charge's order)."""
    set_up = Recurrence.objects.filter(first_order=order).order_by("pk").values_list("pk", flat=True).first()
    if set_up is not None:
        return set_up
    return RecurringCharge.objects.filter(order=order).values_list("recurrence_id", flat=True).first()
