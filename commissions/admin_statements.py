"""Payee statements in the admin: filtered, searched and totalled per currency; the PDF to download (view
permission) and "e-mail again" (`commissions.resend_statement`, logged and audited). Never edited: a
statement is written once from the ledger."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef
from django.http import Http404
from django.template.defaultfilters import pluralize
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from commissions.models import PayoutStatement, StatementDelivery
from commissions.statements.pdf import email_statement, statement_pdf_response
from core.admin_tools import (
    EMPTY,
    CurrencyTotalsMixin,
    ReadOnlyAdminMixin,
    ReadOnlyInline,
    admin_link,
    money_field,
)
from core.audit import record_audit
from core.models import AuditEntry

RESEND_PERMISSION = "commissions.resend_statement"


class StatementDeliveryInline(ReadOnlyInline):
    model = StatementDelivery
    verbose_name = "e-mail delivery"
    verbose_name_plural = "e-mail deliveries"
    fields = ["to", "sent_at", "actor_label"]
    readonly_fields = fields


@admin.register(PayoutStatement)
class PayoutStatementAdmin(CurrencyTotalsMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "reference",
        "kind",
        "payee_link",
        "period",
        "currency",
        "opening",
        "sales",
        "commission",
        "payouts",
        "closing",
        "issued_at",
        "emailed",
        "pdf_link",
    ]
    list_filter = ["kind", "currency", ("payee", admin.RelatedOnlyFieldListFilter), "issued_at"]
    list_select_related = ["payee"]
    date_hierarchy = "period_start"
    search_fields = ["payee__legal_name", "=payee__email", "=payout__pk", "=payee__pk"]
    search_help_text = "Payee name, e-mail or number, or payout number"
    ordering = ["-period_end", "-pk"]
    totals_fields = [
        ("sales_minor", "Sales"),
        ("refunds_minor", "Refunds"),
        ("disputes_minor", "Disputes"),
        ("commission_minor", "Commission"),
        ("commission_vat_minor", "VAT on commission"),
        ("payouts_minor", "Payouts"),
    ]
    inlines = [StatementDeliveryInline]
    actions = ["resend_by_email"]
    fieldsets = [
        (None, {"fields": ["reference", "kind", "payee_link", "payout_link", "currency", "period", "pdf_link"]}),
        (
            "Figures (from the ledger)",
            {
                "fields": [
                    "opening",
                    "sales",
                    "refunds",
                    "disputes",
                    "commission",
                    "commission_vat",
                    "adjustments",
                    "payouts",
                    "closing",
                ]
            },
        ),
        ("Issued", {"fields": ["issued_at", "sha256"]}),
    ]
    readonly_fields = [field for _, options in fieldsets for field in options["fields"]]

    opening = money_field("opening_minor", "opening")
    sales = money_field("sales_minor", "sales")
    refunds = money_field("refunds_minor", "refunds")
    disputes = money_field("disputes_minor", "disputes")
    commission = money_field("commission_minor", "commission")
    commission_vat = money_field("commission_vat_minor", "VAT on commission")
    adjustments = money_field("adjustments_minor", "adjustments")
    payouts = money_field("payouts_minor", "payouts")
    closing = money_field("closing_minor", "closing")

    def get_queryset(self, request):
        delivered = StatementDelivery.objects.filter(statement=OuterRef("pk"))
        return super().get_queryset(request).defer("pdf").annotate(was_emailed=Exists(delivered))

    @admin.display(description="payee", ordering="payee__legal_name")
    def payee_link(self, obj):
        return admin_link(obj.payee, obj.payee.legal_name)

    @admin.display(description="payout")
    def payout_link(self, obj):
        return admin_link(obj.payout, f"Payout {obj.payout_id}") if obj.payout_id else EMPTY

    @admin.display(description="period", ordering="period_start")
    def period(self, obj):
        if obj.kind == PayoutStatement.Kind.MONTH:
            return f"{obj.period_start:%B %Y}"
        return f"{obj.period_start:%Y-%m-%d %H:%M} – {obj.period_end:%Y-%m-%d %H:%M}"

    @admin.display(description="e-mailed", boolean=True)
    def emailed(self, obj):
        return getattr(obj, "was_emailed", None)

    @admin.display(description="PDF")
    def pdf_link(self, obj):
        if obj is None or obj.pk is None:
            return EMPTY
        url = reverse("admin:commissions_payoutstatement_pdf", args=[obj.pk])
        return format_html('<a href="{}">Download PDF</a>', url)

    def get_urls(self):
        return [
            path(
                "<path:object_id>/pdf/",
                self.admin_site.admin_view(self.pdf_view),
                name="commissions_payoutstatement_pdf",
            ),
            *super().get_urls(),
        ]

    def pdf_view(self, request, object_id):
        if not self.has_view_permission(request):
            raise PermissionDenied
        statement = self.get_object(request, unquote(object_id))
        if statement is None:
            raise Http404("No such statement.")
        return statement_pdf_response(statement)

    def has_resend_permission(self, request) -> bool:
        return request.user.has_perm(RESEND_PERMISSION)

    @admin.action(description="E-mail again to the payee (PDF attached)", permissions=["resend"])
    def resend_by_email(self, request, queryset):
        if not self.has_resend_permission(request):
            raise PermissionDenied
        sent = failed = 0
        for statement in queryset.order_by("pk"):
            try:
                delivered = email_statement(
                    statement_id=statement.pk, now=timezone.now(), actor_label=f"staff:{request.user}"
                )
            except Exception as exc:  # an SMTP or rendering failure: the other statements still go
                failed += 1
                record_audit(
                    action="commissions.statement.resend",
                    actor=request.user,
                    obj=statement,
                    request=request,
                    outcome=AuditEntry.Outcome.FAILURE,
                    message=f"{type(exc).__name__}: {exc}"[:500],
                )
                continue
            sent += int(delivered)
            record_audit(
                action="commissions.statement.resend",
                actor=request.user,
                obj=statement,
                request=request,
                message="sent" if delivered else "the payee has no e-mail address",
            )
        if sent:
            self.message_user(request, f"Sent {sent} statement{pluralize(sent)} by e-mail.", messages.SUCCESS)
        if failed:
            self.message_user(request, f"{failed} statement{pluralize(failed)} could not be sent.", messages.ERROR)
