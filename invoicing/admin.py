"""VAT rates: editable, with history; overlapping periods of one country and category are refused.

Issued documents (invoices, credit notes, commission invoices): view only, with their lines, VAT groups and
e-mail deliveries; a PDF download per row, a "re-send by e-mail" action and the VAT report
(`invoicing.admin_views`), each behind its permission."""

from datetime import date

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import BigIntegerField, Case, Exists, F, OuterRef, Sum, When
from django.template.defaultfilters import pluralize
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from core.admin_tools import (
    EMPTY,
    CurrencyTotal,
    CurrencyTotalsMixin,
    ReadOnlyAdminMixin,
    ReadOnlyInline,
    SafeHistoryAdmin,
    admin_link,
    money,
)
from core.audit import record_audit
from core.models import AuditEntry
from invoicing.admin_views import VIEW_PERMISSION, document_pdf_view, vat_report_view
from invoicing.models import DocumentKind, Invoice, InvoiceDelivery, InvoiceLine, InvoiceVatGroup, VatRate
from invoicing.selectors import overlapping_rates
from invoicing.services.delivery import email_document
from invoicing.services.pdf import rate_label

RESEND_PERMISSION = "invoicing.resend_invoice"


class VatRateForm(forms.ModelForm):
    class Meta:
        model = VatRate
        fields = ["country", "category", "rate_bps", "valid_from", "valid_to", "note"]

    def clean_country(self):
        country = (self.cleaned_data.get("country") or "").upper()
        if len(country) != 2 or not country.isalpha():
            raise forms.ValidationError("Use an ISO 3166-1 alpha-2 code such as CZ.")
        return country

    def clean(self):
        cleaned = super().clean()
        country, category = cleaned.get("country"), cleaned.get("category")
        valid_from, valid_to = cleaned.get("valid_from"), cleaned.get("valid_to")
        rate = cleaned.get("rate_bps")
        if rate is not None and rate > 10000:
            self.add_error("rate_bps", "At most 10000 (100 %).")
        if valid_from and valid_to and valid_to <= valid_from:
            self.add_error("valid_to", "Must be after the start.")
        elif country and category and valid_from:
            clash = overlapping_rates(
                country=country,
                category=category,
                valid_from=valid_from,
                valid_to=valid_to,
                exclude_pk=self.instance.pk,
            ).first()
            if clash is not None:
                raise forms.ValidationError(f"The period overlaps {clash}; end that one first.")
        return cleaned


@admin.register(VatRate)
class VatRateAdmin(SafeHistoryAdmin):
    form = VatRateForm
    list_display = ["country", "category", "rate_bps", "valid_from", "valid_to", "note"]
    list_filter = ["country", "category"]
    search_fields = ["country", "note"]
    ordering = ["country", "category", "valid_from"]


# --- Issued documents: invoices, credit notes, commission invoices (view only) ----------------------------


def _signed(field: str):
    """`field`, negative on credit notes (they take amounts back): the changelist totals add these."""
    return Case(
        When(kind=DocumentKind.CREDIT_NOTE, then=F(field) * -1), default=F(field), output_field=BigIntegerField()
    )


class SupplyMonthFilter(admin.SimpleListFilter):
    """The month of the taxable supply (the VAT period a document belongs to)."""

    title = "supply month"
    parameter_name = "supply_month"

    def lookups(self, request, model_admin):
        months = model_admin.get_queryset(request).dates("supply_date", "month", order="DESC")
        return [(month.strftime("%Y-%m"), month.strftime("%B %Y")) for month in months]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        try:
            year, month = (int(part) for part in value.split("-"))
            date(year, month, 1)
        except ValueError:
            return queryset.none()
        return queryset.filter(supply_date__year=year, supply_date__month=month)


def part_money(field: str, description: str):
    """An amount of a document's line or VAT group, negative on a credit note (as the document shows it)."""

    def display(self, obj):
        if obj is None or obj.pk is None or getattr(obj, field) is None:
            return EMPTY
        return money(obj.invoice.sign * getattr(obj, field), obj.invoice.currency)

    display.__name__ = f"{field}_display"
    return admin.display(description=description)(display)


class DocumentPartInline(ReadOnlyInline):
    """A part of a document, shown to whoever may view the document (no separate permission per part)."""

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.has_perm(VIEW_PERMISSION)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("invoice")


class InvoiceLineInline(DocumentPartInline):
    model = InvoiceLine
    fields = ["position", "description", "quantity", "unit_gross", "gross", "rate", "scheme", "tax_country"]
    readonly_fields = fields

    unit_gross = part_money("unit_gross_minor", "unit price (gross)")
    gross = part_money("gross_minor", "gross")

    @admin.display(description="VAT rate")
    def rate(self, obj):
        return rate_label(obj.vat_rate_bps)


