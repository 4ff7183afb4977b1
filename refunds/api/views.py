"""Refunds API: ask for a refund of one of the client's orders (through the refund policy) and read it."""

from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import DomainError, ErrorCode, NotFoundError
from core.idempotency import idempotent
from payments.api.views import ERRORS, IDEMPOTENCY_HEADER
from payments.selectors import orders_for_client
from refunds.api.serializers import (
    RefundCreateInputSerializer,
    RefundCreateOutputSerializer,
    RefundOutputSerializer,
    TransferOutputSerializer,
)
from refunds.models import Refund
from refunds.services import request_policy_refund

REFUND_ERRORS = {
    **ERRORS,
    409: OpenApiResponse(
        description="Conflict: order_not_refundable, refund_exceeds_captured, refund_blocked_by_dispute, "
        "refund_outside_policy (send override_reason to go beyond the policy), idempotency key in use"
    ),
}


def _refund_for_client(request, refund_id) -> Refund:
    refund = (
        Refund.objects.filter(pk=refund_id, order__api_client=request.auth)
        .select_related("order")
        .prefetch_related("lines__order_line")
        .first()
    )
    if refund is None:
        raise NotFoundError("No such refund.")
    return refund


class RefundCreateApi(APIView):
    @extend_schema(
        operation_id="refunds_create",
        request=RefundCreateInputSerializer,
        responses={201: RefundCreateOutputSerializer, **REFUND_ERRORS},
        parameters=[IDEMPOTENCY_HEADER],
        summary="Refund an order, all or part, under its refund policy",
        description="The policy decides the fee kept and whether commission is returned; the response shows "
        "both. Above the approval threshold the refund is `requested` until staff approve it. Method `transfer` "
        "(where the policy allows it) refunds the lines as store credit and buys `new_lines` with it in a new order "
        "for the same buyer: the answer's `transfer` says what is left to pay (on the new order's checkout page) or "
        "what credit is left.",
        tags=["refunds"],
    )
    @idempotent
    def post(self, request):
        serializer = RefundCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        order = orders_for_client(request.auth).filter(token=data["order"]).first()
        if order is None:
            raise NotFoundError("No such order.")
        lines = None
        if data.get("lines"):
            by_position = {line.position: line.pk for line in order.lines.all()}
            lines = {}
            for item in data["lines"]:
                line_id = by_position.get(item["position"])
                if line_id is None:
                    raise DomainError(
                        f"The order has no line at position {item['position']}.", code=ErrorCode.UNKNOWN_ORDER_LINE
                    )
                lines[line_id] = (
                    {"amount_minor": item["amount"]} if item["amount"] is not None else {"quantity": item["quantity"]}
                )
        if data["method"] == "transfer":
            return self._transfer(request, order, lines, data)
        refund = request_policy_refund(
            order=order,
            lines=lines,
            amount_minor=data["amount"],
            reason=data["reason"],
            method=data["method"],
            actor_label=f"api:{request.auth.name}",
            override_reason=data["override_reason"],
            note=data["note"],
            now=timezone.now(),
            request=request,
        )
        return Response(
            RefundOutputSerializer(_refund_for_client(request, refund.pk)).data, status=status.HTTP_201_CREATED
        )

    def _transfer(self, request, order, lines, data):
        from payments.api.serializers import line_inputs
        from refunds.services.transfers import transfer_to_event

        result = transfer_to_event(
            order=order,
            lines=lines,
            amount_minor=data["amount"],
            new_lines=line_inputs(data["new_lines"]),
            actor_label=f"api:{request.auth.name}",
            override_reason=data["override_reason"],
            note=data["note"],
            now=timezone.now(),
            request=request,
        )
        body = dict(RefundOutputSerializer(_refund_for_client(request, result.refund.pk)).data)
        body["transfer"] = None
        if result.new_order is not None:
            due = result.difference_due_minor
            path = reverse("checkout:page", args=[result.new_order.token])
            body["transfer"] = TransferOutputSerializer(
                {
                    "new_order": result.new_order.token,
                    "new_order_status": result.new_order.status,
                    "difference_due": due,
                    "credit_left": result.credit_left_minor,
                    "checkout_url": f"{settings.PUBLIC_BASE_URL}{path}" if due else "",
                }
            ).data
        return Response(body, status=status.HTTP_201_CREATED)


class RefundDetailApi(APIView):
    @extend_schema(
        operation_id="refunds_retrieve",
        responses={200: RefundOutputSerializer, **ERRORS},
        summary="Read a refund",
        tags=["refunds"],
    )
    def get(self, request, refund_id):
        return Response(RefundOutputSerializer(_refund_for_client(request, refund_id)).data)
