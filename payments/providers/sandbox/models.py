"""State of the simulated gateway. It plays the part of a provider's own database: our payments code
reaches it only through `client.py`, as it would reach Stripe through its SDK."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q


class SandboxSession(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        REQUIRES_ACTION = "requires_action", "Waiting for 3-D Secure"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELED = "canceled", "Canceled"
        EXPIRED = "expired", "Expired"

    token = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    idempotency_key = models.CharField(max_length=200, unique=True)
    merchant_name = models.CharField(max_length=200)
    description = models.CharField(max_length=300)
    reference = models.CharField(max_length=100, help_text="The merchant's own reference (our payment id)")
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    fee_minor = models.BigIntegerField(default=0)
    refunded_minor = models.BigIntegerField(default=0)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN)
    decline_code = models.CharField(max_length=60, blank=True)
    return_url = models.URLField(max_length=1000)
    cancel_url = models.URLField(max_length=1000)
    notification_url = models.URLField(max_length=1000)
    metadata = models.JSONField(default=dict, blank=True)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "sandbox checkout session"
        constraints = [
            models.CheckConstraint(condition=Q(amount_minor__gt=0), name="sandbox_session_amount_positive"),
            models.CheckConstraint(
                condition=Q(refunded_minor__gte=0) & Q(refunded_minor__lte=models.F("amount_minor")),
                name="sandbox_session_refund_within_amount",
            ),
        ]

    def __str__(self) -> str:
        return f"sbx_{self.token.hex[:12]} {self.status}"

    @property
    def public_id(self) -> str:
        return f"sbx_{self.token.hex}"


class SandboxRefund(models.Model):
    session = models.ForeignKey(SandboxSession, on_delete=models.PROTECT, related_name="refunds")
    idempotency_key = models.CharField(max_length=200, unique=True)
    amount_minor = models.BigIntegerField()
    created_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"sbx_re_{self.pk}"

    @property
    def public_id(self) -> str:
        return f"sbx_re_{self.pk}"


class SandboxEvent(models.Model):
    """The gateway's outbox: events it delivers (signed) to the merchant's notification URL."""

    event_id = models.CharField(max_length=60, unique=True)
    session = models.ForeignKey(SandboxSession, on_delete=models.PROTECT, related_name="events")
    event_type = models.CharField(max_length=60)
    payload = models.JSONField()
    created_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id}"


class SandboxDispute(models.Model):
    """A chargeback the sandbox "bank" raised on a succeeded session (opened from our admin, as a test).
    Opening withdraws the amount and a fee from the merchant's sandbox balance; winning gives the amount back."""

    class Status(models.TextChoices):
        NEEDS_RESPONSE = "needs_response", "Needs response"
        UNDER_REVIEW = "under_review", "Under review"
        WON = "won", "Won"
        LOST = "lost", "Lost"

    session = models.ForeignKey(SandboxSession, on_delete=models.PROTECT, related_name="disputes")
    amount_minor = models.BigIntegerField()
    fee_minor = models.BigIntegerField(default=0)
    reason = models.CharField(max_length=60)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.NEEDS_RESPONSE)
    evidence_due_by = models.DateTimeField()
    created_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "sandbox dispute"
        constraints = [
            models.CheckConstraint(condition=Q(amount_minor__gt=0), name="sandbox_dispute_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.public_id} {self.status}"

    @property
    def public_id(self) -> str:
        return f"sbx_dp_{self.pk}"
