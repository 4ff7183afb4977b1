"""On-demand recurring payments: a buyer's first payment sets up a recurrence at the provider (GoPay ON_DEMAND);
each later charge is a normal order with its own payment, charged on the buyer's stored card without them.

A `Recurrence` exists once the provider says the first (parent) payment succeeded with the recurrence started.
A `RecurringCharge` is one amount the marketplace asked us to charge on it: its own `Order` (lines, payee split,
ledger capture through the usual fulfilment path) and one `Payment` per attempt (`payment` is the latest).
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from payments.models import KNOWN_CURRENCIES


class RecurrenceStatus(models.TextChoices):
    REQUESTED = "requested", "Requested (the buyer has not paid the first payment yet)"
    ACTIVE = "active", "Active"
    STOPPED = "stopped", "Stopped"


class RecurrenceCycle(models.TextChoices):
    ON_DEMAND = "on_demand", "On demand"


class Recurrence(models.Model):
    first_order = models.ForeignKey("payments.Order", on_delete=models.PROTECT, related_name="recurrences")
    first_payment = models.ForeignKey(
        "payments.Payment", on_delete=models.PROTECT, related_name="recurrences", help_text="The parent payment"
    )
    provider = models.CharField(max_length=30)
    provider_ref = models.CharField(max_length=255, help_text="The provider's id of the parent payment")
    buyer_email = models.EmailField()
    currency = models.CharField(max_length=3)
    status = models.CharField(
        max_length=20, choices=RecurrenceStatus.choices, default=RecurrenceStatus.REQUESTED, db_index=True
    )
    cycle = models.CharField(max_length=20, choices=RecurrenceCycle.choices, default=RecurrenceCycle.ON_DEMAND)
    valid_until = models.DateField(null=True, blank=True, help_text="The provider refuses charges after this day")
    stopped_at = models.DateTimeField(null=True, blank=True)
    stopped_reason = models.CharField(max_length=300, blank=True)
    stop_sent_at = models.DateTimeField(
        null=True, blank=True, help_text="When the provider knew the recurrence is stopped (we told it, or it told us)"
    )
    created_at = models.DateTimeField(db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    class Meta:
        permissions = [("stop_recurrence", "Can stop recurrences")]
        constraints = [
            models.UniqueConstraint(fields=["first_payment"], name="recurrence_unique_per_first_payment"),
            models.CheckConstraint(condition=Q(status__in=RecurrenceStatus.values), name="recurrence_status_valid"),
            models.CheckConstraint(condition=Q(cycle__in=RecurrenceCycle.values), name="recurrence_cycle_valid"),
            models.CheckConstraint(condition=Q(currency__in=KNOWN_CURRENCIES), name="recurrence_currency_known"),
            models.CheckConstraint(
                condition=~Q(status=RecurrenceStatus.STOPPED) | Q(stopped_at__isnull=False),
                name="recurrence_stopped_has_time",
            ),
        ]

    def __str__(self) -> str:
        return f"Recurrence #{self.pk} {self.provider} {self.status}"


class ChargeStatus(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled (not sent yet)"
    PROCESSING = "processing", "Processing (sent; waiting for the provider's outcome)"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed (will be retried at next_attempt_at)"
    ABANDONED = "abandoned", "Abandoned"


class RecurringCharge(models.Model):
    recurrence = models.ForeignKey(Recurrence, on_delete=models.PROTECT, related_name="charges")
    order = models.OneToOneField("payments.Order", on_delete=models.PROTECT, related_name="recurring_charge")
    payment = models.ForeignKey(
        "payments.Payment",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Our payment for the latest attempt (each attempt is its own payment of the same order)",
    )
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(
        max_length=20, choices=ChargeStatus.choices, default=ChargeStatus.SCHEDULED, db_index=True
    )
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Attempts sent to the provider")
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_error = models.CharField(max_length=300, blank=True)
    needs_review = models.BooleanField(
        default=False,
        db_index=True,
        help_text="The provider's answer to the latest attempt was lost: it may have charged. Not retried until "
        "staff have checked the provider's portal.",
    )
    idempotency_key = models.CharField(
        max_length=255, blank=True, help_text="The API request's Idempotency-Key: a re-run finds this charge"
    )
    created_at = models.DateTimeField(db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    charged_at = models.DateTimeField(null=True, blank=True)
    abandoned_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        permissions = [("resolve_recurringcharge", "Can retry or abandon recurring charges")]
        constraints = [
            models.CheckConstraint(condition=Q(amount_minor__gt=0), name="recurring_charge_amount_positive"),
            models.CheckConstraint(condition=Q(status__in=ChargeStatus.values), name="recurring_charge_status_valid"),
            models.CheckConstraint(condition=Q(currency__in=KNOWN_CURRENCIES), name="recurring_charge_currency_known"),
            models.UniqueConstraint(
                fields=["recurrence", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="recurring_charge_idempotency_key_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"Recurring charge #{self.pk} {self.status}"
