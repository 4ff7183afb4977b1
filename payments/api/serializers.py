from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.api.fields import CountryField, StrictIntegerField
from invoicing.vat import VatCategory
from payments.models import CaptureMethod, LineKind, Order, OrderLine, OrderStatus, Payment, PaymentStatus


class BuyerSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    country = CountryField(required=False, allow_blank=True, default="")
    vat_id = serializers.CharField(required=False, allow_blank=True, default="", max_length=20)
    name = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=200, help_text="Printed on the invoice"
    )
    address = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=500, help_text="Printed on the invoice"
    )


class OrderLineInputSerializer(serializers.Serializer):
    payee = StrictIntegerField(help_text="Payee id")
    description = serializers.CharField(max_length=200)
    kind = serializers.ChoiceField(choices=LineKind.choices, default=LineKind.GOODS)
    quantity = StrictIntegerField()
    unit_amount = StrictIntegerField(help_text="Gross unit price (VAT included) in minor units")
    vat_category = serializers.ChoiceField(choices=VatCategory.choices, default=VatCategory.STANDARD)
    event_ref = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    event_starts_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    event_country = CountryField(required=False, allow_blank=True, default="")


class OrderCreateInputSerializer(serializers.Serializer):
    currency = serializers.RegexField(
        r"^[A-Z]{3}$", max_length=3, error_messages={"invalid": "Use an ISO 4217 code such as EUR."}
    )
    reference = serializers.CharField(max_length=100, required=False, allow_null=True, default=None)
    description = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    buyer = BuyerSerializer()
    locale = serializers.ChoiceField(
        choices=[("en", "English"), ("cs", "Czech"), ("de", "German"), ("sk", "Slovak"), ("pl", "Polish")], default="en"
    )
    return_url = serializers.URLField(max_length=500, required=False, allow_blank=True, default="")
    expires_in_minutes = serializers.IntegerField(
        min_value=5, max_value=7 * 24 * 60, required=False, default=None, allow_null=True
    )
    metadata = serializers.DictField(
        child=serializers.CharField(max_length=500, allow_blank=True), required=False, default=dict
    )
    capture_method = serializers.ChoiceField(
        choices=CaptureMethod.choices,
        default=CaptureMethod.AUTOMATIC,
        help_text="manual: the buyer's card is only authorized (where the payment method can) and you capture "
        "it later, all or part, with POST /payments/{id}/capture, or release it with POST /payments/{id}/void.",
    )
    recurring = serializers.BooleanField(
        default=False,
        help_text="The buyer's payment also sets up on-demand recurring payments (where the payment method can): "
        "once paid, the order shows its `recurrence`, which you charge with POST /recurrences/{id}/charges.",
    )
    lines = OrderLineInputSerializer(many=True, allow_empty=True, max_length=settings.TOLLGATE_ORDER_MAX_LINES * 10)

    def validate_metadata(self, value):
        if len(value) > 20:
            raise serializers.ValidationError("At most 20 metadata keys.")
        if any(len(key) > 40 for key in value):
            raise serializers.ValidationError("Metadata keys are at most 40 characters.")
        return value


class OrderLineOutputSerializer(serializers.ModelSerializer):
    payee = serializers.IntegerField(source="payee_id")
    payee_name = serializers.CharField(source="payee.name")
    unit_amount = serializers.IntegerField(source="unit_amount_minor")
    amount = serializers.IntegerField(source="amount_minor")
    commission = serializers.IntegerField(source="commission_minor")
    commission_vat = serializers.IntegerField(source="commission_vat_minor")
    payee_share = serializers.IntegerField(source="payee_share_minor")

    class Meta:
        model = OrderLine
        fields = [
            "position",
            "payee",
            "payee_name",
            "description",
            "kind",
            "quantity",
            "unit_amount",
            "amount",
            "vat_category",
            "vat_rate_bps",
            "commission_bps",
            "commission",
            "commission_vat",
            "payee_share",
            "event_ref",
            "event_starts_at",
            "event_country",
        ]


