from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords


class Payee(models.Model):
    """Someone the platform collects money for: a seller of goods or an event organizer."""

    class Kind(models.TextChoices):
        SELLER = "seller", "Seller"
        ORGANIZER = "organizer", "Event organizer"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    legal_name = models.CharField(max_length=200)
    display_name = models.CharField(max_length=200, blank=True, help_text="Shown to buyers; legal name if empty")
    country = models.CharField(max_length=2, help_text="ISO 3166-1 alpha-2")
    email = models.EmailField()
    vat_id = models.CharField("VAT id", max_length=20, blank=True)
    commission_bps = models.PositiveIntegerField(
        "commission override (basis points)",
        null=True,
        blank=True,
        help_text="e.g. 850 = 8.5 %; empty uses the platform default",
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    portal_user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="payee"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(commission_bps__isnull=True) | Q(commission_bps__lte=10000),
                name="payee_commission_bps_at_most_100_percent",
            ),
            models.CheckConstraint(condition=Q(kind__in=["seller", "organizer"]), name="payee_kind_valid"),
            models.CheckConstraint(condition=Q(country__regex=r"^[A-Z]{2}$"), name="payee_country_iso"),
        ]

    def __str__(self) -> str:
        return f"{self.name} (#{self.pk})"

    @property
    def name(self) -> str:
        return self.display_name or self.legal_name

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE
