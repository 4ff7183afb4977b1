from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords


class DisputeBearer(models.TextChoices):
    PAYEE = "payee", "Payee"
    PLATFORM = "platform", "Platform"


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
    address = models.TextField(blank=True, help_text="Registered address, printed on invoices issued in its name")
    vat_id = models.CharField("VAT id", max_length=20, blank=True)
    uses_oss = models.BooleanField(
        "uses OSS",
        default=False,
        help_text="Registered for the One-Stop Shop: EU B2C distance sales are taxed at the buyer's country rate",
    )
    commission_bps = models.PositiveIntegerField(
        "commission override (basis points)",
        null=True,
        blank=True,
        help_text="e.g. 850 = 8.5 %; empty uses the platform default",
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    # Who bears a lost dispute (chargeback): the disputed amount's payee share and the provider's dispute fee.
    dispute_loss_bearer = models.CharField(
        max_length=10,
        choices=DisputeBearer.choices,
        default=DisputeBearer.PAYEE,
        help_text="Lost dispute: the payee loses their held share, or the platform bears it and releases the hold",
    )
    dispute_fee_bearer = models.CharField(
        max_length=10,
        choices=DisputeBearer.choices,
        default=DisputeBearer.PLATFORM,
        help_text="Lost dispute: the provider's dispute fee is charged to the payee's available balance, or not",
    )
    # Stripe Connect (Express): the connected account and its status, kept in sync from account.updated.
    stripe_account_id = models.CharField(max_length=64, null=True, blank=True, unique=True)
    stripe_charges_enabled = models.BooleanField(default=False)
    stripe_payouts_enabled = models.BooleanField(default=False)
    stripe_details_submitted = models.BooleanField(default=False)
    stripe_requirements = models.JSONField(default=dict, blank=True)
    stripe_synced_at = models.DateTimeField(null=True, blank=True)
    stripe_onboarding_links = models.PositiveIntegerField(default=0, help_text="Account links created so far")
    portal_user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="payee"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    class Meta:
        permissions = [("onboard_payee", "Can start a payee's Stripe onboarding")]
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


class Payout(models.Model):
    """Money sent to a payee: taken from `available` into `payouts:in_transit` when created, confirmed when
    the provider has it (a Stripe Connect transfer), reversed back to `available` if it fails or is pulled back.
    The idempotency key of every provider call is derived from this row's id."""

    class Method(models.TextChoices):
        STRIPE_TRANSFER = "stripe_transfer", "Stripe Connect transfer"

    class Status(models.TextChoices):
        CREATED = "created", "Created"
        PROCESSING = "processing", "Sent to the provider"
        PAID = "paid", "Paid"
        FAILED = "failed", "Failed"
        REVERSED = "reversed", "Reversed"

    payee = models.ForeignKey(Payee, on_delete=models.PROTECT, related_name="payouts")
    method = models.CharField(max_length=30, choices=Method.choices, default=Method.STRIPE_TRANSFER)
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.CREATED, db_index=True)
    provider_ref = models.CharField(max_length=255, blank=True, help_text="The transfer at the provider")
    reversed_minor = models.BigIntegerField(default=0)
    attempts = models.PositiveIntegerField(default=0)
    failure_message = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount_minor__gt=0), name="payout_amount_positive"),
            models.CheckConstraint(
                condition=Q(reversed_minor__gte=0) & Q(reversed_minor__lte=models.F("amount_minor")),
                name="payout_reversed_within_amount",
            ),
            models.UniqueConstraint(
                fields=["method", "provider_ref"], condition=~Q(provider_ref=""), name="payout_provider_ref_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"Payout #{self.pk} to {self.payee_id} ({self.status})"


class ConnectedAccountPayout(models.Model):
    """A payout from a payee's Stripe Connect account to its bank (payout.paid/failed events). Informational:
    the money left our books when it was transferred to the connected account."""

    payee = models.ForeignKey(Payee, null=True, blank=True, on_delete=models.PROTECT, related_name="bank_payouts")
    account_ref = models.CharField(max_length=64)
    provider_ref = models.CharField(max_length=64, unique=True)
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=20)
    failure_message = models.CharField(max_length=300, blank=True)
    arrival_date = models.DateField(null=True, blank=True)
    updated_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.provider_ref} {self.status}"
