from django.contrib import admin
from django.utils.html import format_html, format_html_join

from commissions.models import Payee
from core.admin_tools import AuditedAdminMixin, NoDeleteMixin, SafeHistoryAdmin, money
from core.templatetags.money import bps_percent
from ledger.selectors import payee_balances


@admin.register(Payee)
class PayeeAdmin(AuditedAdminMixin, NoDeleteMixin, SafeHistoryAdmin):
    """Sellers and organizers. Suspend instead of deleting: their lines and ledger accounts refer to them."""

    list_display = [
        "id",
        "legal_name",
        "display_name",
        "kind",
        "country",
        "email",
        "commission",
        "status",
        "created_at",
    ]
    list_display_links = ["id", "legal_name"]
    list_filter = ["kind", "status", "country"]
    search_fields = ["legal_name", "display_name", "email", "vat_id"]
    ordering = ["legal_name", "pk"]
    autocomplete_fields = ["portal_user"]
    fieldsets = [
        (None, {"fields": ["kind", "legal_name", "display_name", "country", "email", "vat_id", "status"]}),
        ("Commission", {"fields": ["commission_bps"]}),
        ("Portal", {"fields": ["portal_user"]}),
        ("Ledger", {"fields": ["ledger_balances"]}),
        ("Record", {"fields": ["created_at", "updated_at"]}),
    ]
    readonly_fields = ["ledger_balances", "created_at", "updated_at"]

    @admin.display(description="commission", ordering="commission_bps")
    def commission(self, obj):
        return bps_percent(obj.commission_bps) if obj.commission_bps is not None else "default"

    @admin.display(description="balances")
    def ledger_balances(self, obj):
        """Pending, available and reserved per currency, straight from the payee's ledger accounts."""
        if obj is None or obj.pk is None:
            return "–"
        balances = payee_balances(obj.pk)
        if not balances:
            return "No ledger activity yet."
        rows = format_html_join(
            "",
            '<tr><th scope="row">{}</th><td class="num">{}</td><td class="num">{}</td>'
            '<td class="num">{}</td><td class="num">{}</td></tr>',
            (
                (
                    b.currency,
                    money(b.pending, b.currency),
                    money(b.available, b.currency),
                    money(b.reserved, b.currency),
                    money(b.total, b.currency),
                )
                for b in balances
            ),
        )
        return format_html(
            '<table class="tollgate-balances"><thead><tr><th>currency</th><th>pending</th><th>available</th>'
            "<th>reserved</th><th>total</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )
