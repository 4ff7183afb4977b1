"""VAT rates (editable in the admin, history kept) and the issued documents: invoices, credit notes and
commission invoices with their lines, VAT groups, PDFs and e-mail deliveries."""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q
from simple_history.models import HistoricalRecords

from core.immutable import AppendOnlyModel
from invoicing.vat import VatCategory, VatScheme


class VatRate(models.Model):
    """A rate in force in a country for a category from `valid_from` (inclusive) to `valid_to` (exclusive).

    Periods of one country and category must not overlap: the admin form refuses it (SQLite has no exclusion
    constraints); `invoicing.selectors.overlapping_rates` finds any that slipped in.
    """

    country = models.CharField(max_length=2, help_text="ISO 3166-1 alpha-2 (Greece is GR)")
    category = models.CharField(max_length=20, choices=VatCategory.choices)
    rate_bps = models.PositiveIntegerField("rate (basis points)", help_text="e.g. 2100 = 21 %")
    valid_from = models.DateField()
    valid_to = models.DateField(null=True, blank=True, help_text="First day no longer valid; empty = open-ended")
    note = models.CharField(max_length=200, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["country", "category", "valid_from"]
        constraints = [
            models.CheckConstraint(condition=Q(rate_bps__gte=0, rate_bps__lte=10000), name="vatrate_rate_range"),
            models.CheckConstraint(
                condition=Q(valid_to__isnull=True) | Q(valid_to__gt=F("valid_from")), name="vatrate_period_order"
            ),
            models.UniqueConstraint(fields=["country", "category", "valid_from"], name="vatrate_unique_start"),
        ]
        indexes = [models.Index(fields=["country", "category", "valid_from"], name="vatrate_lookup_idx")]

    def __str__(self) -> str:
        end = self.valid_to.isoformat() if self.valid_to else "…"
        return f"{self.country} {self.category} {self.rate_bps / 100:g} % ({self.valid_from.isoformat()} – {end})"


class DocumentKind(models.TextChoices):
    INVOICE = "invoice", "Invoice"
    CREDIT_NOTE = "credit_note", "Credit note"
    COMMISSION_INVOICE = "commission_invoice", "Commission invoice"


class InvoiceSeries(models.Model):
    """A gapless numbering series: per payee, document kind and year (the platform's own series, for the
    commission invoices it issues, has no payee). `last_number` is taken under a row lock in the transaction
    that issues the document, so a rolled-back issue gives its number back and concurrent issues queue."""

    payee = models.ForeignKey(
        "commissions.Payee", null=True, blank=True, on_delete=models.PROTECT, related_name="invoice_series"
    )
    kind = models.CharField(max_length=20, choices=DocumentKind.choices)
    year = models.PositiveSmallIntegerField()
    prefix = models.CharField(max_length=40)
    last_number = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name_plural = "invoice series"
        constraints = [
            models.UniqueConstraint(
                fields=["payee", "kind", "year"], condition=Q(payee__isnull=False), name="series_unique_per_payee"
            ),
            models.UniqueConstraint(
                fields=["kind", "year"], condition=Q(payee__isnull=True), name="series_unique_platform"
            ),
            models.UniqueConstraint(fields=["prefix"], name="series_prefix_unique"),
            models.CheckConstraint(condition=Q(kind__in=DocumentKind.values), name="series_kind_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.prefix}… (last {self.last_number})"


class Invoice(AppendOnlyModel):
    """An issued tax document: a buyer's invoice (in the payee's name, issued by the platform), a credit note
    against one, or the platform's commission invoice to a payee. Written once with its lines and VAT groups
    and never changed (the database refuses UPDATE and DELETE); the PDF is stored beside it (`InvoicePdf`).

    Amounts are positive on every kind; a credit note takes its amounts off its original. A commission invoice
    may net to a negative total (more commission returned on refunds than earned in the month): it is then a
    commission credit."""

    kind = models.CharField(max_length=20, choices=DocumentKind.choices, db_index=True)
    series = models.ForeignKey(InvoiceSeries, on_delete=models.PROTECT, related_name="documents")
    sequence = models.PositiveIntegerField()
    number = models.CharField(max_length=60, unique=True)
    payee = models.ForeignKey("commissions.Payee", on_delete=models.PROTECT, related_name="invoices")
    order = models.ForeignKey(
        "payments.Order", null=True, blank=True, on_delete=models.PROTECT, related_name="invoices"
    )
    refund = models.ForeignKey(
        "refunds.Refund", null=True, blank=True, on_delete=models.PROTECT, related_name="credit_notes"
    )
    original = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="credit_notes")
    period_start = models.DateField(null=True, blank=True, help_text="Commission invoices: first day of the month")
    period_end = models.DateField(null=True, blank=True, help_text="Commission invoices: last day of the month")
    issuer_name = models.CharField(max_length=200)
    issuer_address = models.TextField(blank=True)
    issuer_country = models.CharField(max_length=2)
    issuer_vat_id = models.CharField(max_length=20, blank=True)
    recipient_name = models.CharField(max_length=200, blank=True)
    recipient_address = models.TextField(blank=True)
    recipient_email = models.EmailField(blank=True)
    recipient_country = models.CharField(max_length=2, blank=True)
    recipient_vat_id = models.CharField(max_length=20, blank=True)
    recipient_vat_id_valid = models.BooleanField(default=False, help_text="Checked when the order was created")
    currency = models.CharField(max_length=3)
    net_minor = models.BigIntegerField()
    vat_minor = models.BigIntegerField()
    gross_minor = models.BigIntegerField()
    scheme = models.CharField(
        max_length=20, choices=VatScheme.choices, help_text="The scheme of the largest VAT group", db_index=True
    )
    tax_country = models.CharField(max_length=2, help_text="Country of taxation of the largest VAT group")
    legends = models.TextField(blank=True, help_text="Legal notes printed on the document, one per line")
    payment_method = models.CharField(max_length=100, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    supply_date = models.DateField(help_text="Date of the taxable supply (payment, refund or end of period)")
    issued_at = models.DateTimeField(db_index=True)
    locale = models.CharField(max_length=10, default="en")

    class Meta:
        ordering = ["-issued_at", "-pk"]
        permissions = [("resend_invoice", "Can e-mail invoices and credit notes again")]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=DocumentKind.values), name="invoice_kind_valid"),
            models.CheckConstraint(
                condition=Q(gross_minor=F("net_minor") + F("vat_minor")), name="invoice_net_plus_vat_is_gross"
            ),
            models.CheckConstraint(
                condition=Q(kind="commission_invoice")
                | (Q(net_minor__gte=0) & Q(vat_minor__gte=0) & Q(gross_minor__gt=0)),
                name="invoice_amounts_positive",
            ),
            models.UniqueConstraint(fields=["series", "sequence"], name="invoice_sequence_unique_in_series"),
            models.UniqueConstraint(
                fields=["order", "payee"], condition=Q(kind="invoice"), name="invoice_one_per_order_and_payee"
            ),
            models.UniqueConstraint(
                fields=["refund", "payee"],
                condition=Q(kind="credit_note"),
                name="credit_note_one_per_refund_and_payee",
            ),
            models.UniqueConstraint(
                fields=["payee", "period_start", "currency"],
                condition=Q(kind="commission_invoice"),
                name="commission_invoice_one_per_payee_month_currency",
            ),
            models.CheckConstraint(
                condition=~Q(kind="credit_note") | (Q(original__isnull=False) & Q(refund__isnull=False)),
                name="credit_note_has_original_and_refund",
            ),
            models.CheckConstraint(condition=~Q(kind="invoice") | Q(order__isnull=False), name="invoice_has_order"),
            models.CheckConstraint(
                condition=~Q(kind="commission_invoice") | (Q(period_start__isnull=False) & Q(period_end__isnull=False)),
                name="commission_invoice_has_period",
            ),
        ]
        indexes = [models.Index(fields=["tax_country", "supply_date"], name="invoice_report_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.number}"

    @property
    def title(self) -> str:
        if self.kind == DocumentKind.COMMISSION_INVOICE and self.gross_minor < 0:
            return "Commission credit note"
        return self.get_kind_display()

    @property
    def sign(self) -> int:
        """+1 for what the document charges, −1 for what it takes back (VAT reports add signed amounts)."""
        return -1 if self.kind == DocumentKind.CREDIT_NOTE else 1


class InvoiceLine(AppendOnlyModel):
    """A line of a document, with the VAT treatment fixed on the order line. Gross (VAT-inclusive) amounts;
    commission invoices list one line per order (negative for commission returned on a refund)."""

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="lines")
    position = models.PositiveIntegerField()
    description = models.CharField(max_length=300)
    quantity = models.PositiveIntegerField(default=1)
    unit_gross_minor = models.BigIntegerField()
    gross_minor = models.BigIntegerField()
    net_minor = models.BigIntegerField(null=True, blank=True, help_text="Commission invoices: net as booked")
    vat_minor = models.BigIntegerField(null=True, blank=True, help_text="Commission invoices: VAT as booked")
    vat_rate_bps = models.PositiveIntegerField()
    scheme = models.CharField(max_length=20, choices=VatScheme.choices)
    tax_country = models.CharField(max_length=2)
    order_line = models.ForeignKey(
        "payments.OrderLine", null=True, blank=True, on_delete=models.PROTECT, related_name="invoice_lines"
    )
    order = models.ForeignKey(
        "payments.Order", null=True, blank=True, on_delete=models.PROTECT, related_name="commission_lines"
    )

    class Meta:
        ordering = ["invoice", "position"]
        constraints = [
            models.UniqueConstraint(fields=["invoice", "position"], name="invoice_line_position_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.invoice_id}/{self.position}: {self.description}"


class InvoiceVatGroup(AppendOnlyModel):
    """The VAT breakdown of a document: one row per (rate, scheme, country of taxation)."""

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="vat_groups")
    rate_bps = models.PositiveIntegerField()
    scheme = models.CharField(max_length=20, choices=VatScheme.choices)
    tax_country = models.CharField(max_length=2)
    net_minor = models.BigIntegerField()
    vat_minor = models.BigIntegerField()
    gross_minor = models.BigIntegerField()

    class Meta:
        ordering = ["invoice", "-rate_bps", "scheme", "tax_country"]
        constraints = [
            models.UniqueConstraint(
                fields=["invoice", "rate_bps", "scheme", "tax_country"], name="invoice_vat_group_unique"
            ),
            models.CheckConstraint(
                condition=Q(gross_minor=F("net_minor") + F("vat_minor")), name="vat_group_net_plus_vat_is_gross"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.invoice_id} {self.rate_bps / 100:g} % {self.scheme} {self.tax_country}"


class InvoicePdf(AppendOnlyModel):
    """The rendered document, stored once with its SHA-256 (in the database, so the PDF commits or rolls
    back with nothing else half-written; ~30 kB each)."""

    invoice = models.OneToOneField(Invoice, on_delete=models.PROTECT, related_name="pdf", primary_key=True)
    content = models.BinaryField()
    sha256 = models.CharField(max_length=64)
    size = models.PositiveIntegerField()
    rendered_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"PDF of {self.invoice_id} ({self.size} bytes, sha256 {self.sha256[:12]}…)"


class InvoiceDelivery(AppendOnlyModel):
    """Each time a document was e-mailed (first send and every re-send)."""

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="deliveries")
    to = models.EmailField()
    sent_at = models.DateTimeField()
    actor_label = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["invoice", "sent_at"]
        verbose_name_plural = "invoice deliveries"

    def __str__(self) -> str:
        return f"{self.invoice_id} → {self.to} at {self.sent_at:%Y-%m-%d %H:%M}"
