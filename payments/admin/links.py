"""Admin: Payment links made by staff."""

from django import forms
from django.conf import settings
from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from core.admin_tools import (
    AuditedAdminMixin,
    NoDeleteMixin,
    SafeHistoryAdmin,
    money_field,
)
from ledger.money import enabled_currencies
from payments.models import (
    PaymentLink,
    PaymentLinkLine,
)

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
