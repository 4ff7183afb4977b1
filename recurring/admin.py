"""Recurrences and their charges in the back office. View only: they change through the services (stop a
recurrence; retry or abandon a charge), each behind its own permission and written to the audit trail."""

from django.contrib import admin, messages
from django.utils import timezone

from core.admin_tools import (
    CurrencyTotalsMixin,
    ReadOnlyAdminMixin,
    ReadOnlyInline,
    SafeHistoryAdmin,
    admin_link,
    changelist_link,
    money_field,
    provider_link,
)
from core.errors import DomainError
from recurring.models import Recurrence, RecurringCharge
from recurring.services import abandon_charge, release_in_doubt_charge, stop_recurrence


class RecurringChargeInline(ReadOnlyInline):
    model = RecurringCharge
    fields = ["status", "amount", "order_link", "attempts", "next_attempt_at", "needs_review", "created_at"]
    readonly_fields = fields
    show_change_link = True

    amount = money_field("amount_minor", "amount")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("order").order_by("-created_at", "-pk")

    @admin.display(description="order")
    def order_link(self, obj):
        return admin_link(obj.order, obj.order.short_token)


@admin.register(Recurrence)
class RecurrenceAdmin(ReadOnlyAdminMixin, SafeHistoryAdmin):
    list_display = [
        "id",
        "buyer_email",
        "provider",
        "parent_ref",
        "status",
        "currency",
        "first_order_link",
        "valid_until",
        "created_at",
        "stopped_at",
    ]
    list_filter = ["status", "provider", "currency"]
    list_select_related = ["first_order"]
    date_hierarchy = "created_at"
    search_fields = ["buyer_email", "provider_ref", "first_order__reference", "first_order__token"]
    ordering = ["-created_at", "-pk"]
    actions = ["stop_recurrences"]
    fieldsets = [
        (None, {"fields": ["status", "cycle", "provider", "parent_ref", "buyer_email", "currency", "valid_until"]}),
        ("Set up by", {"fields": ["first_order_link", "first_payment_link"]}),
        ("Stopped", {"fields": ["stopped_at", "stopped_reason", "stop_sent_at"]}),
        ("Record", {"fields": ["created_at", "updated_at", "charges_link"]}),
    ]
    readonly_fields = [field for _, options in fieldsets for field in options["fields"]]
    inlines = [RecurringChargeInline]

    @admin.display(description="provider ref (parent payment)", ordering="provider_ref")
    def parent_ref(self, obj):
        return provider_link(obj.provider, "payment", obj.provider_ref)

    @admin.display(description="first order", ordering="first_order__created_at")
    def first_order_link(self, obj):
        return admin_link(obj.first_order, obj.first_order.short_token)

    @admin.display(description="first payment")
    def first_payment_link(self, obj):
        return admin_link(obj.first_payment)

    @admin.display(description="charges")
    def charges_link(self, obj):
        return changelist_link("recurring.recurringcharge", "Charges of this recurrence", recurrence__id__exact=obj.pk)

    def has_stop_recurrence_permission(self, request) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.stop_recurrence")

    @admin.action(description="Stop selected recurrences (no further charges)", permissions=["stop_recurrence"])
    def stop_recurrences(self, request, queryset):
        now = timezone.now()
        for recurrence in queryset.order_by("pk"):
            already = recurrence.status == "stopped"
            stopped = stop_recurrence(
                recurrence=recurrence,
                actor=request.user,
                actor_label=request.user.get_username(),
                reason=f"Stopped by staff ({request.user.get_username()})",
                now=now,
                request=request,
            )
            if already:
                self.message_user(request, f"Recurrence #{recurrence.pk}: already stopped.", messages.INFO)
            elif stopped.stop_sent_at is None:
                self.message_user(
                    request,
                    f"Recurrence #{recurrence.pk}: stopped here; {recurrence.provider} could not be told yet "
                    "(retried hourly). No further charges will be made.",
                    messages.WARNING,
                )
            else:
                self.message_user(request, f"Recurrence #{recurrence.pk}: stopped.", messages.SUCCESS)


