from rest_framework import serializers

from core.api.fields import StrictIntegerField
from payments.api.serializers import OrderLineInputSerializer
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
            (RefundMethod.TRANSFER.value, RefundMethod.TRANSFER.label),
        ],
        default=RefundMethod.ORIGINAL,
        help_text="transfer: the lines are refunded as store credit under the policy and `new_lines` are bought "
        "with it in a new order for the same buyer; see `transfer` in the answer for what is left to pay",
    )
    new_lines = OrderLineInputSerializer(
        many=True,
        required=False,
        allow_empty=False,
        max_length=200,
        help_text="With method transfer: the lines of the new order (the new event)",
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
        if (attrs.get("method") == RefundMethod.TRANSFER) != bool(attrs.get("new_lines")):
            raise serializers.ValidationError("Give new_lines with method transfer, and only then.")
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


class TransferOutputSerializer(serializers.Serializer):
    new_order = serializers.UUIDField(help_text="The new order's token (same buyer, the new event)")
    new_order_status = serializers.CharField()
    difference_due = serializers.IntegerField(
        help_text="What the buyer still pays on the new order's checkout page (minor units); 0 when the credit "
        "covered it"
    )
    credit_left = serializers.IntegerField(help_text="Store credit left on the buyer's code (e-mailed to them)")
    checkout_url = serializers.CharField(help_text="Where the buyer pays the difference (empty when none is due)")


class RefundCreateOutputSerializer(RefundOutputSerializer):
    transfer = TransferOutputSerializer(
        read_only=True, allow_null=True, required=False, help_text="Only for method transfer"
    )

    class Meta(RefundOutputSerializer.Meta):
        fields = [*RefundOutputSerializer.Meta.fields, "transfer"]
