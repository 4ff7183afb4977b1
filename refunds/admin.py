"""Refunds and disputes, view only: refunds are requested and executed through `refunds.services`
(approvals and a refund form come with the refund-policy work); disputes arrive from the provider and
change only through `refunds.disputes`. Provider references link to the provider's dashboard (Stripe)."""

from django.contrib import admin

from core.admin_tools import (
    CurrencyTotalsMixin,
    ReadOnlyAdminMixin,
    ReadOnlyInline,
    SafeHistoryAdmin,
    admin_link,
    money_field,
    provider_link,
)
from refunds.models import Dispute, Refund, RefundLine


class RefundLineInline(ReadOnlyInline):
    model = RefundLine
    fields = ["order_line_link", "payee_link", "amount", "commission", "commission_vat", "payee_share"]
    readonly_fields = fields

    amount = money_field("amount_minor", "amount", currency="refund.currency")
    commission = money_field("commission_minor", "commission", currency="refund.currency")
    commission_vat = money_field("commission_vat_minor", "VAT on commission", currency="refund.currency")
    payee_share = money_field("payee_share_minor", "payee share", currency="refund.currency")

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("refund", "order_line__payee")
            .order_by("order_line__position", "pk")
        )

    @admin.display(description="order line")
    def order_line_link(self, obj):
        return str(obj.order_line)

    @admin.display(description="payee")
    def payee_link(self, obj):
        return admin_link(obj.order_line.payee)


@admin.register(Refund)
class RefundAdmin(CurrencyTotalsMixin, ReadOnlyAdminMixin, SafeHistoryAdmin):
    list_display = [
        "id",
        "order_link",
        "payment_link",
        "amount",
        "reason",
        "is_overpayment",
        "status",
        "requested_by_label",
        "created_at",
        "succeeded_at",
    ]
    list_filter = ["status", "reason", "is_overpayment", "currency"]
    list_select_related = ["order", "payment"]
    date_hierarchy = "created_at"
    search_fields = ["order__token", "order__reference", "provider_ref"]
    ordering = ["-created_at", "-pk"]
    totals_fields = [("amount_minor", "Refunded")]
    fieldsets = [
        (None, {"fields": ["order_link", "payment_link", "status", "reason", "is_overpayment", "provider_ref_link"]}),
        ("Money", {"fields": ["currency", "amount"]}),
        ("Request", {"fields": ["requested_by", "requested_by_label", "note", "failure_message"]}),
        ("Dates", {"fields": ["created_at", "succeeded_at", "updated_at"]}),
    ]
    readonly_fields = [field for _, options in fieldsets for field in options["fields"]]
    inlines = [RefundLineInline]

    amount = money_field("amount_minor", "amount")

    @admin.display(description="order", ordering="order__created_at")
    def order_link(self, obj):
        return admin_link(obj.order, obj.order.short_token)

    @admin.display(description="payment", ordering="payment_id")
    def payment_link(self, obj):
        return admin_link(obj.payment, f"#{obj.payment_id}")

    @admin.display(description="provider ref")
    def provider_ref_link(self, obj):
        return provider_link(obj.payment.provider, "refund", obj.provider_ref)


@admin.register(Dispute)
class DisputeAdmin(CurrencyTotalsMixin, ReadOnlyAdminMixin, SafeHistoryAdmin):
    """Chargebacks as the provider reports them (webhooks). The evidence is answered in the provider's
    dashboard, one click away from each row."""

    list_display = [
        "id",
        "provider_ref_link",
        "order_link",
        "payment_link",
        "amount",
        "status",
        "reason",
        "evidence_due_by",
        "held",
        "opened_at",
    ]
    list_filter = ["status", "reason", "currency"]
    list_select_related = ["order", "payment"]
    date_hierarchy = "opened_at"
    search_fields = ["provider_ref", "order__token"]
    ordering = ["-opened_at", "-pk"]
    totals_fields = [("amount_minor", "Disputed"), ("held_minor", "Held from payees")]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "provider_ref_link",
                    "order_link",
                    "payment_link",
                    "payment_intent_link",
                    "status",
                    "provider_status",
                    "reason",
                ]
            },
        ),
        ("Money", {"fields": ["currency", "amount", "held"]}),
        ("Dates", {"fields": ["opened_at", "evidence_due_by", "closed_at", "updated_at"]}),
    ]
    readonly_fields = [field for _, options in fieldsets for field in options["fields"]]

    amount = money_field("amount_minor", "amount")
    held = money_field("held_minor", "held from payees")

    @admin.display(description="dispute", ordering="provider_ref")
    def provider_ref_link(self, obj):
        return provider_link(obj.payment.provider, "dispute", obj.provider_ref)

    @admin.display(description="payment intent")
    def payment_intent_link(self, obj):
        return provider_link(obj.payment.provider, "payment", obj.payment.provider_payment_ref)

    @admin.display(description="order", ordering="order__created_at")
    def order_link(self, obj):
        return admin_link(obj.order, obj.order.short_token)

    @admin.display(description="payment", ordering="payment_id")
    def payment_link(self, obj):
        return admin_link(obj.payment, f"#{obj.payment_id}")
