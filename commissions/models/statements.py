"""Payee statements: per payout and per month, built from ledger entries only."""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q

from core.immutable import AppendOnlyModel


class PayoutStatement(AppendOnlyModel):
    """What happened on a payee's balance (pending + available + reserved) in one currency over a period:
    opening + sales − refunds − disputes − commission − VAT on commission + adjustments − payouts = closing.
    Written once with its PDF; a later correction is a new statement."""

    class Kind(models.TextChoices):
        PAYOUT = "payout", "Per payout"
        MONTH = "month", "Monthly"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    payee = models.ForeignKey("commissions.Payee", on_delete=models.PROTECT, related_name="statements")
    payout = models.OneToOneField(
        "commissions.Payout", null=True, blank=True, on_delete=models.PROTECT, related_name="statement"
    )
    currency = models.CharField(max_length=3)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    opening_minor = models.BigIntegerField()
    sales_minor = models.BigIntegerField()
    refunds_minor = models.BigIntegerField()
    disputes_minor = models.BigIntegerField()
    commission_minor = models.BigIntegerField()
    commission_vat_minor = models.BigIntegerField()
    adjustments_minor = models.BigIntegerField()
    payouts_minor = models.BigIntegerField()
    closing_minor = models.BigIntegerField()
    pdf = models.BinaryField(blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    issued_at = models.DateTimeField()

    class Meta:
        ordering = ["-period_end", "-pk"]
        permissions = [("resend_statement", "Can e-mail a payee statement again")]
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    closing_minor=F("opening_minor")
                    + F("sales_minor")
                    - F("refunds_minor")
                    - F("disputes_minor")
                    - F("commission_minor")
                    - F("commission_vat_minor")
                    + F("adjustments_minor")
                    - F("payouts_minor")
                ),
                name="statement_opening_plus_movements_is_closing",
            ),
            models.UniqueConstraint(
                fields=["payee", "currency", "period_start"], condition=Q(kind="month"), name="statement_one_per_month"
            ),
        ]

    def __str__(self) -> str:
        return f"Statement {self.reference}"

    @property
    def reference(self) -> str:
        """`P0007-2026-10-EUR` (a month) or `P0007-PO123` (a payout): the payee, then what it covers."""
        if self.kind == self.Kind.PAYOUT:
            return f"P{self.payee_id:04d}-PO{self.payout_id}"
        return f"P{self.payee_id:04d}-{self.period_start:%Y-%m}-{self.currency}"

    @property
    def title(self) -> str:
        if self.kind == self.Kind.PAYOUT:
            return "Payout statement"
        return "Monthly statement"


class StatementDelivery(AppendOnlyModel):
    """Each time a statement was e-mailed to the payee (the first send and every staff re-send)."""

    statement = models.ForeignKey(PayoutStatement, on_delete=models.PROTECT, related_name="deliveries")
    to = models.EmailField()
    sent_at = models.DateTimeField()
    actor_label = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["statement", "sent_at"]
        verbose_name_plural = "statement deliveries"

    def __str__(self) -> str:
        return f"{self.statement_id} → {self.to} at {self.sent_at:%Y-%m-%d %H:%M}"
