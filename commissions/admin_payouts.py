"""Payouts and connected accounts' bank payouts (view only: they change through `commissions.payouts` and
Stripe's webhooks); payout runs (start, approve / reject, retry) and their SEPA files (download, sent,
confirmed) in `admin_payout_runs`."""

from django.contrib import admin

from commissions.models import ConnectedAccountPayout, Payout
from core.admin_tools import (
    EMPTY,
    CurrencyTotalsMixin,
    ReadOnlyAdminMixin,
    SafeHistoryAdmin,
    admin_link,
    money_field,
    provider_link,
)


@admin.register(Payout)
class PayoutAdmin(CurrencyTotalsMixin, ReadOnlyAdminMixin, SafeHistoryAdmin):
    list_display = [
        "id",
        "payee_link",
        "run_link",
        "method",
        "amount",
        "status",
        "transfer_link",
        "bank_account",
        "reversed_amount",
        "created_at",
        "paid_at",
    ]
    list_filter = ["status", "method", "currency", ("run", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["payee", "run"]
    date_hierarchy = "created_at"
    search_fields = ["provider_ref", "payee__legal_name", "payee__display_name", "iban", "paypal_email"]
    ordering = ["-created_at", "-pk"]
    totals_fields = [("amount_minor", "Amount"), ("reversed_minor", "Reversed")]
    fieldsets = [
        (
            None,
            {"fields": ["payee_link", "run_link", "method", "status", "transfer_link", "attempts", "failure_message"]},
        ),
        ("Destination", {"fields": ["bank_account_holder", "iban", "bic", "sepa_file_link", "paypal_email"]}),
        ("Money", {"fields": ["currency", "amount", "reversed_amount"]}),
        ("Dates", {"fields": ["created_at", "paid_at", "updated_at"]}),
    ]
    readonly_fields = [field for _, options in fieldsets for field in options["fields"]]

    amount = money_field("amount_minor", "amount")
    reversed_amount = money_field("reversed_minor", "reversed")

    @admin.display(description="payee", ordering="payee__legal_name")
    def payee_link(self, obj):
        return admin_link(obj.payee)

    @admin.display(description="run", ordering="run_id")
    def run_link(self, obj):
        return admin_link(obj.run, f"#{obj.run_id}") if obj.run_id else EMPTY

    @admin.display(description="SEPA file")
    def sepa_file_link(self, obj):
        return admin_link(obj.sepa_file) if obj.sepa_file_id else EMPTY

    @admin.display(description="bank account", ordering="iban")
    def bank_account(self, obj):
        return " ".join(part for part in (obj.iban, obj.bic) if part) or EMPTY

    @admin.display(description="transfer", ordering="provider_ref")
    def transfer_link(self, obj):
        provider = "stripe" if obj.method == Payout.Method.STRIPE_TRANSFER else obj.method
        return provider_link(provider, "transfer", obj.provider_ref)


@admin.register(ConnectedAccountPayout)
class ConnectedAccountPayoutAdmin(CurrencyTotalsMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Payouts from payees' Stripe accounts to their banks (payout.* events), for information: the money
    left our books when it was transferred."""

    list_display = ["provider_ref", "payee_link", "account_link", "amount", "status", "arrival_date", "updated_at"]
    list_filter = ["status", "currency"]
    list_select_related = ["payee"]
    search_fields = ["provider_ref", "account_ref", "payee__legal_name"]
    ordering = ["-updated_at", "-pk"]
    totals_fields = [("amount_minor", "Amount")]
    fields = [
        "provider_ref",
        "payee_link",
        "account_link",
        "status",
        "failure_message",
        "currency",
        "amount",
        "arrival_date",
        "updated_at",
    ]
    readonly_fields = fields

    amount = money_field("amount_minor", "amount")

    @admin.display(description="payee", ordering="payee__legal_name")
    def payee_link(self, obj):
        return admin_link(obj.payee) if obj.payee_id else EMPTY

    @admin.display(description="Stripe account", ordering="account_ref")
    def account_link(self, obj):
        return provider_link("stripe", "account", obj.account_ref)


from commissions import admin_payout_runs  # noqa: E402, F401 - registers PayoutRunAdmin and SepaFileAdmin
