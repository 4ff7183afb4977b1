from rest_framework import serializers

from commissions.models import Payee
from core.api.fields import CountryField, StrictIntegerField
from core.errors import ErrorCode
from invoicing.vat_ids import is_valid_vat_id


class PayeeInputSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Payee.Kind.choices)
    legal_name = serializers.CharField(max_length=200)
    display_name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    country = CountryField()
    email = serializers.EmailField()
    address = serializers.CharField(
        max_length=500, required=False, allow_blank=True, default="", help_text="Printed on invoices in its name"
    )
    vat_id = serializers.CharField(max_length=20, required=False, allow_blank=True, default="")
    uses_oss = serializers.BooleanField(required=False, default=False, help_text="Registered for the One-Stop Shop")
    commission_bps = StrictIntegerField(min_value=0, max_value=10000, required=False, allow_null=True, default=None)

    def validate_vat_id(self, value: str) -> str:
        if value and not is_valid_vat_id(value):
            raise serializers.ValidationError(
                "Not a valid EU VAT id: it needs the country prefix, the right format and check digits.",
                code=str(ErrorCode.INVALID_VAT_ID),
            )
        return value


class PayeeOutputSerializer(serializers.ModelSerializer):
    object = serializers.SerializerMethodField()
    kind = serializers.ChoiceField(choices=Payee.Kind.choices)
    status = serializers.ChoiceField(choices=Payee.Status.choices)

    class Meta:
        model = Payee
        fields = [
            "id",
            "object",
            "kind",
            "legal_name",
            "display_name",
            "country",
            "email",
            "address",
            "vat_id",
            "uses_oss",
            "commission_bps",
            "status",
            "stripe_account_id",
            "stripe_charges_enabled",
            "stripe_payouts_enabled",
            "created_at",
        ]
        # The Connect status is Stripe's to set (account.updated), never the client's.
        read_only_fields = ["stripe_account_id", "stripe_charges_enabled", "stripe_payouts_enabled"]

    def get_object(self, obj) -> str:
        return "payee"


class StripeOnboardingLinkSerializer(serializers.Serializer):
    object = serializers.SerializerMethodField()
    url = serializers.URLField(help_text="Stripe's onboarding page for the payee; single use, expires in minutes")
    account = serializers.CharField(help_text="The payee's Stripe Connect account (acct_...)")

    def get_object(self, obj) -> str:
        return "stripe_onboarding_link"
