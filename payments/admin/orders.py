"""Admin: Orders and their lines."""

from django.contrib import admin, messages
from django.utils import timezone

from core.admin_tools import (
    CurrencyTotalsMixin,
    ReadOnlyAdminMixin,
    ReadOnlyInline,
    SafeHistoryAdmin,
    admin_link,
    changelist_link,
    money,
    money_field,
    pretty_json,
)
from core.errors import DomainError
from core.templatetags.money import bps_percent
from payments.models import (
    Order,
    OrderLine,
    Payment,
)
from payments.services.orders import cancel_order

# --- Orders ------------------------------------------------------------------------------------------


class OrderLineInline(ReadOnlyInline):
    model = OrderLine
    fields = [
        "position",
        "payee_link",
        "description",
        "kind",
        "quantity",
        "unit_price",
        "amount",
        "vat_rate",
        "commission",
        "commission_vat",
        "payee_share",
    ]
    readonly_fields = fields

    unit_price = money_field("unit_amount_minor", "unit price", currency="order.currency")
    amount = money_field("amount_minor", "amount", currency="order.currency")
    commission_vat = money_field("commission_vat_minor", "VAT on commission", currency="order.currency")
    payee_share = money_field("payee_share_minor", "payee share", currency="order.currency")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("order", "payee").order_by("position")

    @admin.display(description="payee")
    def payee_link(self, obj):
        return admin_link(obj.payee)

    @admin.display(description="VAT rate")
    def vat_rate(self, obj):
        return bps_percent(obj.vat_rate_bps)

    @admin.display(description="commission")
    def commission(self, obj):
        return f"{money(obj.commission_minor, obj.order.currency)} ({bps_percent(obj.commission_bps)})"


class PaymentInline(ReadOnlyInline):
    model = Payment
    fields = [
        "provider",
        "status",
        "amount",
        "captured",
        "refunded",
        "fee",
        "settles_order",
        "needs_review",
        "created_at",
    ]
    readonly_fields = fields
    show_change_link = True

    amount = money_field("amount_minor", "amount")
    captured = money_field("captured_minor", "captured")
    refunded = money_field("refunded_minor", "refunded")
    fee = money_field("fee_minor", "fee")

    def get_queryset(self, request):
        return super().get_queryset(request).order_by("created_at", "pk")


@admin.register(Order)
class OrderAdmin(CurrencyTotalsMixin, ReadOnlyAdminMixin, SafeHistoryAdmin):
    list_display = [
        "short_token",
        "reference",
        "buyer_email",
        "total",
        "refunded",
        "status",
        "api_client",
        "created_at",
    ]
    list_filter = ["status", "currency", "api_client", "payment_link"]
    list_select_related = ["api_client"]
    date_hierarchy = "created_at"
    search_fields = ["reference", "buyer_email", "token"]
    ordering = ["-created_at", "-pk"]
    actions = ["cancel_orders"]
    totals_fields = [("total_minor", "Total"), ("refunded_minor", "Refunded")]
    fieldsets = [
        (None, {"fields": ["token", "reference", "status", "description", "api_client", "payment_link"]}),
        ("Buyer", {"fields": ["buyer_email", "buyer_country", "buyer_vat_id", "locale", "return_url"]}),
        ("Money", {"fields": ["currency", "total", "refunded", "refunds"]}),
        (
            "Dates",
            {"fields": ["created_at", "expires_at", "paid_at", "confirmation_sent_at", "canceled_at", "updated_at"]},
        ),
        ("Metadata", {"fields": ["metadata_pretty"], "classes": ["collapse"]}),
    ]
    readonly_fields = [field for _, options in fieldsets for field in options["fields"]]
    inlines = [OrderLineInline, PaymentInline]

    total = money_field("total_minor", "total")
    refunded = money_field("refunded_minor", "refunded")

    @admin.display(description="order", ordering="token")
    def short_token(self, obj):
        return obj.short_token

    @admin.display(description="refunds")
    def refunds(self, obj):
        return changelist_link("refunds.refund", "Refunds of this order", order__id__exact=obj.pk)

    @admin.display(description="metadata")
    def metadata_pretty(self, obj):
        return pretty_json(obj.metadata)

    # --- "Refund…" (refunds.admin_views: the policy quote per line, then the refund form) ------------------

    def get_urls(self):
        from django.urls import path

        from refunds.admin_views import order_refund_view

        return [
            path(
                "<path:object_id>/refund/",
                self.admin_site.admin_view(lambda request, object_id: order_refund_view(self, request, object_id)),
                name="payments_order_refund",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        from django.contrib.admin.utils import unquote
        from django.urls import reverse

        order = self.get_object(request, unquote(object_id))
        extra_context = dict(extra_context or {})
        if (
            order is not None
            and order.status in ("paid", "partially_refunded")
            and request.user.has_perm("refunds.add_refund")
        ):
            extra_context["refund_url"] = reverse("admin:payments_order_refund", args=[order.pk])
        return super().change_view(request, object_id, form_url, extra_context)

    def has_cancel_order_permission(self, request) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.cancel_order")

    @admin.action(description="Cancel selected open orders", permissions=["cancel_order"])
    def cancel_orders(self, request, queryset):
        now = timezone.now()
        for order in queryset.order_by("pk"):
            try:
                cancel_order(order=order, now=now, actor=request.user, request=request)
            except DomainError as exc:
                self.message_user(request, f"Order {order.short_token}: not canceled. {exc.message}", messages.WARNING)
            else:
                self.message_user(request, f"Order {order.short_token}: canceled.", messages.SUCCESS)
