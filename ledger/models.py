"""Double-entry ledger: accounts with running totals, immutable transactions and entries.

Database-level guarantees (see migrations):
- running totals are >= 0, and an account's no-overdraft flag is a CHECK constraint;
- entries are inserted before their transaction header, and the header's insert is refused unless its
  entries balance per currency (so an unbalanced transaction cannot exist, on SQLite or PostgreSQL);
- no entry can be added to a transaction that already exists;
- transactions and entries refuse UPDATE and DELETE (triggers).
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import F, Q

from core.immutable import AppendOnlyModel


class AccountKind(models.TextChoices):
    ASSET = "asset", "Asset"
    LIABILITY = "liability", "Liability"
    INCOME = "income", "Income"
    EXPENSE = "expense", "Expense"


class BalanceRule(models.TextChoices):
    NONE = "none", "May go either way"
    DEBITS_MUST_NOT_EXCEED_CREDITS = "debits_le_credits", "Debits must not exceed credits"
    CREDITS_MUST_NOT_EXCEED_DEBITS = "credits_le_debits", "Credits must not exceed debits"


class Direction(models.TextChoices):
    DEBIT = "debit", "Debit"
    CREDIT = "credit", "Credit"


class Account(models.Model):
    code = models.CharField(max_length=120)
    name = models.CharField(max_length=200, blank=True)
    kind = models.CharField(max_length=10, choices=AccountKind.choices)
    currency = models.CharField(max_length=3)
    payee = models.ForeignKey(
        "commissions.Payee", null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_accounts"
    )
    balance_rule = models.CharField(max_length=20, choices=BalanceRule.choices, default=BalanceRule.NONE)
    debits_posted = models.BigIntegerField(default=0)
    credits_posted = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["code", "currency"], name="ledger_account_code_currency_unique"),
            models.CheckConstraint(
                condition=Q(debits_posted__gte=0) & Q(credits_posted__gte=0), name="ledger_account_totals_non_negative"
            ),
            models.CheckConstraint(
                condition=~Q(balance_rule="debits_le_credits") | Q(debits_posted__lte=F("credits_posted")),
                name="ledger_account_debits_must_not_exceed_credits",
            ),
            models.CheckConstraint(
                condition=~Q(balance_rule="credits_le_debits") | Q(credits_posted__lte=F("debits_posted")),
                name="ledger_account_credits_must_not_exceed_debits",
            ),
            models.CheckConstraint(
                condition=Q(balance_rule__in=BalanceRule.values), name="ledger_account_balance_rule_valid"
            ),
            models.CheckConstraint(condition=Q(kind__in=AccountKind.values), name="ledger_account_kind_valid"),
        ]
        indexes = [models.Index(fields=["payee", "currency"])]

    def __str__(self) -> str:
        return f"{self.code} ({self.currency})"

    @property
    def normal_balance_is_debit(self) -> bool:
        return self.kind in (AccountKind.ASSET, AccountKind.EXPENSE)

    @property
    def balance_minor(self) -> int:
        """Balance in the account's natural sign: assets/expenses debit-positive, others credit-positive."""
        if self.normal_balance_is_debit:
            return self.debits_posted - self.credits_posted
        return self.credits_posted - self.debits_posted


class LedgerTransaction(AppendOnlyModel):
    # The id is chosen before insert: entries are written first and the header's insert checks them.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    idempotency_key = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=40, db_index=True)
    occurred_at = models.DateTimeField(db_index=True)
    posted_at = models.DateTimeField(db_index=True)
    memo = models.CharField(max_length=300, blank=True)
    reverses = models.OneToOneField("self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversed_by")
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = "ledger transaction"

    def __str__(self) -> str:
        return f"{self.kind} {self.idempotency_key}"


class Entry(AppendOnlyModel):
    transaction = models.ForeignKey(
        LedgerTransaction, on_delete=models.PROTECT, related_name="entries", db_constraint=True
    )
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="entries")
    direction = models.CharField(max_length=6, choices=Direction.choices)
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)

    class Meta:
        verbose_name_plural = "entries"
        constraints = [
            models.CheckConstraint(condition=Q(amount_minor__gt=0), name="ledger_entry_amount_positive"),
            models.CheckConstraint(condition=Q(direction__in=Direction.values), name="ledger_entry_direction_valid"),
        ]
        indexes = [models.Index(fields=["account", "transaction"])]

    def __str__(self) -> str:
        return f"{self.direction} {self.amount_minor} {self.currency} {self.account_id}"
