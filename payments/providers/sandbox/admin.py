"""The sandbox gateway's own state (the "provider's database"), view only, and only where the sandbox runs."""

from django.conf import settings
from django.contrib import admin

from core.admin_tools import ReadOnlyAdminMixin, ReadOnlyInline, money_field, pretty_json
from payments.providers.sandbox.models import SandboxEvent, SandboxRefund, SandboxSession


class SandboxRefundInline(ReadOnlyInline):
    model = SandboxRefund
    fields = ["idempotency_key", "amount", "created_at"]
    readonly_fields = fields

    amount = money_field("amount_minor", "amount", currency="session.currency")


class SandboxSessionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["__str__", "reference", "merchant_name", "amount", "fee", "refunded", "status", "created_at"]
    list_filter = ["status", "currency"]
    date_hierarchy = "created_at"
    search_fields = ["token", "reference", "idempotency_key"]
    ordering = ["-created_at", "-pk"]
    fields = [
        "token",
        "idempotency_key",
        "merchant_name",
        "description",
        "reference",
        "status",
        "decline_code",
        "currency",
        "amount",
        "fee",
        "refunded",
        "return_url",
        "cancel_url",
        "notification_url",
        "metadata_pretty",
        "created_at",
        "expires_at",
        "completed_at",
    ]
    readonly_fields = fields
    inlines = [SandboxRefundInline]

    amount = money_field("amount_minor", "amount")
    fee = money_field("fee_minor", "fee")
    refunded = money_field("refunded_minor", "refunded")

    @admin.display(description="metadata")
    def metadata_pretty(self, obj):
        return pretty_json(obj.metadata)


class SandboxEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "event_type", "event_id", "session", "attempts", "delivered_at", "last_error"]
    list_filter = ["event_type"]
    list_select_related = ["session"]
    date_hierarchy = "created_at"
    search_fields = ["event_id"]
    ordering = ["-created_at", "-pk"]
    fields = [
        "event_id",
        "event_type",
        "session",
        "created_at",
        "attempts",
        "delivered_at",
        "last_error",
        "payload_pretty",
    ]
    readonly_fields = fields

    @admin.display(description="payload")
    def payload_pretty(self, obj):
        return pretty_json(obj.payload)


if settings.SANDBOX_ENABLED:
    admin.site.register(SandboxSession, SandboxSessionAdmin)
    admin.site.register(SandboxEvent, SandboxEventAdmin)
