"""Refunds and disputes, view only: refunds are requested and executed through `refunds.services`
(approvals and a refund form come with the refund-policy work); disputes arrive from the provider and
change only through `refunds.disputes`. Provider references link to the provider's dashboard (Stripe)."""

from django.contrib import admin

import refunds.store_credit_admin  # noqa: F401 - registers the store credit admin
from core.admin_tools import (
    CurrencyTotalsMixin,
    ReadOnlyAdminMixin,
    ReadOnlyInline,
    SafeHistoryAdmin,
    admin_link,
    money_field,
    provider_link,
)
from refunds.models import Refund, RefundLine
from refunds.policy_admin import RefundApprovalMixin


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
class RefundAdmin(RefundApprovalMixin, CurrencyTotalsMixin, ReadOnlyAdminMixin, SafeHistoryAdmin):
    list_display = [
        "id",
        "order_link",
        "payment_link",
        "amount",
        "reason",
        "is_overpayment",
        "method",
        "status",
        "requested_by_label",
        "created_at",
        "succeeded_at",
    ]
    list_filter = [
        "status",
        "reason",
        "method",
        "payment__provider",
        ("lines__order_line__payee", admin.RelatedOnlyFieldListFilter),
        "is_overpayment",
        "force_majeure",
        "currency",
    ]
    list_select_related = ["order", "payment"]
    date_hierarchy = "created_at"
    search_fields = ["order__token", "order__reference", "provider_ref"]
    ordering = ["-created_at", "-pk"]
    totals_fields = [("amount_minor", "Refunded")]
    fieldsets = [
        (None, {"fields": ["order_link", "payment_link", "status", "reason", "is_overpayment", "provider_ref_link"]}),
        ("Money", {"fields": ["currency", "amount", "fee", "fee_to", "commission_returned", "commission_kept"]}),
        (
            "Policy",
            {"fields": ["method", "policy", "force_majeure", "override_reason", "policy_snapshot"]},
        ),
        (
            "Request",
            {
                "fields": [
                    "requested_by",
                    "requested_by_label",
                    "approved_by",
                    "approved_at",
                    "rejection_reason",
                    "note",
                    "failure_message",
                ]
            },
        ),
        ("Dates", {"fields": ["created_at", "succeeded_at", "updated_at"]}),
    ]
    readonly_fields = [field for _, options in fieldsets for field in options["fields"]]
    inlines = [RefundLineInline]

    amount = money_field("amount_minor", "amount")
    fee = money_field("fee_minor", "fee kept")
    commission_kept = money_field("commission_kept_minor", "commission kept")

    @admin.display(description="order", ordering="order__created_at")
    def order_link(self, obj):
        return admin_link(obj.order, obj.order.short_token)

    @admin.display(description="payment", ordering="payment_id")
    def payment_link(self, obj):
        return admin_link(obj.payment, f"#{obj.payment_id}")

    @admin.display(description="provider ref")
    def provider_ref_link(self, obj):
        return provider_link(obj.payment.provider, "refund", obj.provider_ref)


# Disputes: refunds/admin_disputes.py (filters, evidence pack, sandbox test disputes).
from refunds import admin_disputes  # noqa: E402, F401 - registers DisputeAdmin
