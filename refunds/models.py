from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords


class RefundReason(models.TextChoices):
    REQUESTED_BY_CUSTOMER = "requested_by_customer", "Requested by the buyer"
    DUPLICATE_PAYMENT = "duplicate_payment", "Duplicate payment"
    ORDER_CLOSED = "order_closed", "Payment for a canceled order"
    AMOUNT_MISMATCH = "amount_mismatch", "Captured amount differs from the order"
    MADE_AT_PROVIDER = "made_at_provider", "Made at the provider (e.g. the Stripe dashboard)"
    AUTHORIZATION_RELEASED = "authorization_released", "Not captured (authorization released)"
    FRAUDULENT = "fraudulent", "Fraudulent"
    OTHER = "other", "Other"


class RefundStatus(models.TextChoices):
    REQUESTED = "requested", "Requested"
    APPROVED = "approved", "Approved"
    PROCESSING = "processing", "Processing"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELED = "canceled", "Canceled"


class Refund(models.Model):
    """Money going back to the buyer for (part of) one payment."""

    order = models.ForeignKey("payments.Order", on_delete=models.PROTECT, related_name="refunds")
    payment = models.ForeignKey("payments.Payment", on_delete=models.PROTECT, related_name="refunds")
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    reason = models.CharField(max_length=30, choices=RefundReason.choices)
    # An overpayment refund returns money the order never kept (no payee share to reverse).
    is_overpayment = models.BooleanField(default=False)
    status = models.CharField(
        max_length=20, choices=RefundStatus.choices, default=RefundStatus.REQUESTED, db_index=True
    )
    provider_ref = models.CharField(max_length=255, blank=True)
    provider_attempts = models.PositiveIntegerField(
        default=0, help_text="Times sent to a provider without idempotency keys (GoPay): history is read first"
    )
    first_sent_at = models.DateTimeField(null=True, blank=True)
    failure_message = models.CharField(max_length=300, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    requested_by_label = models.CharField(max_length=150, blank=True)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    succeeded_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["payment", "provider_ref"],
                condition=~Q(provider_ref=""),
                name="refund_provider_ref_unique_per_payment",
            ),
            models.CheckConstraint(condition=Q(amount_minor__gt=0), name="refund_amount_positive"),
            models.CheckConstraint(condition=Q(status__in=RefundStatus.values), name="refund_status_valid"),
        ]

    def __str__(self) -> str:
        return f"Refund #{self.pk} ({self.status})"


class RefundLine(models.Model):
    """How a refund reverses one order line: the part of each of the line's split it takes back.
    Allocated against what is still unrefunded, so the last refund reverses the remainder exactly."""

    refund = models.ForeignKey(Refund, on_delete=models.PROTECT, related_name="lines")
    order_line = models.ForeignKey("payments.OrderLine", on_delete=models.PROTECT, related_name="refund_lines")
    amount_minor = models.BigIntegerField()
    commission_minor = models.BigIntegerField()
    commission_vat_minor = models.BigIntegerField()
    payee_share_minor = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["refund", "order_line"], name="refund_line_unique"),
            models.CheckConstraint(
                condition=Q(amount_minor__gt=0)
                & Q(commission_minor__gte=0)
                & Q(commission_vat_minor__gte=0)
                & Q(payee_share_minor__gte=0),
                name="refund_line_amounts_valid",
            ),
            models.CheckConstraint(
                condition=Q(
                    amount_minor=models.F("commission_minor")
                    + models.F("commission_vat_minor")
                    + models.F("payee_share_minor")
                ),
                name="refund_line_split_adds_up",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.refund_id}/{self.order_line_id}: {self.amount_minor}"


class DisputeStatus(models.TextChoices):
    OPEN = "open", "Open (needs response)"
    UNDER_REVIEW = "under_review", "Under review"
    WON = "won", "Won"
    LOST = "lost", "Lost"
    WARNING_CLOSED = "warning_closed", "Inquiry closed"


class Dispute(models.Model):
    """A chargeback on a payment. Opening holds the payees' share in `reserved`; the outcome releases it
    (won) or turns it into a loss (lost). Money the provider withholds sits in `provider:<p>:disputed`."""

    order = models.ForeignKey("payments.Order", on_delete=models.PROTECT, related_name="disputes")
    payment = models.ForeignKey("payments.Payment", on_delete=models.PROTECT, related_name="disputes")
    provider_ref = models.CharField(max_length=255, unique=True)
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    reason = models.CharField(max_length=60, blank=True)
    status = models.CharField(max_length=20, choices=DisputeStatus.choices, default=DisputeStatus.OPEN, db_index=True)
    provider_status = models.CharField(max_length=40, blank=True)
    held_minor = models.BigIntegerField(default=0, help_text="Payee money moved to reserved when it opened")
    evidence_due_by = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(amount_minor__gt=0) & Q(held_minor__gte=0), name="dispute_amounts_valid"
            ),
            models.CheckConstraint(condition=Q(status__in=DisputeStatus.values), name="dispute_status_valid"),
        ]

    def __str__(self) -> str:
        return f"Dispute {self.provider_ref} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status in (DisputeStatus.OPEN, DisputeStatus.UNDER_REVIEW)
