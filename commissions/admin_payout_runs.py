"""Payout runs and SEPA files in the back office. Runs: "Start a payout run…" (`commissions.start_payout_run`),
approve / reject (`commissions.approve_payout_run`; the services refuse the user who started the run), retry
the unfinished payouts of a run. SEPA files: download (`commissions.download_sepa_file`, audited), mark sent,
mark confirmed, or import the bank's status report (pain.002) instead. Every check is in `commissions.payouts`;
this module only calls it and reports."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from commissions.models import PayoutRun, SepaFile
from commissions.models.payees import PayoutSchedule
from commissions.payouts import bank_status, runs, sepa
from core.admin_tools import (
    EMPTY,
    ReadOnlyAdminMixin,
    SafeHistoryAdmin,
    admin_link,
    changelist_link,
    money,
    money_field,
)
from core.audit import AuditEntry, record_audit
from core.errors import DomainError

FORM_TEMPLATE = "admin/commissions/payout_run_form.html"
STATUS_REPORT_TEMPLATE = "admin/commissions/sepafile_status_report.html"


class StartRunForm(forms.Form):
    schedule = forms.ChoiceField(
        choices=[("", "Every payee (all schedules, manual included)"), *PayoutSchedule.choices],
        required=False,
        help_text="Every eligible payee on this schedule is paid its whole available balance, per currency.",
    )


class RejectForm(forms.Form):
    rejection_reason = forms.CharField(label="Reason", widget=forms.Textarea(attrs={"rows": 3}))


def _totals_text(totals: dict) -> str:
    return ", ".join(money(amount, currency) for currency, amount in sorted(totals.items())) or EMPTY


@admin.register(PayoutRun)
class PayoutRunAdmin(ReadOnlyAdminMixin, SafeHistoryAdmin):
    list_display = [
        "id",
        "trigger",
        "schedule",
        "status",
        "totals_text",
        "payout_count",
        "created_by",
        "created_at",
        "approved_by",
        "approved_at",
        "completed_at",
    ]
    list_filter = ["status", "trigger", "schedule"]
    date_hierarchy = "created_at"
    ordering = ["-created_at", "-pk"]
    list_select_related = ["created_by", "approved_by"]
    change_list_template = "admin/commissions/payoutrun_change_list.html"
    actions = ["approve_runs", "reject_runs", "retry_payouts"]
    fieldsets = [
        (None, {"fields": ["trigger", "schedule", "status", "totals_text", "payout_count", "payouts_link"]}),
        ("Approval", {"fields": ["created_by", "created_at", "approved_by", "approved_at", "rejection_reason"]}),
        ("SEPA", {"fields": ["sepa_files_list"]}),
        ("Left out", {"fields": ["skipped_list"]}),
        ("Dates", {"fields": ["completed_at"]}),
    ]
    readonly_fields = [field for _, options in fieldsets for field in options["fields"]]

    @admin.display(description="totals")
    def totals_text(self, obj):
        return _totals_text(obj.totals)

    @admin.display(description="payouts")
    def payouts_link(self, obj):
        return changelist_link("commissions.payout", f"{obj.payout_count} payout(s)", run__id__exact=obj.pk)

    @admin.display(description="files")
    def sepa_files_list(self, obj):
        files = list(obj.sepa_files.order_by("pk"))
        if not files:
            return EMPTY
        return format_html_join(
            "",
            '<p>{} — {} — <a href="{}">download</a></p>',
            ((admin_link(f, f.message_id), f.get_status_display(), download_url(f)) for f in files),
        )

    @admin.display(description="payees left out, and why")
    def skipped_list(self, obj):
        entries = AuditEntry.objects.filter(action="payout.skipped", metadata__run=obj.pk).order_by("pk")[:200]
        if not entries:
            return EMPTY
        return format_html_join(
            "", "<p>Payee #{} ({}): {}</p>", ((e.object_id, e.currency, e.message) for e in entries)
        )

    def has_start_payout_run_permission(self, request) -> bool:
        return request.user.has_perm("commissions.start_payout_run")

    def has_approve_payout_run_permission(self, request) -> bool:
        return request.user.has_perm("commissions.approve_payout_run")

    def _each(self, request, queryset, verb: str, call) -> None:
        for run in queryset.order_by("pk"):
            try:
                call(run)
            except DomainError as exc:
                self.message_user(request, f"Run #{run.pk}: not {verb}. {exc.message}", messages.WARNING)
            else:
                self.message_user(request, f"Run #{run.pk}: {verb}.", messages.SUCCESS)

    @admin.action(description="Approve selected payout runs (second user)", permissions=["approve_payout_run"])
    def approve_runs(self, request, queryset):
        now = timezone.now()
        self._each(
            request, queryset, "approved", lambda run: runs.approve_run(run_id=run.pk, actor=request.user, now=now)
        )

    @admin.action(description="Reject selected payout runs…", permissions=["approve_payout_run"])
    def reject_runs(self, request, queryset):
        form = RejectForm(request.POST if "apply" in request.POST else None)
        if not form.is_valid():
            context = {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "form": form,
                "queryset": list(queryset.filter(status=PayoutRun.Status.AWAITING_APPROVAL)),
                "action": "reject_runs",
                "button": "Reject",
                "cancel_url": reverse("admin:commissions_payoutrun_changelist"),
                "title": "Reject payout runs",
            }
            return TemplateResponse(request, FORM_TEMPLATE, context)
        reason, now = form.cleaned_data["rejection_reason"], timezone.now()
        self._each(
            request,
            queryset,
            "rejected",
            lambda run: runs.reject_run(run_id=run.pk, actor=request.user, reason=reason, now=now),
        )
        return None

    @admin.action(description="Retry the unfinished payouts of selected runs", permissions=["start_payout_run"])
    def retry_payouts(self, request, queryset):
        for run in queryset.order_by("pk"):
            count = runs.retry_open_payouts(run_id=run.pk)
            record_audit(
                action="payout_run.retry", actor=request.user, obj=run, request=request, metadata={"queued": count}
            )
            self.message_user(request, f"Run #{run.pk}: {count} payout(s) queued again.", messages.INFO)

    def get_urls(self):
        return [
            path("start/", self.admin_site.admin_view(self.start_view), name="commissions_payoutrun_start"),
            *super().get_urls(),
        ]

    def start_view(self, request):
        if not self.has_start_payout_run_permission(request):
            raise PermissionDenied
        form = StartRunForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            run = runs.start_run(
                trigger=PayoutRun.Trigger.STAFF,
                schedule=form.cleaned_data["schedule"],
                actor=request.user,
                now=timezone.now(),
            )
            self.message_user(
                request,
                f"{run}: {run.payout_count} payout(s), {_totals_text(run.totals)}; "
                f"{len(run.skipped)} payee(s) left out.",
                messages.SUCCESS,
            )
            return HttpResponseRedirect(reverse("admin:commissions_payoutrun_change", args=[run.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "form": form,
            "button": "Start the run",
            "cancel_url": reverse("admin:commissions_payoutrun_changelist"),
            "title": "Start a payout run",
        }
        return TemplateResponse(request, FORM_TEMPLATE, context)

    def changelist_view(self, request, extra_context=None):
        extra_context = dict(extra_context or {})
        if self.has_start_payout_run_permission(request):
            extra_context["start_run_url"] = reverse("admin:commissions_payoutrun_start")
        return super().changelist_view(request, extra_context)


def download_url(sepa_file: SepaFile) -> str:
    return reverse("admin:commissions_sepafile_download", args=[sepa_file.pk])


def status_report_url(sepa_file: SepaFile) -> str:
    return reverse("admin:commissions_sepafile_status_report", args=[sepa_file.pk])


class StatusReportForm(forms.Form):
    report = forms.FileField(
        label="Status report",
        help_text="The bank's payment status report for this file (pain.002.001.03 XML, at most 5 MB).",
    )

    def clean_report(self):
        upload = self.cleaned_data["report"]
        if upload.size > bank_status.MAX_REPORT_BYTES:
            raise forms.ValidationError("The file is larger than 5 MB; a bank status report is much smaller.")
        return upload


@admin.register(SepaFile)
class SepaFileAdmin(ReadOnlyAdminMixin, SafeHistoryAdmin):
    list_display = [
        "message_id",
        "run_link",
        "total",
        "transaction_count",
        "status",
        "created_at",
        "sent_at",
        "confirmed_at",
        "download",
        "bank_report",
    ]
    list_filter = ["status", "currency"]
    list_select_related = ["run"]
    search_fields = ["message_id", "sha256"]
    ordering = ["-created_at", "-pk"]
    actions = ["mark_sent", "mark_confirmed"]
    change_form_template = "admin/commissions/sepafile_change_form.html"
    fields = [
        "message_id",
        "run_link",
        "status",
        "currency",
        "total",
        "transaction_count",
        "sha256",
        "download",
        "created_at",
        "sent_at",
        "confirmed_at",
    ]
    readonly_fields = fields

    total = money_field("total_minor", "total")

    @admin.display(description="run", ordering="run_id")
    def run_link(self, obj):
        return admin_link(obj.run, f"#{obj.run_id}")

    @admin.display(description="file")
    def download(self, obj):
        return format_html('<a href="{}">pain.001 XML</a>', download_url(obj))

    @admin.display(description="bank report")
    def bank_report(self, obj):
        return format_html('<a href="{}">import pain.002…</a>', status_report_url(obj))

    def has_download_sepa_file_permission(self, request) -> bool:
        return request.user.has_perm("commissions.download_sepa_file")

    def get_list_display(self, request):
        shown = super().get_list_display(request)
        return shown if self.has_download_sepa_file_permission(request) else [f for f in shown if f != "bank_report"]

    def _each(self, request, queryset, verb: str, call) -> None:
        now = timezone.now()
        for sepa_file in queryset.order_by("pk"):
            try:
                call(file_id=sepa_file.pk, actor=request.user, now=now)
            except DomainError as exc:
                self.message_user(request, f"{sepa_file.message_id}: not {verb}. {exc.message}", messages.WARNING)
            else:
                self.message_user(request, f"{sepa_file.message_id}: {verb}.", messages.SUCCESS)

    @admin.action(description="Mark selected files as sent to the bank", permissions=["download_sepa_file"])
    def mark_sent(self, request, queryset):
        self._each(request, queryset, "marked sent", sepa.mark_sent)

    @admin.action(
        description="Mark selected files as confirmed by the bank (payouts paid)", permissions=["download_sepa_file"]
    )
    def mark_confirmed(self, request, queryset):
        self._each(request, queryset, "confirmed", sepa.mark_confirmed)

    def get_urls(self):
        return [
            path(
                "<int:file_id>/download/",
                self.admin_site.admin_view(self.download_view),
                name="commissions_sepafile_download",
            ),
            path(
                "<int:file_id>/status-report/",
                self.admin_site.admin_view(self.status_report_view),
                name="commissions_sepafile_status_report",
            ),
            *super().get_urls(),
        ]

    def download_view(self, request, file_id: int):
        if not self.has_download_sepa_file_permission(request):
            raise PermissionDenied
        sepa_file = get_object_or_404(SepaFile, pk=file_id)
        record_audit(action="sepa_file.download", actor=request.user, obj=sepa_file, request=request)
        response = HttpResponse(bytes(sepa_file.content), content_type="application/xml")
        response["Content-Disposition"] = f'attachment; filename="{sepa_file.message_id}.xml"'
        response["X-Content-SHA256"] = sepa_file.sha256
        return response

    def status_report_view(self, request, file_id: int):
        """Import the bank's pain.002 for this file; every refusal comes back as a form error."""
        if not self.has_download_sepa_file_permission(request):
            raise PermissionDenied
        sepa_file = get_object_or_404(SepaFile, pk=file_id)
        form = StatusReportForm(request.POST, request.FILES) if request.method == "POST" else StatusReportForm()
        if form.is_valid():
            try:
                result = bank_status.import_status_report(
                    file_id=sepa_file.pk,
                    content=form.cleaned_data["report"].read(),
                    actor=request.user,
                    now=timezone.now(),
                )
            except DomainError as exc:
                form.add_error("report", f"Nothing was changed. {exc.message}")
            else:
                level = messages.SUCCESS if result.changed else messages.INFO
                self.message_user(request, result.summary, level)
                return HttpResponseRedirect(reverse("admin:commissions_sepafile_change", args=[sepa_file.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "form": form,
            "sepa_file": sepa_file,
            "cancel_url": reverse("admin:commissions_sepafile_change", args=[sepa_file.pk]),
            "title": f"Import the bank's status report for {sepa_file.message_id}",
        }
        return TemplateResponse(request, STATUS_REPORT_TEMPLATE, context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = dict(extra_context or {})
        if self.has_download_sepa_file_permission(request) and str(object_id).isdigit():
            extra_context["status_report_url"] = reverse(
                "admin:commissions_sepafile_status_report", args=[int(object_id)]
            )
        return super().change_view(request, object_id, form_url, extra_context)
