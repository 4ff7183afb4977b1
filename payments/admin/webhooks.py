"""Admin: The webhook inbox and rejected deliveries."""

from django.contrib import admin, messages
from django.utils import timezone

from core.admin_tools import (
    ReadOnlyAdminMixin,
    admin_link,
    pretty_json,
)
from payments.models import (
    WebhookEvent,
    WebhookRejection,
)
from payments.webhooks.services import reprocess_webhook_event

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
