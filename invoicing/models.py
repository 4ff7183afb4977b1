"""VAT rates per country, category and validity period (editable in the admin, history kept)."""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q
from simple_history.models import HistoricalRecords

from invoicing.vat import VatCategory


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
