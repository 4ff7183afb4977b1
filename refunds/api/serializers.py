from rest_framework import serializers

from core.api.fields import StrictIntegerField
from refunds.models import Refund, RefundLine, RefundMethod, RefundReason

API_REASONS = [
    RefundReason.REQUESTED_BY_CUSTOMER,
    RefundReason.DUPLICATE_PAYMENT,
    RefundReason.FRAUDULENT,
    RefundReason.OTHER,
]


class RefundLineInputSerializer(serializers.Serializer):
    position = StrictIntegerField(help_text="The order line's position")
    quantity = StrictIntegerField(required=False, allow_null=True, default=None, min_value=1)
    amount = StrictIntegerField(
        required=False, allow_null=True, default=None, min_value=1, help_text="Gross part of the line, minor units"
    )

    def validate(self, attrs):
        if (attrs["quantity"] is None) == (attrs["amount"] is None):
            raise serializers.ValidationError("Give either quantity or amount for each line.")
        return attrs


class RefundCreateInputSerializer(serializers.Serializer):
    order = serializers.UUIDField(help_text="The order's token")
    amount = StrictIntegerField(
        required=False,
        allow_null=True,
        default=None,
        min_value=1,
        help_text="Gross amount to refund (minor units), spread over the lines; or give `lines`; neither = all left",
    )
    lines = RefundLineInputSerializer(many=True, required=False, allow_empty=False, max_length=200)
    reason = serializers.ChoiceField(
        choices=[(r.value, r.label) for r in API_REASONS], default=RefundReason.REQUESTED_BY_CUSTOMER
    )
    method = serializers.ChoiceField(
        choices=[
            (RefundMethod.ORIGINAL.value, RefundMethod.ORIGINAL.label),
            (RefundMethod.STORE_CREDIT.value, RefundMethod.STORE_CREDIT.label),
        ],
        default=RefundMethod.ORIGINAL,
    )
    override_reason = serializers.CharField(
        max_length=500,
        required=False,
        allow_blank=True,
        default="",
        help_text="Refund more than the policy allows (whole part, no fee); audited",
    )
    note = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")

    def validate(self, attrs):
        if attrs.get("lines") and attrs.get("amount") is not None:
            raise serializers.ValidationError("Give either amount or lines, not both.")
        return attrs


class RefundLineOutputSerializer(serializers.ModelSerializer):
    position = serializers.IntegerField(source="order_line.position")
    amount = serializers.IntegerField(source="amount_minor")
    fee = serializers.IntegerField(source="fee_minor")

    class Meta:
        model = RefundLine
        fields = ["position", "amount", "fee"]


class RefundOutputSerializer(serializers.ModelSerializer):
    order = serializers.UUIDField(source="order.token")
    amount = serializers.IntegerField(source="amount_minor", help_text="What the buyer gets back (minor units)")
    fee = serializers.IntegerField(source="fee_minor", help_text="Kept under the refund policy")
    commission_kept = serializers.IntegerField(
        source="commission_kept_minor", help_text="Commission and its VAT not returned under the policy"
    )
    lines = RefundLineOutputSerializer(many=True)

    class Meta:
        model = Refund
        fields = [
            "id",
            "order",
            "status",
            "currency",
            "amount",
            "fee",
            "commission_kept",
            "commission_returned",
            "method",
            "reason",
            "override_reason",
            "force_majeure",
            "lines",
            "created_at",
            "succeeded_at",
        ]
