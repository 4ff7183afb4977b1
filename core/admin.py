from django.contrib import admin
from rest_framework_api_key.admin import APIKeyModelAdmin
from rest_framework_api_key.models import APIKey

from core.admin_tools import AuditedAdminMixin, NoDeleteMixin, ReadOnlyAdminMixin, money, pretty_json
from core.models import ApiClient, ApiClientKey, AuditEntry

# The library's own APIKey model is not what authenticates integrators (ApiClientKey is): a key made there
# would look valid and never work, so it is not offered.
if admin.site.is_registered(APIKey):
    admin.site.unregister(APIKey)


class ApiClientKeyInline(admin.TabularInline):
    """Existing keys of a client, read-only: keys are created (and shown once) from the API keys page."""

    model = ApiClientKey
    fields = ["prefix", "name", "created", "expiry_date", "revoked"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ApiClient)
class ApiClientAdmin(AuditedAdminMixin, NoDeleteMixin, admin.ModelAdmin):
    """Integrators. Deactivate instead of deleting: their orders and idempotency records stay."""

    list_display = ["name", "is_active", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["name"]
    fields = ["name", "is_active", "created_at"]
    readonly_fields = ["created_at"]
    inlines = [ApiClientKeyInline]


@admin.register(ApiClientKey)
class ApiClientKeyAdmin(AuditedAdminMixin, NoDeleteMixin, APIKeyModelAdmin):
    """Creating a key shows it once (in a message); only its hash is stored. Revoke instead of deleting."""

    list_display = ["prefix", "name", "client", "created", "expiry_date", "_has_expired", "revoked"]
    list_filter = ["client", "revoked", "created"]
    list_select_related = ["client"]
    search_fields = ["name", "prefix", "client__name"]
    fields = ["client", "name", "prefix", "expiry_date", "revoked"]
    autocomplete_fields = ["client"]

    def get_readonly_fields(self, request, obj=None):
        fields = tuple(super().get_readonly_fields(request, obj))
        # A key never moves to another client.
        return (*fields, "client") if obj is not None else fields


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The append-only audit trail. Nobody adds, changes or deletes entries (the database refuses too)."""

    list_display = [
        "created_at",
        "actor_label",
        "action",
        "object_type",
        "object_id",
        "amount",
        "outcome",
        "ip_address",
    ]
    list_filter = ["outcome", "action", "object_type"]
    date_hierarchy = "created_at"
    search_fields = ["object_id", "actor_label", "idempotency_key"]
    ordering = ["-created_at", "-pk"]
    show_full_result_count = False
    fields = [
        "created_at",
        "actor",
        "actor_label",
        "action",
        "object_type",
        "object_id",
        "amount",
        "ip_address",
        "outcome",
        "idempotency_key",
        "message",
        "metadata_pretty",
    ]
    readonly_fields = fields

    @admin.display(description="amount", ordering="amount_minor")
    def amount(self, obj):
        return money(obj.amount_minor, obj.currency) if obj.amount_minor is not None else ""

    @admin.display(description="metadata")
    def metadata_pretty(self, obj):
        return pretty_json(obj.metadata)
