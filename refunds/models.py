from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from ledger.money import CURRENCY_EXPONENTS


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


class RefundMethod(models.TextChoices):
    ORIGINAL = "original", "Original payment method"
    STORE_CREDIT = "store_credit", "Store credit"
    TRANSFER = "transfer", "Transfer to another event"


class FeeTo(models.TextChoices):
    PAYEE = "payee", "The payee keeps the fee"
    PLATFORM = "platform", "The platform keeps the fee"


class PolicyScope(models.TextChoices):
    DEFAULT = "default", "Default (all lines)"
    PAYEE = "payee", "One payee"
    EVENT = "event", "One event"


class RefundPolicy(models.Model):
    """What a buyer gets back, and when. Event tickets count time *before the event starts*: a full refund
    until `full_refund_until` before it, then the tiers in order (each until its own time before the event,
    with a percentage and/or fixed fee), then nothing. Goods and services (no event date) count time *since
    the order was paid*: the same fields read as "within this long after payment" (full refund within
    `full_refund_until`, then each tier's fee within its `until`, then nothing). Most specific wins:
    a line's own policy, then event, then payee, then the default."""

    name = models.CharField(max_length=120)
    scope = models.CharField(max_length=10, choices=PolicyScope.choices, default=PolicyScope.DEFAULT)
    payee = models.ForeignKey(
        "commissions.Payee", null=True, blank=True, on_delete=models.PROTECT, related_name="refund_policies"
    )
    event_ref = models.CharField(max_length=100, blank=True)
    full_refund_until = models.DurationField(
        help_text="Events: full refund until this long before the event. Goods: within this long after payment."
    )
    commission_returned = models.BooleanField(
        default=True, help_text="Whether the platform's commission (and its VAT) goes back to the buyer"
    )
    fee_to = models.CharField(max_length=10, choices=FeeTo.choices, default=FeeTo.PAYEE)
    allow_original = models.BooleanField("allow refund to the original payment", default=True)
    allow_store_credit = models.BooleanField("allow store credit", default=True)
    allow_transfer = models.BooleanField("allow transfer to another event", default=False)
    store_credit_validity_days = models.PositiveIntegerField(default=365)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name_plural = "refund policies"
        constraints = [
            models.CheckConstraint(condition=Q(scope__in=PolicyScope.values), name="refund_policy_scope_valid"),
            models.CheckConstraint(
                condition=(Q(scope="default") & Q(payee__isnull=True) & Q(event_ref=""))
                | (Q(scope="payee") & Q(payee__isnull=False) & Q(event_ref=""))
                | (Q(scope="event") & ~Q(event_ref="")),
                name="refund_policy_scope_fields",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def methods(self) -> tuple[str, ...]:
        allowed = [
            (self.allow_original, RefundMethod.ORIGINAL),
            (self.allow_store_credit, RefundMethod.STORE_CREDIT),
            (self.allow_transfer, RefundMethod.TRANSFER),
        ]
        return tuple(str(method) for on, method in allowed if on)


class RefundPolicyTier(models.Model):
    """After the full-refund window: until `until` before the event (or within `until` after payment for
    goods), a fee of `fee_bps` of the refunded amount plus `fee_fixed_minor` (in `currency`, per line)."""

    policy = models.ForeignKey(RefundPolicy, on_delete=models.CASCADE, related_name="tiers")
    position = models.PositiveSmallIntegerField(default=0)
    until = models.DurationField()
    fee_bps = models.PositiveIntegerField(default=0, help_text="e.g. 1000 = 10 %")
    fee_fixed_minor = models.BigIntegerField(default=0)
    currency = models.CharField(max_length=3, blank=True, help_text="Currency of the fixed fee")
    history = HistoricalRecords()

    class Meta:
        ordering = ["position", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(fee_bps__lte=10000) & Q(fee_fixed_minor__gte=0), name="refund_policy_tier_fee_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.policy_id} tier {self.position}"


class Refund(models.Model):
    """Money going back to the buyer for (part of) one payment.

    `amount_minor` is what the buyer gets back. The part of the order it undoes ("gross") is
    `amount_minor + fee_minor + commission_kept_minor`: a fee the policy keeps, and the commission (with its
    VAT) when the policy does not return it. The refund lines split the gross part."""

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
    method = models.CharField(max_length=20, choices=RefundMethod.choices, default=RefundMethod.ORIGINAL)
    fee_minor = models.BigIntegerField(default=0, help_text="Kept under the refund policy")
    fee_to = models.CharField(max_length=10, choices=FeeTo.choices, default=FeeTo.PAYEE)
    commission_returned = models.BooleanField(default=True)
    commission_kept_minor = models.BigIntegerField(
        default=0, help_text="Commission and its VAT not returned to the buyer under the policy"
    )
    policy = models.ForeignKey(RefundPolicy, null=True, blank=True, on_delete=models.PROTECT, related_name="refunds")
    policy_snapshot = models.JSONField(default=dict, blank=True, help_text="The policy quote when it was requested")
    force_majeure = models.BooleanField(default=False)
    override_reason = models.TextField(blank=True, help_text="Why staff went beyond the policy")
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    rejection_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    succeeded_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        permissions = [("approve_refund", "Can approve or reject refunds above the approval threshold")]
        constraints = [
            models.CheckConstraint(
                condition=Q(fee_minor__gte=0) & Q(commission_kept_minor__gte=0), name="refund_kept_non_negative"
            ),
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
    fee_minor = models.BigIntegerField(default=0, help_text="Of this line's part, kept under the policy")

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


class StoreCreditStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    SPENT = "spent", "Spent"
    EXPIRED = "expired", "Expired"


class StoreCredit(models.Model):
    """Credit a buyer can spend at checkout with its code (`refunds.store_credit`). A bearer instrument, like a
    gift card: whoever has the code may use it. Its liability is `buyers:store_credit` in the ledger, which
    always equals the sum of `remaining_minor` (spending, expiry and issue post it under this row's lock)."""

    buyer_email = models.EmailField(max_length=254, db_index=True)
    code = models.CharField(max_length=20, unique=True)
    currency = models.CharField(max_length=3)
    amount_minor = models.BigIntegerField(help_text="Issued")
    remaining_minor = models.BigIntegerField(help_text="Still spendable")
    expired_minor = models.BigIntegerField(default=0, help_text="Released to breakage when it expired")
    expires_at = models.DateTimeField(db_index=True)
    status = models.CharField(
        max_length=10, choices=StoreCreditStatus.choices, default=StoreCreditStatus.ACTIVE, db_index=True
    )
    source_refund = models.OneToOneField(
        Refund, null=True, blank=True, on_delete=models.PROTECT, related_name="store_credit"
    )
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.CharField(max_length=300, blank=True, help_text="Why it was issued (goodwill credit)")
    notified_at = models.DateTimeField(null=True, blank=True, help_text="When the buyer was e-mailed the code")
    created_at = models.DateTimeField(db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    class Meta:
        permissions = [("issue_goodwill_credit", "Can issue goodwill store credit")]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount_minor__gt=0)
                & Q(remaining_minor__gte=0)
                & Q(remaining_minor__lte=models.F("amount_minor"))
                & Q(expired_minor__gte=0)
                & Q(expired_minor__lte=models.F("amount_minor")),
                name="store_credit_amounts_valid",
            ),
            models.CheckConstraint(condition=Q(status__in=StoreCreditStatus.values), name="store_credit_status_valid"),
            models.CheckConstraint(
                condition=Q(currency__in=sorted(CURRENCY_EXPONENTS)), name="store_credit_currency_known"
            ),
            # Active while something is left; spent and expired credits have nothing left to spend.
            models.CheckConstraint(
                condition=(Q(status="active") & Q(remaining_minor__gt=0))
                | (~Q(status="active") & Q(remaining_minor=0)),
                name="store_credit_remaining_matches_status",
            ),
        ]

    def __str__(self) -> str:
        return f"Store credit {self.code} ({self.status})"


class StoreCreditSpend(models.Model):
    """One payment made with a store credit (its ledger key `store_credit_spend:<id>`)."""

    credit = models.ForeignKey(StoreCredit, on_delete=models.PROTECT, related_name="spends")
    payment = models.OneToOneField("payments.Payment", on_delete=models.PROTECT, related_name="store_credit_spend")
    amount_minor = models.BigIntegerField()
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(amount_minor__gt=0), name="store_credit_spend_positive")]

    def __str__(self) -> str:
        return f"{self.credit_id} -> payment {self.payment_id}: {self.amount_minor}"


