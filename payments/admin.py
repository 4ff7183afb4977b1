"""Orders, payments, payment links and the webhook inbox in the back office.

Orders, payments and webhook events are view only: they change through the services (cancel an order,
replay an event), each behind its own permission and written to the audit trail by the service."""

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from core.admin_tools import (
    AuditedAdminMixin,
    CurrencyTotalsMixin,
    NoDeleteMixin,
    ReadOnlyAdminMixin,
    ReadOnlyInline,
    SafeHistoryAdmin,
    admin_link,
    changelist_link,
    money,
    money_field,
    pretty_json,
    provider_link,
)
from core.errors import DomainError
from core.templatetags.money import bps_percent
from ledger.money import enabled_currencies
from payments.models import Order, OrderLine, Payment, PaymentLink, PaymentLinkLine, WebhookEvent, WebhookRejection
from payments.services.orders import cancel_order
from payments.webhooks.services import reprocess_webhook_event

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


# --- Payments ----------------------------------------------------------------------------------------


@admin.register(Payment)
class PaymentAdmin(CurrencyTotalsMixin, ReadOnlyAdminMixin, SafeHistoryAdmin):
    list_display = [
        "id",
        "order_link",
        "provider",
        "status",
        "amount",
        "captured",
        "refunded",
        "fee",
        "needs_review",
        "review_reason",
        "created_at",
    ]
    list_filter = ["provider", "status", "needs_review", "review_reason", "currency"]
    list_select_related = ["order"]
    date_hierarchy = "created_at"
    search_fields = ["provider_ref", "provider_payment_ref", "provider_charge_ref", "order__token", "order__reference"]
    ordering = ["-created_at", "-pk"]
    totals_fields = [
        ("amount_minor", "Amount"),
        ("captured_minor", "Captured"),
        ("refunded_minor", "Refunded"),
        ("fee_minor", "Provider fees"),
    ]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "order_link",
                    "provider",
                    "status",
                    "settles_order",
                    "checkout_ref",
                    "payment_ref",
                    "charge_ref",
                ]
            },
        ),
        ("Money", {"fields": ["currency", "amount", "captured", "refunded", "fee"]}),
        ("Review", {"fields": ["needs_review", "review_reason", "failure_code", "failure_message", "fraud_status"]}),
        ("Dates", {"fields": ["created_at", "status_changed_at", "succeeded_at", "updated_at"]}),
        ("Related", {"fields": ["webhook_events", "refunds", "disputes", "checkout_url"]}),
    ]
    readonly_fields = [field for _, options in fieldsets for field in options["fields"]]

    amount = money_field("amount_minor", "amount")
    captured = money_field("captured_minor", "captured")
    refunded = money_field("refunded_minor", "refunded")
    fee = money_field("fee_minor", "fee")

    @admin.display(description="order", ordering="order__created_at")
    def order_link(self, obj):
        return admin_link(obj.order, obj.order.short_token)

    @admin.display(description="provider ref (checkout session)")
    def checkout_ref(self, obj):
        return provider_link(obj.provider, "session", obj.provider_ref)

    @admin.display(description="provider payment ref (payment intent)")
    def payment_ref(self, obj):
        return provider_link(obj.provider, "payment", obj.provider_payment_ref)

    @admin.display(description="provider charge ref")
    def charge_ref(self, obj):
        return provider_link(obj.provider, "charge", obj.provider_charge_ref)

    @admin.display(description="webhook events")
    def webhook_events(self, obj):
        return changelist_link("payments.webhookevent", "Events for this payment", payment__id__exact=obj.pk)

    @admin.display(description="refunds")
    def refunds(self, obj):
        return changelist_link("refunds.refund", "Refunds of this payment", payment__id__exact=obj.pk)

    @admin.display(description="disputes")
    def disputes(self, obj):
        return changelist_link("refunds.dispute", "Disputes of this payment", payment__id__exact=obj.pk)


# --- Payment links -----------------------------------------------------------------------------------


class PaymentLinkForm(forms.ModelForm):
    currency = forms.ChoiceField(choices=lambda: [(c, c) for c in enabled_currencies()])

    class Meta:
        model = PaymentLink
        fields = ["title", "slug", "description", "currency", "is_active", "allow_quantity", "max_quantity"]


