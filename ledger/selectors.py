"""Reads of the ledger: balances and the integrity proof behind `manage.py ledger_check`."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Case, Count, F, IntegerField, Q, Sum, Value, When
from django.db.models.functions import Coalesce

from ledger.accounts import AccountSpec, payee_available, payee_pending, payee_reserved
from ledger.models import Account, Direction, Entry, LedgerTransaction
from ledger.money import Money


def account_balance(spec: AccountSpec, currency: str) -> Money:
    account = Account.objects.filter(code=spec.code, currency=currency).first()
    return Money(account.balance_minor if account else 0, currency)


@dataclass
class PayeeBalance:
    currency: str
    pending: int = 0
    available: int = 0
    reserved: int = 0

    @property
    def total(self) -> int:
        return self.pending + self.available + self.reserved


def payee_account_roles(payee_id: int) -> dict[str, str]:
    """The codes of a payee's balance accounts and what each holds: {code: 'pending' | 'available' | 'reserved'}."""
    return {
        payee_pending(payee_id).code: "pending",
        payee_available(payee_id).code: "available",
        payee_reserved(payee_id).code: "reserved",
    }


def payee_balances(payee_id: int) -> list[PayeeBalance]:
    codes = payee_account_roles(payee_id)
    balances: dict[str, PayeeBalance] = {}
    for account in Account.objects.filter(code__in=codes).order_by("currency", "code"):
        balance = balances.setdefault(account.currency, PayeeBalance(account.currency))
        setattr(balance, codes[account.code], account.balance_minor)
    return list(balances.values())


_SIGNED = Case(
    When(direction=Direction.DEBIT, then=F("amount_minor")), default=-F("amount_minor"), output_field=IntegerField()
)


@dataclass
class LedgerCheckReport:
    transactions: int = 0
    accounts: int = 0
    entries: int = 0
    unbalanced_transactions: list[str] = field(default_factory=list)
    short_transactions: list[str] = field(default_factory=list)
    drifted_accounts: list[str] = field(default_factory=list)
    currencies_not_netting: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (
            self.unbalanced_transactions
            or self.short_transactions
            or self.drifted_accounts
            or self.currencies_not_netting
        )


def check_ledger(progress=None) -> LedgerCheckReport:
    """Prove the ledger's invariants: every transaction balances per currency (I1); every account's running
    totals equal the sum of its entries (I3); all accounts net to zero per currency (I2)."""
    step = progress or (lambda message: None)
    report = LedgerCheckReport(
        transactions=LedgerTransaction.objects.count(),
        accounts=Account.objects.count(),
        entries=Entry.objects.count(),
    )
    step(f"checking {report.transactions} transactions balance per currency")
    unbalanced = (
        Entry.objects.values("transaction_id", "currency")
        .annotate(net=Sum(_SIGNED))
        .exclude(net=0)
        .values_list("transaction__idempotency_key", flat=True)
    )
    report.unbalanced_transactions = sorted(set(unbalanced))
    short = (
        LedgerTransaction.objects.annotate(n=Count("entries")).filter(n__lt=2).values_list("idempotency_key", flat=True)
    )
    report.short_transactions = sorted(short)

    step(f"checking running totals of {report.accounts} accounts against their entries")
    sums = {
        row["account_id"]: (row["debits"], row["credits"])
        for row in Entry.objects.values("account_id").annotate(
            debits=Coalesce(Sum("amount_minor", filter=Q(direction=Direction.DEBIT)), Value(0)),
            credits=Coalesce(Sum("amount_minor", filter=Q(direction=Direction.CREDIT)), Value(0)),
        )
    }
    for account in Account.objects.order_by("pk").iterator():
        if sums.get(account.pk, (0, 0)) != (account.debits_posted, account.credits_posted):
            report.drifted_accounts.append(f"{account.code} ({account.currency})")

    step("checking all accounts net to zero per currency")
    per_currency: dict[str, int] = defaultdict(int)
    for row in Account.objects.values("currency").annotate(d=Sum("debits_posted"), c=Sum("credits_posted")):
        per_currency[row["currency"]] += row["d"] - row["c"]
    report.currencies_not_netting = {currency: net for currency, net in per_currency.items() if net}
    return report