class PaymentOutputSerializer(serializers.ModelSerializer):
    amount = serializers.IntegerField(source="amount_minor")
    amount_captured = serializers.IntegerField(source="captured_minor")
    amount_refunded = serializers.IntegerField(source="refunded_minor")
    amount_authorized = serializers.IntegerField(
        source="authorized_minor", help_text="Held on the buyer's card and not captured yet (status authorized)"
    )
    status = serializers.ChoiceField(choices=PaymentStatus.choices)

    class Meta:
        model = Payment
        fields = [
            "id",
            "provider",
            "status",
            "amount",
            "amount_authorized",
            "authorization_expires_at",
            "amount_captured",
            "amount_refunded",
            "currency",
            "failure_code",
            "failure_message",
            "created_at",
            "succeeded_at",
        ]


class OrderDocumentSerializer(serializers.Serializer):
    number = serializers.CharField()
    kind = serializers.ChoiceField(choices=[("invoice", "Invoice"), ("credit_note", "Credit note")])
    payee = serializers.IntegerField(source="payee_id", help_text="The seller in whose name it is issued")
    currency = serializers.CharField()
    net = serializers.IntegerField(source="net_minor")
    vat = serializers.IntegerField(source="vat_minor")
    total = serializers.IntegerField(source="gross_minor", help_text="Gross; a credit note's is what it takes back")
    issued_at = serializers.DateTimeField()
    download_url = serializers.SerializerMethodField(help_text="Signed link to the PDF (works without a login)")

    def get_download_url(self, obj) -> str:
        from invoicing.services.delivery import download_url

        return download_url(obj)


class OrderOutputSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="token")
    object = serializers.SerializerMethodField()
    status = serializers.ChoiceField(choices=OrderStatus.choices)
    total = serializers.IntegerField(source="total_minor")
    amount_refunded = serializers.IntegerField(source="refunded_minor")
    buyer = serializers.SerializerMethodField()
    checkout_url = serializers.SerializerMethodField()
    lines = OrderLineOutputSerializer(many=True)
    payments = PaymentOutputSerializer(many=True)
    recurrence = serializers.SerializerMethodField(
        help_text="The recurring payment this order set up (once paid) or is a charge of; null otherwise"
    )
    documents = serializers.SerializerMethodField(
        help_text="Invoices (one per seller, once paid) and credit notes (per refund) issued to the buyer"
    )

    class Meta:
        model = Order
        fields = [
            "id",
            "object",
            "reference",
            "status",
            "currency",
            "total",
            "amount_refunded",
            "description",
            "buyer",
            "locale",
            "return_url",
            "metadata",
            "capture_method",
            "recurring",
            "recurrence",
            "checkout_url",
            "lines",
            "payments",
            "documents",
            "created_at",
            "expires_at",
            "paid_at",
            "canceled_at",
        ]

    def get_object(self, obj) -> str:
        return "order"

    @extend_schema_field(OrderDocumentSerializer(many=True))
    def get_documents(self, obj) -> list[dict]:
        documents = obj.invoices.filter(kind__in=["invoice", "credit_note"]).order_by("issued_at", "pk")
        return OrderDocumentSerializer(documents, many=True).data

    def get_buyer(self, obj) -> dict[str, str]:
        return {
            "email": obj.buyer_email,
            "country": obj.buyer_country,
            "vat_id": obj.buyer_vat_id,
            "name": obj.buyer_name,
            "address": obj.buyer_address,
        }

    def get_checkout_url(self, obj) -> str:
        from payments.selectors import checkout_url

        return checkout_url(obj)

    def get_recurrence(self, obj) -> int | None:
        from recurring.selectors import recurrence_id_for_order

        return recurrence_id_for_order(obj)


class PaymentCaptureInputSerializer(serializers.Serializer):
    amount = StrictIntegerField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Minor units to capture; omit to capture everything authorized. Less than authorized captures "
        "that part and releases the rest on the buyer's card.",
    )


class PaymentActionOutputSerializer(PaymentOutputSerializer):
    order = serializers.UUIDField(source="order.token")

    class Meta(PaymentOutputSerializer.Meta):
        fields = ["order", *PaymentOutputSerializer.Meta.fields]


def line_inputs(lines: list[dict]) -> list:
    """Validated `lines` of an order request as the service's LineInput values."""
    from payments.services.orders import LineInput

    return [
        LineInput(
            payee_id=line["payee"],
            description=line["description"],
            kind=line["kind"],
            quantity=line["quantity"],
            unit_amount_minor=line["unit_amount"],
            vat_category=line["vat_category"],
            event_ref=line["event_ref"],
            event_starts_at=line["event_starts_at"],
            event_country=line["event_country"],
        )
        for line in lines
    ]
