from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from commissions.api.serializers import PayeeInputSerializer, PayeeOutputSerializer, StripeOnboardingLinkSerializer
from commissions.models import Payee
from commissions.services import create_payee, start_stripe_onboarding
from core.errors import ConflictError, DomainError, ErrorCode, NotFoundError
from core.idempotency import idempotent
from payments.api.views import ERRORS, IDEMPOTENCY_HEADER
from payments.providers.base import (
    ProviderConfigurationError,
    ProviderError,
    ProviderOutcomeUnknown,
    ProviderUnavailable,
)


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
        return Response(PayeeOutputSerializer(_get_payee(payee_id)).data)


def _get_payee(payee_id: int) -> Payee:
    payee = Payee.objects.filter(pk=payee_id).first()
    if payee is None:
        raise NotFoundError("No such payee.")
    return payee


class PayeeStripeOnboardingApi(APIView):
    @extend_schema(
        operation_id="payees_stripe_onboarding",
        request=None,
        responses={
            201: StripeOnboardingLinkSerializer,
            **ERRORS,
            409: OpenApiResponse(
                description="Conflict: idempotency key in use, or Stripe not configured (provider_not_configured)"
            ),
            503: OpenApiResponse(description="Stripe did not answer; retry with the same Idempotency-Key"),
        },
        parameters=[IDEMPOTENCY_HEADER],
        summary="Start (or resume) the payee's Stripe Connect onboarding",
        description=(
            "Creates the payee's Stripe Express account the first time, and a fresh single-use Account Link "
            "every time; send the payee to `url`. Stripe brings the payee back to the payee portal. The "
            "account's status (charges/payouts enabled) follows on the payee as Stripe reports it."
        ),
        tags=["payees"],
    )
    @idempotent
    def post(self, request, payee_id: int):
        payee = _get_payee(payee_id)
        back = settings.PUBLIC_BASE_URL + reverse("portal:dashboard")
        try:
            url = start_stripe_onboarding(
                payee=payee,
                return_url=back,
                refresh_url=back,
                now=timezone.now(),
                actor_label=f"api:{request.auth.name}",
            )
        except ProviderConfigurationError as exc:
            raise ConflictError(
                "Stripe is not configured on this server.", code=ErrorCode.PROVIDER_NOT_CONFIGURED
            ) from exc
        except (ProviderUnavailable, ProviderOutcomeUnknown) as exc:
            raise DomainError(
                "Stripe did not answer. Retry in a moment with the same Idempotency-Key.",
                code=ErrorCode.PROVIDER_UNAVAILABLE,
                status=503,
            ) from exc
        except ProviderError as exc:
            raise DomainError(f"Stripe refused the onboarding: {exc}", code=ErrorCode.PROVIDER_REJECTED) from exc
        payee.refresh_from_db()
        body = StripeOnboardingLinkSerializer({"url": url, "account": payee.stripe_account_id}).data
        return Response(body, status=status.HTTP_201_CREATED)