@admin.register(RecurringCharge)
class RecurringChargeAdmin(CurrencyTotalsMixin, ReadOnlyAdminMixin, SafeHistoryAdmin):
    list_display = [
        "id",
        "recurrence_link",
        "buyer",
        "amount",
        "status",
        "attempts",
        "next_attempt_at",
        "needs_review",
        "order_link",
        "created_at",
        "charged_at",
    ]
    list_filter = ["status", "needs_review", "currency"]
    list_select_related = ["recurrence", "order"]
    date_hierarchy = "created_at"
    search_fields = [
        "recurrence__buyer_email",
        "recurrence__provider_ref",
        "payment__provider_ref",
        "order__reference",
        "order__token",
    ]
    ordering = ["-created_at", "-pk"]
    actions = ["release_in_doubt", "abandon_charges"]
    totals_fields = [("amount_minor", "Amount")]
    fieldsets = [
        (None, {"fields": ["recurrence_link", "status", "needs_review", "last_error"]}),
        ("Money", {"fields": ["currency", "amount"]}),
        ("Attempts", {"fields": ["attempts", "next_attempt_at", "order_link", "payment_link", "payments_link"]}),
        ("Dates", {"fields": ["created_at", "charged_at", "abandoned_at", "updated_at"]}),
    ]
    readonly_fields = [field for _, options in fieldsets for field in options["fields"]]

    amount = money_field("amount_minor", "amount")

    @admin.display(description="recurrence", ordering="recurrence_id")
    def recurrence_link(self, obj):
        return admin_link(obj.recurrence, f"#{obj.recurrence_id}")

    @admin.display(description="buyer", ordering="recurrence__buyer_email")
    def buyer(self, obj):
        return obj.recurrence.buyer_email

    @admin.display(description="order", ordering="order__created_at")
    def order_link(self, obj):
        return admin_link(obj.order, obj.order.short_token)

    @admin.display(description="latest attempt (payment; its id is the provider's order number)")
    def payment_link(self, obj):
        return admin_link(obj.payment) if obj.payment_id else "–"

    @admin.display(description="all attempts")
    def payments_link(self, obj):
        return changelist_link("payments.payment", "Payments of this charge's order", order__id__exact=obj.order_id)

    def has_resolve_permission(self, request) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.resolve_recurringcharge")

    @admin.action(
        description="Not charged at the provider (checked its portal for the order number): retry",
        permissions=["resolve"],
    )
    def release_in_doubt(self, request, queryset):
        now = timezone.now()
        for charge in queryset.order_by("pk"):
            try:
                charge = release_in_doubt_charge(charge=charge, now=now, actor=request.user, request=request)
            except DomainError as exc:
                self.message_user(request, f"Charge #{charge.pk}: unchanged. {exc.message}", messages.WARNING)
            else:
                if charge.next_attempt_at:
                    outcome = f"released; next attempt at {charge.next_attempt_at:%Y-%m-%d %H:%M} UTC"
                else:
                    outcome = f"released; {charge.get_status_display().lower()} (no attempts left)"
                self.message_user(request, f"Charge #{charge.pk}: {outcome}.", messages.SUCCESS)

    @admin.action(description="Abandon selected charges (cancel their orders)", permissions=["resolve"])
    def abandon_charges(self, request, queryset):
        now = timezone.now()
        for charge in queryset.order_by("pk"):
            try:
                abandon_charge(
                    charge=charge,
                    reason=f"Abandoned by staff ({request.user.get_username()})",
                    now=now,
                    actor=request.user,
                    request=request,
                )
            except DomainError as exc:
                self.message_user(request, f"Charge #{charge.pk}: not abandoned. {exc.message}", messages.WARNING)
            else:
                self.message_user(request, f"Charge #{charge.pk}: abandoned.", messages.SUCCESS)
