"""The ledger, view only. Rows are written by `ledger.services.post_transaction` alone and are immutable
(ORM and database); mistakes are corrected by a reversing transaction, never from the admin."""

from django.contrib import admin

from core.admin_tools import ReadOnlyAdminMixin, ReadOnlyInline, admin_link, money, money_field, pretty_json
from ledger.models import Account, Entry, LedgerTransaction


@admin.register(Account)
class AccountAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "code",
        "name",
        "kind",
        "currency",
        "balance",
        "debits",
        "credits",
        "balance_rule",
    ]
    list_filter = ["kind", "currency", "balance_rule"]
    search_fields = ["code", "name"]
    ordering = ["code", "currency"]
    fields = [
        "code",
        "name",
        "kind",
        "currency",
        "payee_link",
        "balance_rule",
        "balance",
        "debits",
        "credits",
        "created_at",
    ]
    readonly_fields = fields

    debits = money_field("debits_posted", "debits posted")
    credits = money_field("credits_posted", "credits posted")

    @admin.display(description="balance")
    def balance(self, obj):
        """In the account's natural sign: assets and expenses debit-positive, the others credit-positive."""
        return money(obj.balance_minor, obj.currency)

    @admin.display(description="payee")
    def payee_link(self, obj):
        return admin_link(obj.payee) if obj.payee_id else "–"


class EntryInline(ReadOnlyInline):
    model = Entry
    fields = ["account_link", "direction", "amount"]
    readonly_fields = fields

    amount = money_field("amount_minor", "amount")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("account").order_by("direction", "account__code", "pk")

    @admin.display(description="account")
    def account_link(self, obj):
        return admin_link(obj.account)


@admin.register(LedgerTransaction)
class LedgerTransactionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["occurred_at", "kind", "idempotency_key", "memo", "posted_at"]
    list_filter = ["kind"]
    date_hierarchy = "occurred_at"
    search_fields = ["idempotency_key", "memo"]
    ordering = ["-occurred_at", "-posted_at"]
    fields = [
        "id",
        "idempotency_key",
        "kind",
        "occurred_at",
        "posted_at",
        "memo",
        "reverses_link",
        "reversed_by_link",
        "metadata_pretty",
    ]
    readonly_fields = fields
    inlines = [EntryInline]

    @admin.display(description="reverses")
    def reverses_link(self, obj):
        return admin_link(obj.reverses) if obj.reverses_id else "–"

    @admin.display(description="reversed by")
    def reversed_by_link(self, obj):
        reversal = LedgerTransaction.objects.filter(reverses=obj).first()
        return admin_link(reversal) if reversal else "–"

    @admin.display(description="metadata")
    def metadata_pretty(self, obj):
        return pretty_json(obj.metadata)
