"""Disputes in the admin: read-only (they change only through `refunds.disputes`, from provider events), with
filters by status, reason, provider, payee, opened date and evidence due date; totals per currency; history;
an evidence pack as a PDF (`refunds.view_dispute`); and, where the sandbox runs, actions that make the
sandbox's bank move a test dispute on (evidence submitted, won, lost), answered by its signed webhook."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from core.admin_tools import (
    EMPTY,
    CurrencyTotalsMixin,
    ReadOnlyAdminMixin,
    SafeHistoryAdmin,
    admin_link,
    money_field,
    provider_link,
)
from refunds.models import Dispute, DisputeStatus

OPEN_STATUSES = (DisputeStatus.OPEN, DisputeStatus.UNDER_REVIEW)


class EvidenceDueFilter(admin.SimpleListFilter):
    """Open disputes by when their evidence is due at the provider."""

    title = "evidence due"
    parameter_name = "due"

    def lookups(self, request, model_admin):
        return [("3d", "Due in 3 days"), ("overdue", "Overdue"), ("none", "No due date")]

    def queryset(self, request, queryset):
        value = self.value()
        now = timezone.now()
        open_ = queryset.filter(status__in=OPEN_STATUSES)
        if value == "3d":
            return open_.filter(evidence_due_by__gt=now, evidence_due_by__lte=now + timedelta(days=3))
        if value == "overdue":
            return open_.filter(evidence_due_by__lte=now)
        if value == "none":
            return queryset.filter(evidence_due_by__isnull=True)
        return queryset


@admin.register(Dispute)
class DisputeAdmin(CurrencyTotalsMixin, ReadOnlyAdminMixin, SafeHistoryAdmin):
    """Chargebacks as the provider reports them (webhooks). The evidence is answered in the provider's
    dashboard, one click away from each row; the evidence pack (PDF) is downloaded from the dispute's page."""

    list_display = [
        "id",
        "provider_ref_link",
        "order_link",
        "payment_link",
        "provider",
        "payees",
        "amount",
        "status",
        "reason",
        "evidence_due",
        "held",
        "opened_at",
    ]
    list_filter = [
        "status",
        "reason",
        "payment__provider",
        ("order__lines__payee", admin.RelatedOnlyFieldListFilter),
        "opened_at",
        EvidenceDueFilter,
        "currency",
    ]
    list_select_related = ["order", "payment"]
    date_hierarchy = "opened_at"
    search_fields = ["provider_ref", "order__token", "order__reference", "payment__provider_payment_ref"]
    ordering = ["-opened_at", "-pk"]
    totals_fields = [("amount_minor", "Disputed"), ("held_minor", "Held from payees")]
    actions = ["sandbox_submit_evidence", "sandbox_close_won", "sandbox_close_lost"]
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
                    "evidence_pack",
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

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("order__lines__payee")

    @admin.display(description="payees")
    def payees(self, obj):
        names = sorted({line.payee.name for line in obj.order.lines.all()})
        return ", ".join(names) or EMPTY

    @admin.display(description="provider", ordering="payment__provider")
    def provider(self, obj):
        return obj.payment.provider

    @admin.display(description="evidence due by", ordering="evidence_due_by")
    def evidence_due(self, obj):
        if obj.evidence_due_by is None:
            return EMPTY
        text = timezone.localtime(obj.evidence_due_by).strftime("%Y-%m-%d %H:%M")
        if obj.is_open and obj.evidence_due_by <= timezone.now():
            return format_html("<strong>{} (overdue)</strong>", text)
        return text

    @admin.display(description="evidence pack")
    def evidence_pack(self, obj):
        if obj is None or obj.pk is None:
            return EMPTY
        url = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_evidence_pack", args=[obj.pk])
        return format_html('<a class="button" href="{}">Download evidence pack (PDF)</a>', url)

    # --- evidence pack ----------------------------------------------------------------------------------

    def get_urls(self):
        info = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path(
                "<path:object_id>/evidence-pack/",
                self.admin_site.admin_view(self.evidence_pack_view),
                name=f"{info}_evidence_pack",
            ),
            *super().get_urls(),
        ]

    def evidence_pack_view(self, request, object_id):
        from core.audit import record_audit
        from refunds.evidence import build_evidence_pack

        if not request.user.has_perm(f"{self.opts.app_label}.view_dispute"):
            raise PermissionDenied
        dispute = self.get_object(request, unquote(object_id))
        if dispute is None:
            raise Http404("No such dispute.")
        pdf = build_evidence_pack(dispute=dispute)
        record_audit(action="dispute.evidence_pack", actor=request.user, obj=dispute, request=request)
        response = HttpResponse(pdf, content_type="application/pdf")
        filename = f"evidence-{dispute.provider_ref}.pdf".replace('"', "")
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response

    # --- sandbox test disputes ------------------------------------------------------------------------

    def has_sandbox_dispute_permission(self, request) -> bool:
        from refunds.sandbox_disputes import sandbox_disputes_enabled

        return sandbox_disputes_enabled() and request.user.has_perm("sandbox.change_sandboxdispute")

    def _move(self, request, queryset, to: str) -> None:
        from refunds.sandbox_disputes import SandboxDisputeError, move_sandbox_dispute

        for dispute in queryset.select_related("payment").order_by("pk"):
            try:
                move_sandbox_dispute(dispute=dispute, to=to, actor=request.user, request=request, now=timezone.now())
            except SandboxDisputeError as exc:
                self.message_user(request, f"Not changed. {exc}", messages.ERROR)
            else:
                self.message_user(request, f"Sandbox dispute {dispute.provider_ref}: {to.replace('_', ' ')}.")

    @admin.action(description="Submit evidence (sandbox test dispute)", permissions=["sandbox_dispute"])
    def sandbox_submit_evidence(self, request, queryset):
        self._move(request, queryset, "under_review")

    @admin.action(description="Close as won (sandbox test dispute)", permissions=["sandbox_dispute"])
    def sandbox_close_won(self, request, queryset):
        self._move(request, queryset, "won")

    @admin.action(description="Close as lost (sandbox test dispute)", permissions=["sandbox_dispute"])
    def sandbox_close_lost(self, request, queryset):
        self._move(request, queryset, "lost")
