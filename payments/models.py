"""Orders, their lines, payment attempts, payment links and the webhook inbox."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from simple_history.models import HistoricalRecords

from invoicing.vat import VatCategory, VatScheme
from ledger.money import CURRENCY_EXPONENTS

KNOWN_CURRENCIES = sorted(CURRENCY_EXPONENTS)


class OrderStatus(models.TextChoices):
    OPEN = "open", "Open"
    PAID = "paid", "Paid"
    PARTIALLY_REFUNDED = "partially_refunded", "Partially refunded"
    REFUNDED = "refunded", "Refunded"
    CANCELED = "canceled", "Canceled"
    EXPIRED = "expired", "Expired"


class CaptureMethod(models.TextChoices):
    AUTOMATIC = "automatic", "Automatic (charged at once)"
    MANUAL = "manual", "Manual (authorized, captured later by staff)"


class LineKind(models.TextChoices):
    GOODS = "goods", "Goods"
    SERVICE = "service", "Service"
    EVENT_TICKET = "event_ticket", "Event ticket"


class Order(models.Model):
    token = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    api_client = models.ForeignKey(
        "core.ApiClient", null=True, blank=True, on_delete=models.PROTECT, related_name="orders"
    )
    payment_link = models.ForeignKey(
        "payments.PaymentLink", null=True, blank=True, on_delete=models.PROTECT, related_name="orders"
    )
    reference = models.CharField(
        max_length=100, null=True, blank=True, help_text="The marketplace's own order reference"
    )
    description = models.CharField(max_length=200, blank=True)
    buyer_email = models.EmailField()
    buyer_country = models.CharField(max_length=2, blank=True)
    buyer_vat_id = models.CharField(max_length=20, blank=True)
    buyer_vat_id_valid = models.BooleanField(
        default=False, help_text="Format and check digits (and VIES where configured) passed at creation"
    )
    buyer_name = models.CharField(max_length=200, blank=True, help_text="Printed on the invoice")
    buyer_address = models.TextField(blank=True, help_text="Printed on the invoice")
    locale = models.CharField(max_length=10, default="en")
    currency = models.CharField(max_length=3)
    total_minor = models.BigIntegerField(help_text="Sum of the lines' gross amounts")
    refunded_minor = models.BigIntegerField(default=0)
    status = models.CharField(max_length=20, choices=OrderStatus.choices, default=OrderStatus.OPEN, db_index=True)
    return_url = models.URLField(
        max_length=500, blank=True, help_text="Where the buyer may go back to the marketplace after paying"
    )
    metadata = models.JSONField(default=dict, blank=True)
    capture_method = models.CharField(
        max_length=10,
        choices=CaptureMethod.choices,
        default=CaptureMethod.AUTOMATIC,
        help_text="Manual: the card is only authorized (where the provider can) and captured later, in full or part",
    )
    recurring = models.BooleanField(
        default=False, help_text="The first payment also sets up on-demand recurring charges (where the provider can)"
    )
    expires_at = models.DateTimeField(db_index=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    confirmation_sent_at = models.DateTimeField(
        null=True, blank=True, help_text="When the buyer's payment confirmation was e-mailed"
    )
    canceled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords(excluded_fields=["metadata"])

    class Meta:
        permissions = [("cancel_order", "Can cancel open orders")]
        constraints = [
            models.UniqueConstraint(
                fields=["api_client", "reference"],
                condition=Q(reference__isnull=False),
                name="order_reference_unique_per_client",
            ),
            models.CheckConstraint(condition=Q(total_minor__gt=0), name="order_total_positive"),
            models.CheckConstraint(
                condition=Q(refunded_minor__gte=0) & Q(refunded_minor__lte=F("total_minor")),
                name="order_refunded_within_total",
            ),
            models.CheckConstraint(condition=Q(currency__in=KNOWN_CURRENCIES), name="order_currency_known"),
            models.CheckConstraint(condition=Q(status__in=OrderStatus.values), name="order_status_valid"),
        ]

    def __str__(self) -> str:
        return f"Order {self.short_token}" + (f" ({self.reference})" if self.reference else "")

    @property
    def short_token(self) -> str:
        return str(self.token)[:8]


class OrderLine(models.Model):
    """One line of an order. VAT rate and the commission split are fixed when the order is created."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="lines")
    position = models.PositiveSmallIntegerField()
    payee = models.ForeignKey("commissions.Payee", on_delete=models.PROTECT, related_name="order_lines")
    description = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=LineKind.choices)
    quantity = models.PositiveIntegerField()
    unit_amount_minor = models.BigIntegerField(help_text="Gross (VAT-inclusive) unit price")
    amount_minor = models.BigIntegerField(help_text="quantity × unit price")
    vat_category = models.CharField(max_length=20, choices=VatCategory.choices, default=VatCategory.STANDARD)
    vat_rate_bps = models.PositiveIntegerField()
    vat_scheme = models.CharField(max_length=20, choices=VatScheme.choices, default=VatScheme.DOMESTIC)
    vat_country = models.CharField(max_length=2, blank=True, help_text="Country of taxation")
    commission_bps = models.PositiveIntegerField()
    commission_vat_bps = models.PositiveIntegerField(default=0, help_text="VAT rate on the commission")
    commission_vat_scheme = models.CharField(
        max_length=20, choices=VatScheme.choices, default=VatScheme.DOMESTIC, help_text="VAT scheme of the commission"
    )
    commission_minor = models.BigIntegerField(help_text="Platform commission, net of VAT")
    commission_vat_minor = models.BigIntegerField(help_text="VAT on the commission")
    payee_share_minor = models.BigIntegerField(help_text="What the payee is owed for this line")
    event_ref = models.CharField(max_length=100, blank=True)
    event_starts_at = models.DateTimeField(null=True, blank=True)
    event_country = models.CharField(max_length=2, blank=True)
    refund_policy = models.ForeignKey(
        "refunds.RefundPolicy", null=True, blank=True, on_delete=models.PROTECT, related_name="order_lines"
    )
    commission_rule = models.ForeignKey(
        "commissions.CommissionRule", null=True, blank=True, on_delete=models.PROTECT, related_name="order_lines"
    )
    # When the payee's share of this line moves from pending to available (set when the order is paid).
    release_at = models.DateTimeField(null=True, blank=True, db_index=True)
    released_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["order", "position"], name="order_line_position_unique"),
            models.CheckConstraint(condition=Q(quantity__gte=1), name="order_line_quantity_positive"),
            models.CheckConstraint(condition=Q(unit_amount_minor__gt=0), name="order_line_unit_amount_positive"),
            models.CheckConstraint(
                condition=Q(amount_minor=F("unit_amount_minor") * F("quantity")),
                name="order_line_amount_is_unit_times_quantity",
            ),
            models.CheckConstraint(
                condition=Q(commission_minor__gte=0) & Q(commission_vat_minor__gte=0) & Q(payee_share_minor__gte=0),
                name="order_line_split_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(amount_minor=F("commission_minor") + F("commission_vat_minor") + F("payee_share_minor")),
                name="order_line_split_adds_up",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.description}"