class ReservationStatus(models.TextChoices):
    RESERVED = "reserved", "Reserved"
    SPENT = "spent", "Spent"
    RELEASED = "released", "Released"


class StoreCreditReservation(models.Model):
    """Part of an order paid with store credit, the rest with another method (`refunds.store_credit`).

    Applied on the checkout page under the credit's row lock: `reserved` holds the amount (what a credit can
    still give is `remaining_minor` less its reserved amounts); it becomes `spent` in the transaction where the
    provider payment for the rest succeeds (the spend posting, key `store_credit_reservation:<id>`), or
    `released` when the order expires or the buyer removes it (nothing was posted, nothing to undo). While
    reserved nothing moves in the ledger, so `buyers:store_credit` = Σ `remaining_minor` holds throughout."""

    credit = models.ForeignKey(StoreCredit, on_delete=models.PROTECT, related_name="reservations")
    order = models.ForeignKey("payments.Order", on_delete=models.PROTECT, related_name="store_credit_reservations")
    payment = models.ForeignKey(
        "payments.Payment",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The provider payment for the rest that settled the order (when spent)",
    )
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(
        max_length=10, choices=ReservationStatus.choices, default=ReservationStatus.RESERVED, db_index=True
    )
    created_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount_minor__gt=0), name="store_credit_reservation_positive"),
            models.CheckConstraint(
                condition=Q(status__in=ReservationStatus.values), name="store_credit_reservation_status_valid"
            ),
            # One credit applied per order at a time (and at most one that paid it).
            models.UniqueConstraint(
                fields=["order"],
                condition=Q(status__in=["reserved", "spent"]),
                name="store_credit_reservation_one_per_order",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.credit_id} -> order {self.order_id}: {self.amount_minor} ({self.status})"
