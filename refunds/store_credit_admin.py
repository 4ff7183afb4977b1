"""Store credit in the back office: the list (filters, search by code or e-mail, totals of what is left per
currency), read-only money, the spends inline, and an "Issue goodwill credit" page behind its own permission
(`refunds.issue_goodwill_credit`; `refunds.store_credit.issue_goodwill_credit` posts and audits it)."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from core.admin_tools import (
    CurrencyTotalsMixin,
    ReadOnlyAdminMixin,
    ReadOnlyInline,
    SafeHistoryAdmin,
    admin_link,
    money_field,
)
from core.errors import DomainError
from ledger.money import AmountError, CurrencyError, Money, enabled_currencies
from refunds.models import StoreCredit, StoreCreditSpend


class GoodwillCreditForm(forms.Form):
    buyer_email = forms.EmailField(label="Buyer's e-mail", max_length=254, help_text="The code is e-mailed here.")
    currency = forms.ChoiceField(choices=())
    amount = forms.CharField(label="Amount", max_length=20, help_text="In the currency's units, e.g. 25.00")
    valid_days = forms.IntegerField(label="Valid for (days)", min_value=1, max_value=3650, initial=365)
    reason = forms.CharField(label="Reason", max_length=300, widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["currency"].choices = [(c, c) for c in enabled_currencies()]

    def clean(self):
        data = super().clean()
        if "amount" in data and "currency" in data:
            try:
                money = Money.parse(data["amount"], data["currency"])
            except (AmountError, CurrencyError) as exc:
                self.add_error("amount", str(exc))
            else:
                if money.amount_minor <= 0:
                    self.add_error("amount", "The amount must be greater than zero.")
                data["money"] = money
        return data


class StoreCreditSpendInline(ReadOnlyInline):
    model = StoreCreditSpend
    fields = ["payment_link", "order_link", "amount", "created_at"]
    readonly_fields = fields

    amount = money_field("amount_minor", "amount", currency="credit.currency")

    def has_view_permission(self, request, obj=None) -> bool:
        # Spends are part of the credit: whoever may view the credit sees them.
        return request.user.has_perm(f"{self.opts.app_label}.view_storecredit")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("credit", "payment__order").order_by("created_at", "pk")

    @admin.display(description="payment")
    def payment_link(self, obj):
        return admin_link(obj.payment, f"#{obj.payment_id}")

    @admin.display(description="order")
    def order_link(self, obj):
        return admin_link(obj.payment.order, obj.payment.order.short_token)


@admin.register(StoreCredit)
class StoreCreditAdmin(CurrencyTotalsMixin, ReadOnlyAdminMixin, SafeHistoryAdmin):
    list_display = [
        "code",
        "buyer_email",
        "remaining",
        "amount",
        "status",
        "expires_at",
        "source_refund_link",
        "created_at",
    ]
    list_filter = ["status", "currency", ("expires_at", admin.DateFieldListFilter), "created_at"]
    list_select_related = ["source_refund"]
    search_fields = ["code", "buyer_email"]
    ordering = ["-created_at", "-pk"]
    date_hierarchy = "created_at"
    totals_fields = [("remaining_minor", "Remaining"), ("amount_minor", "Issued"), ("expired_minor", "Expired")]
    change_list_template = "admin/refunds/storecredit/change_list.html"
    fieldsets = [
        (None, {"fields": ["code", "buyer_email", "status", "source_refund_link", "issued_by", "reason"]}),
        ("Money", {"fields": ["currency", "amount", "remaining", "expired"]}),
        ("Dates", {"fields": ["created_at", "expires_at", "notified_at", "updated_at"]}),
    ]
    readonly_fields = [field for _, options in fieldsets for field in options["fields"]]
    inlines = [StoreCreditSpendInline]

    amount = money_field("amount_minor", "issued")
    remaining = money_field("remaining_minor", "remaining")
    expired = money_field("expired_minor", "expired (breakage)")

    @admin.display(description="from refund", ordering="source_refund_id")
    def source_refund_link(self, obj):
        return admin_link(obj.source_refund, f"#{obj.source_refund_id}") if obj.source_refund_id else "goodwill"

    # --- issue goodwill credit --------------------------------------------------------------------------------

    def has_issue_goodwill_permission(self, request) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.issue_goodwill_credit")

    def get_urls(self):
        info = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path("issue-goodwill/", self.admin_site.admin_view(self.goodwill_view), name=f"{info}_goodwill"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_issue_goodwill": self.has_issue_goodwill_permission(request)}
        return super().changelist_view(request, extra_context)

    def goodwill_view(self, request):
        if not self.has_issue_goodwill_permission(request):
            raise PermissionDenied
        from refunds.store_credit import issue_goodwill_credit

        form = GoodwillCreditForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            now = timezone.now()
            try:
                credit = issue_goodwill_credit(
                    buyer_email=form.cleaned_data["buyer_email"],
                    amount=form.cleaned_data["money"],
                    expires_at=now + timedelta(days=form.cleaned_data["valid_days"]),
                    actor=request.user,
                    reason=form.cleaned_data["reason"],
                    now=now,
                    request=request,
                )
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                self.message_user(
                    request, f"Issued store credit {credit.code}; the buyer has been e-mailed.", messages.SUCCESS
                )
                info = f"{self.opts.app_label}_{self.opts.model_name}"
                return HttpResponseRedirect(reverse(f"admin:{info}_change", args=[credit.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "form": form,
            "title": "Issue goodwill store credit",
        }
        return TemplateResponse(request, "admin/refunds/storecredit/issue_goodwill.html", context)
