"""Orders API: one view per operation; the views only translate between HTTP and services."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import DomainError, ErrorCode, NotFoundError
from core.idempotency import idempotent, idempotent_outside_transaction
from payments.api.serializers import (
    OrderCreateInputSerializer,
    OrderOutputSerializer,
    PaymentActionOutputSerializer,
    PaymentCaptureInputSerializer,
    line_inputs,
)
from payments.selectors import orders_for_client, payments_for_client
from payments.services.authorizations import capture_authorized_payment, void_authorized_payment
from payments.services.orders import cancel_order, create_order

IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    required=True,
    description="A unique key per request (e.g. a UUID). Retrying with the same key and body replays the response.",
)
ERRORS = {
    400: OpenApiResponse(description="Invalid request (error.code says why)"),
    401: OpenApiResponse(description="Missing or invalid API key"),
    404: OpenApiResponse(description="Not found"),
    409: OpenApiResponse(description="Conflict (e.g. idempotency key in use, order not open)"),
    422: OpenApiResponse(description="Idempotency key reused with another request"),
}
PROVIDER_ERRORS = {
    409: OpenApiResponse(
        description="Conflict: payment_not_authorized, capture_exceeds_authorized, capture_not_supported, "
        "void_not_supported, provider_rejected (the provider's message), idempotency key in use"
    ),
    503: OpenApiResponse(
        description="provider_unavailable: the provider did not answer; the operation may have happened and the "
        "payment's status is checked again. Read the payment before retrying."
    ),
}


def _get_order(request, token):
    order = orders_for_client(request.auth).filter(token=token).first()
    if order is None:
        raise NotFoundError("No such order.")
    return order


class OrderCreateApi(APIView):
    @extend_schema(
        operation_id="orders_create",
        request=OrderCreateInputSerializer,
        responses={201: OrderOutputSerializer, **ERRORS},
        parameters=[IDEMPOTENCY_HEADER],
        summary="Create an order",
        tags=["orders"],
    )
    @idempotent
    def post(self, request):
        lines = request.data.get("lines") if isinstance(request.data, dict) else None
        if isinstance(lines, list) and len(lines) > settings.TOLLGATE_ORDER_MAX_LINES:
            raise DomainError(
                f"An order may have at most {settings.TOLLGATE_ORDER_MAX_LINES} lines.", code=ErrorCode.TOO_MANY_LINES
            )
        serializer = OrderCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        now = timezone.now()
        expires = data["expires_in_minutes"]
        order = create_order(
            currency=data["currency"],
            buyer_email=data["buyer"]["email"],
            now=now,
            api_client=request.auth,
            reference=data["reference"],
            description=data["description"],
            buyer_country=data["buyer"]["country"],
            buyer_vat_id=data["buyer"]["vat_id"],
            buyer_name=data["buyer"]["name"],
            buyer_address=data["buyer"]["address"],
            locale=data["locale"],
            return_url=data["return_url"],
            metadata=data["metadata"],
            capture_method=data["capture_method"],
            recurring=data["recurring"],
            expires_at=now + timedelta(minutes=expires) if expires else None,
            lines=line_inputs(data["lines"]),
        )
        order = _get_order(request, order.token)
        return Response(OrderOutputSerializer(order).data, status=status.HTTP_201_CREATED)


class OrderDetailApi(APIView):
    @extend_schema(
        operation_id="orders_retrieve",
        responses={200: OrderOutputSerializer, **ERRORS},
        summary="Read an order",
        tags=["orders"],
    )
    def get(self, request, token):
        return Response(OrderOutputSerializer(_get_order(request, token)).data)


class OrderCancelApi(APIView):
    @extend_schema(
        operation_id="orders_cancel",
        request=None,
        responses={200: OrderOutputSerializer, **ERRORS},
        parameters=[IDEMPOTENCY_HEADER],
        summary="Cancel an open order",
        tags=["orders"],
    )
    @idempotent
    def post(self, request, token):
        order = _get_order(request, token)
        cancel_order(order=order, now=timezone.now(), actor_label=f"api:{request.auth.name}")
        return Response(OrderOutputSerializer(_get_order(request, token)).data)


def _get_payment(request, payment_id):
    payment = payments_for_client(request.auth).filter(pk=payment_id).first()
    if payment is None:
        raise NotFoundError("No such payment.")
    return payment


class PaymentCaptureApi(APIView):
    @extend_schema(
        operation_id="payments_capture",
        request=PaymentCaptureInputSerializer,
        responses={200: PaymentActionOutputSerializer, **ERRORS, **PROVIDER_ERRORS},
        parameters=[IDEMPOTENCY_HEADER],
        summary="Capture an authorized payment, all or part",
        description="For orders created with capture_method manual. Capturing less than authorized charges that "
        "part and releases the rest; the order then shows the released rest as refunded.",
        tags=["payments"],
    )
    @idempotent_outside_transaction
    def post(self, request, payment_id):
        payment = _get_payment(request, payment_id)
        serializer = PaymentCaptureInputSerializer(data=request.data if request.data is not None else {})
        serializer.is_valid(raise_exception=True)
        payment = capture_authorized_payment(
            payment_id=payment.pk,
            amount_minor=serializer.validated_data["amount"],
            actor_label=f"api:{request.auth.name}",
            request=request,
            now=timezone.now(),
        )
        return Response(PaymentActionOutputSerializer(_get_payment(request, payment.pk)).data)


class PaymentVoidApi(APIView):
    @extend_schema(
        operation_id="payments_void",
        request=None,
        responses={200: PaymentActionOutputSerializer, **ERRORS, **PROVIDER_ERRORS},
        parameters=[IDEMPOTENCY_HEADER],
        summary="Void (release) an authorized payment",
        description="Releases the hold on the buyer's card; nothing is charged. The order is open again (the buyer "
        "may pay again) unless it has expired.",
        tags=["payments"],
    )
    @idempotent_outside_transaction
    def post(self, request, payment_id):
        payment = _get_payment(request, payment_id)
        payment = void_authorized_payment(
            payment_id=payment.pk, actor_label=f"api:{request.auth.name}", request=request, now=timezone.now()
        )
        return Response(PaymentActionOutputSerializer(_get_payment(request, payment.pk)).data)
