"""Commission rules: what the platform takes on a line, fixed on the line when the order is created."""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q
from simple_history.models import HistoricalRecords

from payments.models import LineKind


class CommissionRule(models.Model):
    """A rule in force from `valid_from` (inclusive) to `valid_to` (exclusive). The most specific rule in
    force wins: payee and line kind, then payee, then line kind, then the default (no payee, no kind).

    commission = percent of the line's gross (half-up) + a fixed amount (per line, or per order shared by
    the payee's lines of that order), then clamped to [min, max] (per line); fixed amounts, min and max are
    in `currency` and the rule applies only to orders in that currency when they are set."""

    class FixedPer(models.TextChoices):
        LINE = "line", "Per line"
        ORDER = "order", "Per order (shared by the payee's lines)"

    payee = models.ForeignKey(
        "commissions.Payee", null=True, blank=True, on_delete=models.PROTECT, related_name="commission_rules"
    )
    line_kind = models.CharField(max_length=20, choices=LineKind.choices, blank=True)
    percent_bps = models.PositiveIntegerField(default=0, help_text="e.g. 850 = 8.5 %")
    fixed_minor = models.BigIntegerField(default=0)
    fixed_per = models.CharField(max_length=5, choices=FixedPer.choices, default=FixedPer.LINE)
    min_minor = models.BigIntegerField(null=True, blank=True)
    max_minor = models.BigIntegerField(null=True, blank=True)
    currency = models.CharField(
        max_length=3, blank=True, help_text="Currency of the fixed amount, min and max (empty: percent only)"
    )
    valid_from = models.DateTimeField()
    valid_to = models.DateTimeField(null=True, blank=True)
    note = models.CharField(max_length=200, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["payee", "line_kind", "valid_from"]
        constraints = [
            models.CheckConstraint(condition=Q(percent_bps__lte=10000), name="commission_rule_percent_range"),
            models.CheckConstraint(
                condition=Q(fixed_minor__gte=0)
                & (Q(min_minor__isnull=True) | Q(min_minor__gte=0))
                & (Q(max_minor__isnull=True) | Q(max_minor__gte=0)),
                name="commission_rule_amounts_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(min_minor__isnull=True) | Q(max_minor__isnull=True) | Q(max_minor__gte=F("min_minor")),
                name="commission_rule_min_below_max",
            ),
            models.CheckConstraint(
                condition=(Q(fixed_minor=0) & Q(min_minor__isnull=True) & Q(max_minor__isnull=True)) | ~Q(currency=""),
                name="commission_rule_amounts_need_currency",
            ),
            models.CheckConstraint(
                condition=Q(valid_to__isnull=True) | Q(valid_to__gt=F("valid_from")),
                name="commission_rule_period_order",
            ),
        ]

    def __str__(self) -> str:
        scope = f"payee {self.payee_id}" if self.payee_id else "default"
        return f"{scope}{f' / {self.line_kind}' if self.line_kind else ''}: {self.percent_bps / 100:g} %"