class PaymentLinkLineInline(admin.TabularInline):
    model = PaymentLinkLine
    extra = 0
    autocomplete_fields = ["payee"]
    fields = [
        "payee",
        "description",
        "kind",
        "quantity",
        "unit_amount_minor",
        "unit_price",
        "vat_category",
        "event_ref",
        "event_starts_at",
        "event_country",
    ]
    readonly_fields = ["unit_price"]

    unit_price = money_field("unit_amount_minor", "unit price", currency="link.currency")

    def get_extra(self, request, obj=None, **kwargs):
        return 0 if obj is not None else 1


@admin.register(PaymentLink)
class PaymentLinkAdmin(AuditedAdminMixin, NoDeleteMixin, SafeHistoryAdmin):
    """Reusable links (/pay/<slug>/) with fixed lines. Deactivate instead of deleting: orders refer to them."""

    form = PaymentLinkForm
    list_display = ["title", "slug", "public_url", "currency", "is_active", "created_by", "created_at"]
    list_filter = ["is_active", "currency"]
    list_select_related = ["created_by"]
    search_fields = ["title", "slug"]
    ordering = ["-created_at", "-pk"]
    prepopulated_fields = {"slug": ["title"]}
    fieldsets = [
        (None, {"fields": ["title", "slug", "public_url", "description", "currency", "is_active"]}),
        ("Quantity", {"fields": ["allow_quantity", "max_quantity"]}),
        ("Record", {"fields": ["created_by", "created_at", "updated_at"]}),
    ]
    readonly_fields = ["public_url", "created_by", "created_at", "updated_at"]
    inlines = [PaymentLinkLineInline]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        # The lines' prices are minor units of the link's currency: changing it would reprice them.
        return [*fields, "currency"] if obj is not None else fields

    def get_prepopulated_fields(self, request, obj=None):
        return {} if obj is not None else super().get_prepopulated_fields(request, obj)

    @admin.display(description="public URL")
    def public_url(self, obj):
        if obj is None or not obj.slug:
            return "–"
        url = settings.PUBLIC_BASE_URL + reverse("checkout:payment_link", args=[obj.slug])
        return format_html('<a href="{}" rel="noopener">{}</a>', url, url)

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


# --- Webhook inbox -----------------------------------------------------------------------------------


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "received_at",
        "provider",
        "event_type",
        "event_id",
        "status",
        "attempts",
        "processed_at",
        "payment_link",
    ]
    list_filter = ["provider", "status", "event_type"]
    list_select_related = ["payment"]
    date_hierarchy = "received_at"
    search_fields = ["event_id"]
    ordering = ["-received_at", "-pk"]
    actions = ["reprocess"]
    fields = [
        "provider",
        "event_type",
        "event_id",
        "status",
        "attempts",
        "last_error",
        "next_attempt_at",
        "payment_link",
        "received_at",
        "processing_started_at",
        "processed_at",
        "payload_pretty",
    ]
    readonly_fields = fields

    @admin.display(description="payment", ordering="payment_id")
    def payment_link(self, obj):
        return admin_link(obj.payment) if obj.payment_id else "–"

    @admin.display(description="payload")
    def payload_pretty(self, obj):
        return pretty_json(obj.payload)

    def has_reprocess_permission(self, request) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.reprocess_webhookevent")

    @admin.action(description="Reprocess selected events", permissions=["reprocess"])
    def reprocess(self, request, queryset):
        ids = list(queryset.order_by("pk").values_list("pk", flat=True))
        now = timezone.now()
        for event in WebhookEvent.objects.filter(pk__in=ids).order_by("pk"):
            reprocess_webhook_event(webhook_event=event, actor=request.user, request=request, now=now)
        # With no broker the processing ran already; with one it is queued.
        for event in WebhookEvent.objects.filter(pk__in=ids).order_by("pk"):
            outcome, level = event.get_status_display().lower(), messages.SUCCESS
            if event.status in (WebhookEvent.Status.RECEIVED, WebhookEvent.Status.PROCESSING):
                outcome, level = "queued for processing", messages.INFO
            elif event.status == WebhookEvent.Status.FAILED:
                outcome, level = f"failed again: {event.last_error[:200]}", messages.ERROR
            self.message_user(request, f"{event.provider} event {event.event_id}: {outcome}", level)


@admin.register(WebhookRejection)
class WebhookRejectionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Rejected deliveries, counted per provider, reason and day (their bodies are never stored)."""

    list_display = ["day", "provider", "reason", "count", "last_seen_at", "last_ip"]
    list_filter = ["provider", "reason"]
    date_hierarchy = "day"
    ordering = ["-day", "provider", "reason"]
