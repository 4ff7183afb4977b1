"""Recurrences API: read a recurrence (with its charges), charge it, stop it. One view per operation."""

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import DomainError, ErrorCode, NotFoundError
from core.idempotency import idempotent_outside_transaction
from payments.api.serializers import line_inputs
from payments.api.views import ERRORS, IDEMPOTENCY_HEADER
from recurring.api.serializers import (
    RecurrenceOutputSerializer,
    RecurrenceStopInputSerializer,
    RecurringChargeCreateInputSerializer,
    RecurringChargeOutputSerializer,
)
from recurring.models import RecurringCharge
from recurring.selectors import recurrences_for_client
from recurring.services import charge_recurrence, stop_recurrence

CHARGE_ERRORS = {
    **ERRORS,
    409: OpenApiResponse(
        description="recurrence_stopped or recurrence_not_active (nothing was charged), or the idempotency key is "
        "in use"
    ),
}


def _get_recurrence(request, recurrence_id: int):
    recurrence = recurrences_for_client(request.auth).filter(pk=recurrence_id).first()
    if recurrence is None:
        raise NotFoundError("No such recurrence.")
    return recurrence


class RecurrenceDetailApi(APIView):
    @extend_schema(
        operation_id="recurrences_retrieve",
        responses={200: RecurrenceOutputSerializer, **ERRORS},
        summary="Read a recurring payment and its charges",
        description="A recurrence exists once the buyer has paid an order created with `recurring: true` (the "
        "order shows its id). `active`: it can be charged; `stopped`: by you, by staff, or by the buyer.",
        tags=["recurrences"],
    )
    def get(self, request, recurrence_id: int):
        return Response(RecurrenceOutputSerializer(_get_recurrence(request, recurrence_id)).data)


class RecurrenceChargeCreateApi(APIView):
    @extend_schema(
        operation_id="recurrences_charges_create",
        request=RecurringChargeCreateInputSerializer,
        responses={201: RecurringChargeOutputSerializer, **CHARGE_ERRORS},
        parameters=[IDEMPOTENCY_HEADER],
        summary="Charge a recurring payment",
        description="Creates the charge's own order (the buyer of the first order; the given lines, or the first "
        "order's lines again) and sends it to the provider, which charges the buyer's card without them. The answer "
        "is the charge `processing` (the provider's outcome follows: read the recurrence, or the order), or "
        "`failed` with `next_attempt_at` (retried then; `abandoned` after the last attempt). 409 "
        "`recurrence_stopped` / `recurrence_not_active` when it cannot be charged (nothing is charged).",
        tags=["recurrences"],
    )
    @idempotent_outside_transaction
    def post(self, request, recurrence_id: int):
        recurrence = _get_recurrence(request, recurrence_id)
        lines = request.data.get("lines") if isinstance(request.data, dict) else None
        if isinstance(lines, list) and len(lines) > settings.TOLLGATE_ORDER_MAX_LINES:
            raise DomainError(
                f"A charge may have at most {settings.TOLLGATE_ORDER_MAX_LINES} lines.", code=ErrorCode.TOO_MANY_LINES
            )
        serializer = RecurringChargeCreateInputSerializer(data=request.data or {})
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        charge = charge_recurrence(
            recurrence=recurrence,
            lines=line_inputs(data["lines"]) or None,
            amount_minor=data["amount"],
            description=data["description"],
            reference=data["reference"],
            now=timezone.now(),
            actor_label=f"api:{request.auth.name}",
            request=request,
            idempotency_key=request.idempotency_key,
        )
        charge = RecurringCharge.objects.select_related("order").get(pk=charge.pk)
        return Response(RecurringChargeOutputSerializer(charge).data, status=status.HTTP_201_CREATED)


class RecurrenceStopApi(APIView):
    @extend_schema(
        operation_id="recurrences_stop",
        request=RecurrenceStopInputSerializer,
        responses={200: RecurrenceOutputSerializer, **ERRORS},
        parameters=[IDEMPOTENCY_HEADER],
        summary="Stop a recurring payment",
        description="No charge is started on it any more; charges waiting for a retry are abandoned; the provider "
        "is told. Stopping a stopped recurrence changes nothing.",
        tags=["recurrences"],
    )
    @idempotent_outside_transaction
    def post(self, request, recurrence_id: int):
        recurrence = _get_recurrence(request, recurrence_id)
        serializer = RecurrenceStopInputSerializer(data=request.data or {})
        serializer.is_valid(raise_exception=True)
        stop_recurrence(
            recurrence=recurrence,
            actor_label=f"api:{request.auth.name}",
            reason=serializer.validated_data["reason"] or f"Stopped by {request.auth.name}",
            now=timezone.now(),
            request=request,
        )
        return Response(RecurrenceOutputSerializer(_get_recurrence(request, recurrence_id)).data)
