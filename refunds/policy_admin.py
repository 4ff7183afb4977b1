"""Admin for refund policies (with their tiers and history), and the refund admin's maker-checker actions
(approve / reject, each checked by `refunds.services` for the permission and the four-eyes rule) and the
force-majeure page."""

from __future__ import annotations

from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from simple_history.admin import SimpleHistoryAdmin

from core.errors import DomainError
from refunds.models import RefundPolicy, RefundPolicyTier, RefundStatus


class RefundPolicyTierInline(admin.TabularInline):
    model = RefundPolicyTier
    extra = 1
    fields = ["position", "until", "fee_bps", "fee_fixed_minor", "currency"]


@admin.register(RefundPolicy)
class RefundPolicyAdmin(SimpleHistoryAdmin):
    list_display = [
        "name",
        "scope",
        "payee",
        "event_ref",
        "full_refund_until",
        "commission_returned",
        "fee_to",
        "active",
    ]
    list_filter = ["scope", "active", "commission_returned", "fee_to"]
    search_fields = ["name", "event_ref", "payee__legal_name"]
    raw_id_fields = ["payee"]
    inlines = [RefundPolicyTierInline]
    fieldsets = [
        (None, {"fields": ["name", "active", "scope", "payee", "event_ref"]}),
        (
            "Terms",
            {
                "fields": ["full_refund_until", "commission_returned", "fee_to"],
                "description": "Event tickets: time before the event. Goods and services: time since payment. "
                "After the full-refund window the tiers apply (each until its own time), then no refund.",
            },
        ),
        (
            "Methods",
            {"fields": ["allow_original", "allow_store_credit", "allow_transfer", "store_credit_validity_days"]},
        ),
    ]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # deactivate instead: refunds keep pointing at the policy they used


class RefundApprovalMixin:
    """Mixed into `RefundAdmin`: approve / reject actions and the "Cancel an event…" page."""

    actions = ["approve_refunds", "reject_refunds"]
    change_list_template = "admin/refunds/refund_change_list.html"

    def has_approve_refund_permission(self, request) -> bool:
        return request.user.has_perm("refunds.approve_refund")

    @admin.action(description="Approve selected refunds (maker-checker)", permissions=["approve_refund"])
    def approve_refunds(self, request, queryset):
        from refunds.services import approve_refund

        now = timezone.now()
        for refund in queryset.order_by("pk"):
            try:
                approve_refund(refund_id=refund.pk, actor=request.user, now=now, request=request)
            except DomainError as exc:
                self.message_user(request, f"Refund #{refund.pk}: not approved. {exc.message}", messages.WARNING)
            else:
                self.message_user(request, f"Refund #{refund.pk}: approved.", messages.SUCCESS)

    @admin.action(description="Reject selected refunds…", permissions=["approve_refund"])
    def reject_refunds(self, request, queryset):
        from refunds.services import reject_refund

        reason = (request.POST.get("rejection_reason") or "").strip()
        if "apply" not in request.POST or not reason:
            context = {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "queryset": list(queryset.filter(status=RefundStatus.REQUESTED)),
                "title": "Reject refunds",
            }
            return TemplateResponse(request, "admin/refunds/reject_refunds.html", context)
        now = timezone.now()
        for refund in queryset.order_by("pk"):
            try:
                reject_refund(refund_id=refund.pk, actor=request.user, reason=reason, now=now, request=request)
            except DomainError as exc:
                self.message_user(request, f"Refund #{refund.pk}: not rejected. {exc.message}", messages.WARNING)
            else:
                self.message_user(request, f"Refund #{refund.pk}: rejected.", messages.SUCCESS)
        return None

    def get_urls(self):
        from refunds.admin_views import cancel_event_view

        return [
            path(
                "cancel-event/",
                self.admin_site.admin_view(lambda request: cancel_event_view(self, request)),
                name="refunds_refund_cancel_event",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra_context = dict(extra_context or {})
        if request.user.has_perm("refunds.add_refund") and request.user.has_perm("refunds.approve_refund"):
            extra_context["cancel_event_url"] = reverse("admin:refunds_refund_cancel_event")
        return super().changelist_view(request, extra_context)