class PaymentStatus(models.TextChoices):
    CREATED = "created", "Created"
    PENDING = "pending", "Pending"
    REQUIRES_ACTION = "requires_action", "Requires action (3-D Secure)"
    AUTHORIZED = "authorized", "Authorized"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELED = "canceled", "Canceled"
    EXPIRED = "expired", "Expired"


class ReviewReason(models.TextChoices):
    DOUBLE_PAYMENT = "double_payment", "Second payment for a paid order"
    ORDER_CLOSED = "order_closed", "Payment for a canceled order"
    AMOUNT_MISMATCH = "amount_mismatch", "Captured amount differs from the order"
    AUTHORIZATION_EXPIRING = "authorization_expiring", "Card authorization about to lapse: capture or void it"


class Payment(models.Model):
    """One attempt to pay an order through one provider."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="payments")
    provider = models.CharField(max_length=30, db_index=True)
    provider_ref = models.CharField(max_length=255, blank=True, help_text="The provider's checkout/session object")
    provider_payment_ref = models.CharField(
        max_length=255, blank=True, help_text="The provider's payment/charge object, once known"
    )
    provider_charge_ref = models.CharField(
        max_length=255, blank=True, help_text="The provider's charge, where it is apart from the payment (Stripe)"
    )
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(
        max_length=20, choices=PaymentStatus.choices, default=PaymentStatus.CREATED, db_index=True
    )
    captured_minor = models.BigIntegerField(default=0)
    refunded_minor = models.BigIntegerField(default=0)
    fee_minor = models.BigIntegerField(default=0, help_text="Provider fee, as reported by the provider")
    authorized_minor = models.BigIntegerField(default=0, help_text="Held on the buyer's card, not captured yet")
    authorization_expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    authorization_warned_at = models.DateTimeField(null=True, blank=True)
    settles_order = models.BooleanField(default=False, help_text="This payment is the one that paid the order")
    failure_code = models.CharField(max_length=80, blank=True)
    failure_message = models.CharField(max_length=300, blank=True)
    fraud_status = models.CharField(max_length=20, blank=True)
    needs_review = models.BooleanField(default=False, db_index=True)
    review_reason = models.CharField(max_length=30, choices=ReviewReason.choices, blank=True)
    checkout_url = models.URLField(max_length=1000, blank=True)
    created_at = models.DateTimeField(db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    succeeded_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        permissions = [
            ("capture_payment", "Can capture authorized payments"),
            ("void_payment", "Can void payment authorizations"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "provider_ref"], condition=~Q(provider_ref=""), name="payment_provider_ref_unique"
            ),
            models.UniqueConstraint(
                fields=["order"], condition=Q(settles_order=True), name="payment_one_settling_payment_per_order"
            ),
            models.CheckConstraint(condition=Q(amount_minor__gt=0), name="payment_amount_positive"),
            models.CheckConstraint(
                condition=Q(captured_minor__gte=0)
                & Q(refunded_minor__gte=0)
                & Q(fee_minor__gte=0)
                & Q(authorized_minor__gte=0),
                name="payment_amounts_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(refunded_minor__lte=F("captured_minor")), name="payment_refunded_within_captured"
            ),
            models.CheckConstraint(condition=Q(status__in=PaymentStatus.values), name="payment_status_valid"),
            models.CheckConstraint(
                condition=~Q(settles_order=True) | Q(status="succeeded"), name="payment_settling_is_succeeded"
            ),
        ]

    def __str__(self) -> str:
        return f"Payment #{self.pk} {self.provider} {self.status}"


class PaymentLink(models.Model):
    """A reusable link with fixed lines (like a Stripe Payment Link); each use creates an order."""

    slug = models.SlugField(max_length=80, unique=True)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    currency = models.CharField(max_length=3)
    is_active = models.BooleanField(default=True)
    allow_quantity = models.BooleanField(default=True, help_text="The buyer may choose how many")
    max_quantity = models.PositiveIntegerField(default=10)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(currency__in=KNOWN_CURRENCIES), name="payment_link_currency_known"),
            models.CheckConstraint(
                condition=Q(max_quantity__gte=1) & Q(max_quantity__lte=100), name="payment_link_max_quantity_range"
            ),
        ]

    def __str__(self) -> str:
        return self.title


class PaymentLinkLine(models.Model):
    link = models.ForeignKey(PaymentLink, on_delete=models.CASCADE, related_name="lines")
    payee = models.ForeignKey("commissions.Payee", on_delete=models.PROTECT, related_name="+")
    description = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=LineKind.choices, default=LineKind.GOODS)
    unit_amount_minor = models.BigIntegerField("unit price (minor units, VAT incl.)")
    quantity = models.PositiveIntegerField(default=1, help_text="Per unit the buyer orders")
    vat_category = models.CharField(max_length=20, choices=VatCategory.choices, default=VatCategory.STANDARD)
    event_ref = models.CharField(max_length=100, blank=True)
    event_starts_at = models.DateTimeField(null=True, blank=True)
    event_country = models.CharField(max_length=2, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(unit_amount_minor__gt=0), name="payment_link_line_amount_positive"),
            models.CheckConstraint(condition=Q(quantity__gte=1), name="payment_link_line_quantity_positive"),
        ]

    def __str__(self) -> str:
        return self.description


class WebhookEvent(models.Model):
    """The inbox: one row per provider event, stored before we answer 2xx, processed by a task."""

    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        PROCESSING = "processing", "Processing"
        PROCESSED = "processed", "Processed"
        IGNORED = "ignored", "Ignored (nothing to do)"
        FAILED = "failed", "Failed"

    provider = models.CharField(max_length=30)
    event_id = models.CharField(max_length=255)
    event_type = models.CharField(max_length=100, db_index=True)
    payload = models.JSONField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RECEIVED, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    payment = models.ForeignKey(
        Payment, null=True, blank=True, on_delete=models.SET_NULL, related_name="webhook_events"
    )
    received_at = models.DateTimeField(db_index=True)
    processing_started_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        permissions = [("reprocess_webhookevent", "Can reprocess webhook events")]
        constraints = [
            models.UniqueConstraint(fields=["provider", "event_id"], name="webhook_event_unique_per_provider"),
            models.CheckConstraint(
                condition=Q(status__in=["received", "processing", "processed", "ignored", "failed"]),
                name="webhook_event_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.event_type} {self.event_id}"


class WebhookRejection(models.Model):
    """Counts of rejected deliveries (bad signature, stale, malformed) per provider, reason and day.
    Bodies of rejected deliveries are never stored."""

    provider = models.CharField(max_length=30)
    reason = models.CharField(max_length=60)
    day = models.DateField()
    count = models.PositiveIntegerField(default=0)
    last_seen_at = models.DateTimeField()
    last_ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "reason", "day"], name="webhook_rejection_unique_per_day")
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.reason} {self.day}: {self.count}"
