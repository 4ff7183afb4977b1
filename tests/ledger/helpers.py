"""Reading the whole ledger back, for tests that assert "nothing changed" or "totals equal entries"."""

from __future__ import annotations

import uuid
from collections import defaultdict

from django.db import connection, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from ledger.models import Account, BalanceRule, Direction, Entry, LedgerTransaction


def snapshot() -> dict[str, list[tuple]]:
    """Every ledger row, in a form that compares equal only if nothing at all was written or changed."""
    return {
        "accounts": list(
            Account.objects.order_by("pk").values_list(
                "pk", "code", "currency", "kind", "balance_rule", "debits_posted", "credits_posted"
            )
        ),
        "transactions": list(
            LedgerTransaction.objects.order_by("pk").values_list("pk", "idempotency_key", "kind", "reverses_id")
        ),
        "entries": list(
            Entry.objects.order_by("pk").values_list(
                "pk", "transaction_id", "account_id", "direction", "amount_minor", "currency"
            )
        ),
    }


def totals() -> dict[tuple[str, str], tuple[int, int]]:
    """(code, currency) -> (debits_posted, credits_posted), the running totals."""
    return {
        (code, currency): (debits, credits)
        for code, currency, debits, credits in Account.objects.values_list(
            "code", "currency", "debits_posted", "credits_posted"
        )
    }


def entry_sums() -> dict[tuple[str, str], tuple[int, int]]:
    """(code, currency) -> (sum of debit entries, sum of credit entries), from the journal itself."""
    sums: dict[tuple[str, str], tuple[int, int]] = {key: (0, 0) for key in totals()}
    rows = Entry.objects.values("account__code", "account__currency").annotate(
        debits=Sum("amount_minor", filter=Q(direction=Direction.DEBIT), default=0),
        credits=Sum("amount_minor", filter=Q(direction=Direction.CREDIT), default=0),
    )
    for row in rows:
        sums[(row["account__code"], row["account__currency"])] = (row["debits"], row["credits"])
    return sums


def net_per_currency() -> dict[str, int]:
    net: dict[str, int] = defaultdict(int)
    for currency, debits, credits in Account.objects.values_list("currency", "debits_posted", "credits_posted"):
        net[currency] += debits - credits
    return dict(net)


def unbalanced_transactions() -> list[tuple[str, str, int]]:
    """(idempotency key, currency, net) of every transaction whose entries do not balance in a currency."""
    net: dict[tuple[str, str], int] = defaultdict(int)
    for key, currency, direction, amount in Entry.objects.values_list(
        "transaction__idempotency_key", "currency", "direction", "amount_minor"
    ):
        net[(key, currency)] += amount if direction == Direction.DEBIT else -amount
    return sorted((key, currency, value) for (key, currency), value in net.items() if value)


def rule_violations() -> list[str]:
    bad = []
    for account in Account.objects.all():
        if account.balance_rule == BalanceRule.DEBITS_MUST_NOT_EXCEED_CREDITS and (
            account.debits_posted > account.credits_posted
        ):
            bad.append(str(account))
        if account.balance_rule == BalanceRule.CREDITS_MUST_NOT_EXCEED_DEBITS and (
            account.credits_posted > account.debits_posted
        ):
            bad.append(str(account))
    return bad


# --- raw SQL, for tests that go around the ORM --------------------------------------------------------------


def execute(sql: str, params=()) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)


def execute_all(statements: list[tuple[str, list]]) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        for sql, params in statements:
            cursor.execute(sql, params)


def _db(model, field: str, value):
    return model._meta.get_field(field).get_db_prep_value(value, connection)


def entry_insert(transaction_id: uuid.UUID, account: Account, direction: str, amount: int, currency: str | None = None):
    return (
        "INSERT INTO ledger_entry (transaction_id, account_id, direction, amount_minor, currency) "
        "VALUES (%s, %s, %s, %s, %s)",
        [_db(Entry, "transaction", transaction_id), account.pk, direction, amount, currency or account.currency],
    )


def header_insert(transaction_id: uuid.UUID, key: str):
    now = timezone.now()
    return (
        "INSERT INTO ledger_ledgertransaction (id, idempotency_key, kind, occurred_at, posted_at, memo, metadata) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s)",
        [
            _db(LedgerTransaction, "id", transaction_id),
            key,
            "forged",
            _db(LedgerTransaction, "occurred_at", now),
            _db(LedgerTransaction, "posted_at", now),
            "",
            _db(LedgerTransaction, "metadata", {}),
        ],
    )


def account(code: str) -> Account:
    return Account.objects.get(code=code, currency="EUR")