class InvoiceVatGroupInline(DocumentPartInline):
    model = InvoiceVatGroup
    verbose_name = "VAT group"
    fields = ["rate", "scheme", "tax_country", "net", "vat", "gross"]
    readonly_fields = fields

    net = part_money("net_minor", "net")
    vat = part_money("vat_minor", "VAT")
    gross = part_money("gross_minor", "gross")

    @admin.display(description="VAT rate")
    def rate(self, obj):
        return rate_label(obj.rate_bps)


class InvoiceDeliveryInline(DocumentPartInline):
    model = InvoiceDelivery
    verbose_name = "e-mail delivery"
    verbose_name_plural = "e-mail deliveries"
    fields = ["to", "sent_at", "actor_label"]
    readonly_fields = fields


@admin.register(Invoice)
class InvoiceAdmin(CurrencyTotalsMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Invoices, credit notes and commission invoices: view, download, re-send; never edited."""

    list_display = [
        "number",
        "kind_title",
        "payee_link",
        "order_or_period",
        "recipient",
        "currency",
        "gross",
        "vat",
        "scheme",
        "tax_country",
        "issued_at",
        "emailed",
        "pdf_link",
    ]
    list_filter = [
        "kind",
        ("payee", admin.RelatedOnlyFieldListFilter),
        ("series", admin.RelatedOnlyFieldListFilter),
        SupplyMonthFilter,
        "tax_country",
        "scheme",
        "currency",
    ]
    list_select_related = ["payee", "order"]
    date_hierarchy = "supply_date"
    search_fields = ["^number", "=order__reference", "order__token", "=recipient_email"]
    search_help_text = "Number (whole or its start), order reference or token, recipient e-mail"
    ordering = ["-issued_at", "-pk"]
    totals_fields = [("net_minor", "Net"), ("vat_minor", "VAT"), ("gross_minor", "Gross")]
    change_list_template = "admin/invoicing/invoice/change_list.html"
    inlines = [InvoiceLineInline, InvoiceVatGroupInline, InvoiceDeliveryInline]
    actions = ["resend_by_email"]
    fieldsets = [
        (None, {"fields": ["number", "kind_title", "series", "payee_link", "order_link", "pdf_link"]}),
        ("Credit note", {"fields": ["original_link", "refund_link"]}),
        ("Period (commission invoices)", {"fields": ["period_start", "period_end"]}),
        ("Issuer", {"fields": ["issuer_name", "issuer_address", "issuer_country", "issuer_vat_id"]}),
        (
            "Recipient",
            {
                "fields": [
                    "recipient_name",
                    "recipient_address",
                    "recipient_email",
                    "recipient_country",
                    "recipient_vat_id",
                    "recipient_vat_id_valid",
                ]
            },
        ),
        ("Amounts", {"fields": ["currency", "net", "vat", "gross", "scheme", "tax_country", "legends"]}),
        ("Payment and dates", {"fields": ["payment_method", "paid_at", "supply_date", "issued_at", "locale"]}),
    ]
    readonly_fields = [field for _, options in fieldsets for field in options["fields"]]

    def get_queryset(self, request):
        delivered = InvoiceDelivery.objects.filter(invoice=OuterRef("pk"))
        return super().get_queryset(request).annotate(was_emailed=Exists(delivered))

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "title": self._list_title(request)}
        if request.user.has_perm(VIEW_PERMISSION):
            extra_context["vat_report_url"] = reverse("admin:invoicing_invoice_vat_report")
        return super().changelist_view(request, extra_context)

    def _list_title(self, request) -> str:
        titles = {
            DocumentKind.INVOICE: "Invoices",
            DocumentKind.CREDIT_NOTE: "Credit notes",
            DocumentKind.COMMISSION_INVOICE: "Commission invoices",
        }
        return titles.get(request.GET.get("kind__exact"), "Invoices, credit notes and commission invoices")

    def currency_totals(self, queryset) -> list[CurrencyTotal]:
        """Per currency, signed: credit notes subtract."""
        rows = list(
            Invoice.objects.filter(pk__in=queryset.values("pk"))
            .order_by()
            .values("currency")
            .annotate(**{name: Sum(_signed(name)) for name, _ in self.totals_fields})
            .order_by("currency")
        )
        return [
            CurrencyTotal(
                label=label,
                text=" · ".join(money(row[name] or 0, row["currency"]) for row in rows) if rows else EMPTY,
            )
            for name, label in self.totals_fields
        ]

    # --- columns ----------------------------------------------------------------------------------------

    @admin.display(description="kind", ordering="kind")
    def kind_title(self, obj):
        return obj.title

    @admin.display(description="payee", ordering="payee__legal_name")
    def payee_link(self, obj):
        return admin_link(obj.payee)

    @admin.display(description="order / period")
    def order_or_period(self, obj):
        if obj.order_id:
            return admin_link(obj.order, obj.order.reference or obj.order.short_token)
        if obj.period_start:
            return f"{obj.period_start.isoformat()} – {obj.period_end.isoformat()}"
        return EMPTY

    @admin.display(description="order")
    def order_link(self, obj):
        return admin_link(obj.order) if obj.order_id else EMPTY

    @admin.display(description="original invoice")
    def original_link(self, obj):
        return admin_link(obj.original, obj.original.number) if obj.original_id else EMPTY

    @admin.display(description="refund")
    def refund_link(self, obj):
        return admin_link(obj.refund) if obj.refund_id else EMPTY

    @admin.display(description="recipient", ordering="recipient_email")
    def recipient(self, obj):
        return obj.recipient_email or obj.recipient_name or EMPTY

    @admin.display(description="gross", ordering="gross_minor")
    def gross(self, obj):
        return money(obj.sign * obj.gross_minor, obj.currency)

    @admin.display(description="VAT", ordering="vat_minor")
    def vat(self, obj):
        return money(obj.sign * obj.vat_minor, obj.currency)

    @admin.display(description="net", ordering="net_minor")
    def net(self, obj):
        return money(obj.sign * obj.net_minor, obj.currency)

    @admin.display(description="e-mailed", boolean=True, ordering="was_emailed")
    def emailed(self, obj):
        was_emailed = getattr(obj, "was_emailed", None)
        return obj.deliveries.exists() if was_emailed is None else was_emailed

    @admin.display(description="PDF")
    def pdf_link(self, obj):
        if obj is None or obj.pk is None:
            return EMPTY
        return format_html('<a href="{}">Download PDF</a>', reverse("admin:invoicing_invoice_pdf", args=[obj.pk]))

    # --- URLs: PDF download and the VAT report (invoicing.admin_views) -----------------------------------

    def get_urls(self):
        def wrap(view):
            return self.admin_site.admin_view(view)

        return [
            path(
                "vat-report/", wrap(lambda request: vat_report_view(self, request)), name="invoicing_invoice_vat_report"
            ),
            path(
                "<path:object_id>/pdf/",
                wrap(lambda request, object_id: document_pdf_view(self, request, object_id)),
                name="invoicing_invoice_pdf",
            ),
            *super().get_urls(),
        ]

    # --- re-send by e-mail (invoicing.resend_invoice; each re-send logged and audited) -------------------

    def has_resend_permission(self, request) -> bool:
        return request.user.has_perm(RESEND_PERMISSION)

    @admin.action(description="Re-send by e-mail (PDF attached)", permissions=["resend"])
    def resend_by_email(self, request, queryset):
        if not self.has_resend_permission(request):
            raise PermissionDenied
        sent, skipped, failed = 0, 0, 0
        actor_label = f"staff:{request.user}"
        for invoice in queryset.order_by("pk"):
            try:
                delivered = email_document(invoice_id=invoice.pk, now=timezone.now(), actor_label=actor_label)
            except Exception as exc:  # an SMTP or rendering failure: the other documents still go
                failed += 1
                record_audit(
                    action="invoicing.document.resend",
                    actor=request.user,
                    obj=invoice,
                    request=request,
                    outcome=AuditEntry.Outcome.FAILURE,
                    message=f"{type(exc).__name__}: {exc}"[:500],
                )
                continue
            if delivered:
                sent += 1
            else:
                skipped += 1
            record_audit(
                action="invoicing.document.resend",
                actor=request.user,
                obj=invoice,
                request=request,
                message="sent" if delivered else "no recipient e-mail address",
                metadata={"number": invoice.number, "to": invoice.recipient_email, "sent": delivered},
            )
        if sent:
            self.message_user(request, f"Sent {sent} document{pluralize(sent)} by e-mail.", messages.SUCCESS)
        if skipped:
            self.message_user(
                request,
                f"{skipped} document{pluralize(skipped)} not sent: no recipient e-mail address.",
                messages.WARNING,
            )
        if failed:
            self.message_user(request, f"{failed} document{pluralize(failed)} could not be sent.", messages.ERROR)
