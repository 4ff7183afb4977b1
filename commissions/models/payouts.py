"""Payouts: runs (scheduled or started by staff, approved above a threshold), one payout per payee and
currency in a run, and the SEPA credit-transfer files finance uploads to the bank."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from commissions.models.payees import Payee, PayoutMethod


class PayoutRun(models.Model):
    """One payout round: every eligible payee (active, not held, method verified, available ≥ its minimum)
    gets one payout per currency. Above `TOLLGATE_PAYOUT_APPROVAL_THRESHOLD` a second staff user approves
    the run before any money moves."""

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", "Schedule (beat)"
        STAFF = "staff", "Started by staff"

    class Status(models.TextChoices):
        AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
        APPROVED = "approved", "Approved (paying)"
        COMPLETED = "completed", "Completed"
        REJECTED = "rejected", "Rejected"

    trigger = models.CharField(max_length=10, choices=Trigger.choices)
    schedule = models.CharField(max_length=10, blank=True, help_text="The payees' schedule this run covers")
    status = models.CharField(max_length=20, choices=Status.choices, db_index=True)
    totals = models.JSONField(default=dict, help_text="Total per currency, minor units")
    payout_count = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(db_index=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    rejection_reason = models.TextField(blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        permissions = [
            ("start_payout_run", "Can start a payout run"),
            ("approve_payout_run", "Can approve or reject payout runs above the approval threshold"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["awaiting_approval", "approved", "completed", "rejected"]),
                name="payout_run_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"Payout run #{self.pk} ({self.status})"


class SepaFile(models.Model):
    """A pain.001 credit-transfer file for the SEPA payouts of a run (EUR), stored as generated. Finance
    downloads it, uploads it to the bank and marks it sent, then confirmed (or imports the bank's answer)."""

    class Status(models.TextChoices):
        GENERATED = "generated", "Generated"
        SENT = "sent", "Sent to the bank"
        CONFIRMED = "confirmed", "Confirmed by the bank"

    run = models.ForeignKey(PayoutRun, on_delete=models.PROTECT, related_name="sepa_files")
    message_id = models.CharField(max_length=35, unique=True)
    currency = models.CharField(max_length=3, default="EUR")
    total_minor = models.BigIntegerField()
    transaction_count = models.PositiveIntegerField()
    content = models.BinaryField()
    sha256 = models.CharField(max_length=64)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.GENERATED)
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords(excluded_fields=["content"])

    class Meta:
        permissions = [("download_sepa_file", "Can download SEPA files and mark them sent or confirmed")]

    def __str__(self) -> str:
        return f"SEPA file {self.message_id} ({self.status})"


class Payout(models.Model):
    """Money sent to a payee: taken from `available` into `payouts:in_transit` when created, confirmed when
    the provider has it (a Stripe Connect transfer), reversed back to `available` if it fails or is pulled back.
    The idempotency key of every provider call is derived from this row's id."""

    Method = PayoutMethod

    class Status(models.TextChoices):
        CREATED = "created", "Created"
        PROCESSING = "processing", "Sent to the provider"
        PAID = "paid", "Paid"
        FAILED = "failed", "Failed"
        REVERSED = "reversed", "Reversed"

    payee = models.ForeignKey(Payee, on_delete=models.PROTECT, related_name="payouts")
    run = models.ForeignKey(
        "commissions.PayoutRun", null=True, blank=True, on_delete=models.PROTECT, related_name="payouts"
    )
    sepa_file = models.ForeignKey(
        "commissions.SepaFile", null=True, blank=True, on_delete=models.PROTECT, related_name="payouts"
    )
    # Where the money goes, as it was when the payout was made (the payee may change it later).
    bank_account_holder = models.CharField(max_length=140, blank=True)
    iban = models.CharField("IBAN", max_length=34, blank=True)
    bic = models.CharField("BIC", max_length=11, blank=True)
    paypal_email = models.EmailField(blank=True)
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
            models.UniqueConstraint(
                fields=["run", "payee", "currency"], condition=Q(run__isnull=False), name="payout_one_per_run_payee"
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
