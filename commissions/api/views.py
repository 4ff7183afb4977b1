from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from commissions.api.serializers import PayeeInputSerializer, PayeeOutputSerializer
from commissions.models import Payee
from commissions.services import create_payee
from core.errors import NotFoundError
from core.idempotency import idempotent
from payments.api.views import ERRORS, IDEMPOTENCY_HEADER


class PayeeListCreateApi(APIView):
    @extend_schema(
        operation_id="payees_list",
        responses={200: PayeeOutputSerializer(many=True), **ERRORS},
        summary="List payees",
        tags=["payees"],
    )
    def get(self, request):
        payees = Payee.objects.order_by("pk")[:500]
        return Response(PayeeOutputSerializer(payees, many=True).data)

    @extend_schema(
        operation_id="payees_create",
        request=PayeeInputSerializer,
        responses={201: PayeeOutputSerializer, **ERRORS},
        parameters=[IDEMPOTENCY_HEADER],
        summary="Create a payee (seller or event organizer)",
        tags=["payees"],
    )
    @idempotent
    def post(self, request):
        serializer = PayeeInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        payee = create_payee(**serializer.validated_data, now=timezone.now(), actor_label=f"api:{request.auth.name}")
        return Response(PayeeOutputSerializer(payee).data, status=status.HTTP_201_CREATED)


class PayeeDetailApi(APIView):
    @extend_schema(
        operation_id="payees_retrieve",
        responses={200: PayeeOutputSerializer, **ERRORS},
        summary="Read a payee",
        tags=["payees"],
    )
    def get(self, request, payee_id: int):
        payee = Payee.objects.filter(pk=payee_id).first()
        if payee is None:
            raise NotFoundError("No such payee.")
        return Response(PayeeOutputSerializer(payee).data)
