from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords


class DisputeBearer(models.TextChoices):
    PAYEE = "payee", "Payee"
    PLATFORM = "platform", "Platform"


class PayoutMethod(models.TextChoices):
    STRIPE_TRANSFER = "stripe_transfer", "Stripe Connect transfer"
    SEPA_CREDIT_TRANSFER = "sepa_credit_transfer", "SEPA credit transfer (bank file)"
    PAYPAL = "paypal", "PayPal payout"


class PayoutSchedule(models.TextChoices):
    WEEKLY = "weekly", "Weekly (Mondays)"
    MONTHLY = "monthly", "Monthly (1st)"
    MANUAL = "manual", "Manual (staff start a run)"


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
    # Releasing and paying out (DESIGN.md §10).
    release_delay_days = models.PositiveSmallIntegerField(
        default=7, help_text="Goods: days after payment before the payee's share becomes available"
    )
    event_release_delay_days = models.PositiveSmallIntegerField(
        default=1, help_text="Event tickets: days after the event starts before the share becomes available"
    )
    payouts_held = models.BooleanField(
        default=False, help_text="Staff hold: nothing is released or paid out until the hold is lifted"
    )
    hold_reason = models.CharField(max_length=300, blank=True)
    payout_method = models.CharField(max_length=30, choices=PayoutMethod.choices, default=PayoutMethod.STRIPE_TRANSFER)
    payout_schedule = models.CharField(max_length=10, choices=PayoutSchedule.choices, default=PayoutSchedule.WEEKLY)
    payout_minimum_minor = models.BigIntegerField(
        default=0, help_text="Paid out only when available reaches this (minor units of each currency)"
    )
    payout_method_verified = models.BooleanField(
        default=False, help_text="The bank account / PayPal e-mail was checked by staff (Stripe: payouts enabled)"
    )
    bank_account_holder = models.CharField(max_length=140, blank=True)
    iban = models.CharField("IBAN", max_length=34, blank=True)
    bic = models.CharField("BIC", max_length=11, blank=True)
    paypal_email = models.EmailField("PayPal e-mail", blank=True)
    portal_user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="payee"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    class Meta:
        permissions = [
            ("onboard_payee", "Can start a payee's Stripe onboarding"),
            ("hold_payee", "Can hold or release a payee's funds"),
            ("adjust_payee_balance", "Can credit or debit a payee's available balance"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(commission_bps__isnull=True) | Q(commission_bps__lte=10000),
                name="payee_commission_bps_at_most_100_percent",
            ),
            models.CheckConstraint(condition=Q(kind__in=["seller", "organizer"]), name="payee_kind_valid"),
            models.CheckConstraint(condition=Q(country__regex=r"^[A-Z]{2}$"), name="payee_country_iso"),
            models.CheckConstraint(condition=Q(payout_minimum_minor__gte=0), name="payee_payout_minimum_non_negative"),
            models.CheckConstraint(
                condition=Q(payout_method__in=PayoutMethod.values), name="payee_payout_method_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} (#{self.pk})"

    @property
    def name(self) -> str:
        return self.display_name or self.legal_name

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE
