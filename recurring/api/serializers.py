from rest_framework import serializers

from core.api.fields import StrictIntegerField
from payments.api.serializers import OrderLineInputSerializer
from recurring.models import ChargeStatus, Recurrence, RecurrenceCycle, RecurrenceStatus, RecurringCharge


class RecurringChargeCreateInputSerializer(serializers.Serializer):
    lines = OrderLineInputSerializer(
        many=True,
        required=False,
        allow_empty=True,
        default=list,
        help_text="The charge's lines, as for an order. Omit them to charge the first order's lines again.",
    )
    amount = StrictIntegerField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Minor units. Without lines: charge the first order's only line at this amount (quantity 1). "
        "With lines: must equal their total.",
    )
    description = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    reference = serializers.CharField(
        max_length=100,
        required=False,
        allow_null=True,
        default=None,
        help_text="Your reference for the charge's order (unique among your orders)",
    )


class RecurrenceStopInputSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")


class RecurringChargeOutputSerializer(serializers.ModelSerializer):
    object = serializers.SerializerMethodField()
    recurrence = serializers.IntegerField(source="recurrence_id")
    status = serializers.ChoiceField(choices=ChargeStatus.choices)
    amount = serializers.IntegerField(source="amount_minor")
    order = serializers.UUIDField(source="order.token", help_text="The charge's own order")
    payment = serializers.IntegerField(
        source="payment_id", allow_null=True, help_text="Our payment for the latest attempt (see the order)"
    )
    needs_review = serializers.BooleanField(
        help_text="The provider's answer to the latest attempt was lost; staff are checking whether it charged. "
        "Not retried meanwhile."
    )

    class Meta:
        model = RecurringCharge
        fields = [
            "id",
            "object",
            "recurrence",
            "status",
            "amount",
            "currency",
            "order",
            "payment",
            "attempts",
            "next_attempt_at",
            "last_error",
            "needs_review",
            "created_at",
            "charged_at",
            "abandoned_at",
        ]

    def get_object(self, obj) -> str:
        return "recurring_charge"


class RecurrenceOutputSerializer(serializers.ModelSerializer):
    object = serializers.SerializerMethodField()
    status = serializers.ChoiceField(choices=RecurrenceStatus.choices)
    cycle = serializers.ChoiceField(choices=RecurrenceCycle.choices)
    first_order = serializers.UUIDField(source="first_order.token", help_text="The order whose payment set it up")
    charges = RecurringChargeOutputSerializer(many=True)

    class Meta:
        model = Recurrence
        fields = [
            "id",
            "object",
            "status",
            "provider",
            "cycle",
            "currency",
            "buyer_email",
            "first_order",
            "valid_until",
            "created_at",
            "stopped_at",
            "stopped_reason",
            "charges",
        ]

    def get_object(self, obj) -> str:
        return "recurrence"
