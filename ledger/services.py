"""The only writer of the ledger: `post_transaction` and `reverse_transaction`.

Lock order inside a posting: accounts with a balance rule are locked with SELECT ... FOR UPDATE in id order
and checked; the transaction is written; then running totals are incremented, rule accounts first, then
the rule-less (hot) accounts such as `platform:commission`, each group in id order. Because every posting
takes locks in this same global order there are no deadlocks between postings, and the hot accounts' row
locks are taken last, so they are held only for the tail of the transaction. Callers that lock domain rows
lock them first: order, then payment, then (here) accounts.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from ledger.accounts import AccountSpec
from ledger.errors import InsufficientFunds, LedgerConflict, LedgerError
from ledger.models import Account, BalanceRule, Direction, Entry, LedgerTransaction
from ledger.money import Money


@dataclass(frozen=True, slots=True)
class Posting:
    account: AccountSpec
    direction: Direction
    amount: Money


def debit(account: AccountSpec, amount: Money) -> Posting:
    return Posting(account, Direction.DEBIT, amount)


def credit(account: AccountSpec, amount: Money) -> Posting:
    return Posting(account, Direction.CREDIT, amount)


def _validate(postings: Sequence[Posting]) -> list[Posting]:
    legs = [p for p in postings if p.amount.amount_minor != 0]
    if any(p.amount.amount_minor < 0 for p in legs):
        raise LedgerError("Posting amounts must be positive; use the other direction instead.")
    if len(legs) < 2:
        raise LedgerError("A ledger transaction needs at least two non-zero entries.")
    net: dict[str, int] = defaultdict(int)
    for leg in legs:
        net[leg.amount.currency] += leg.amount.amount_minor * (1 if leg.direction == Direction.DEBIT else -1)
    unbalanced = {currency: amount for currency, amount in net.items() if amount}
    if unbalanced:
        raise LedgerError(f"Debits and credits differ per currency: {unbalanced}")
    return legs


def _signature(rows: list[tuple[str, str, str, int]]) -> Counter:
    return Counter(rows)


def _existing_or_conflict(existing: LedgerTransaction, legs: list[Posting]) -> LedgerTransaction:
    stored = [
        (code, currency, direction, amount)
        for code, currency, direction, amount in existing.entries.values_list(
            "account__code", "currency", "direction", "amount_minor"
        )
    ]
    wanted = [(p.account.code, p.amount.currency, str(p.direction), p.amount.amount_minor) for p in legs]
    if _signature(stored) != _signature(wanted):
        raise LedgerConflict(f"Ledger transaction {existing.idempotency_key!r} was already posted with other entries.")
    return existing


def _resolve_accounts(legs: list[Posting]) -> dict[tuple[str, str], Account]:
    """The accounts the legs name, in one query; missing ones are created first."""
    wanted = {(leg.account.code, leg.amount.currency): leg.account for leg in legs}
    lookup = Q()
    for code, currency in wanted:
        lookup |= Q(code=code, currency=currency)
    accounts = {(a.code, a.currency): a for a in Account.objects.filter(lookup)}
    # Created in one global order: a new account's unique key is held until commit, so two postings
    # creating the same new accounts in their own leg orders would each wait for the other (deadlock).
    for key in sorted(set(wanted) - set(accounts)):
        spec = wanted[key]
        accounts[key], _ = Account.objects.get_or_create(
            code=key[0],
            currency=key[1],
            defaults={
                "kind": spec.kind,
                "balance_rule": spec.balance_rule,
                "payee_id": spec.payee_id,
                "name": spec.name,
            },
        )
    for key, spec in wanted.items():
        if accounts[key].kind != spec.kind or accounts[key].balance_rule != spec.balance_rule:
            raise LedgerError(f"Account {spec.code} exists with another kind or balance rule.")
    return accounts


def post_transaction(
    *,
    idempotency_key: str,
    kind: str,
    entries: Sequence[Posting],
    occurred_at: datetime,
    memo: str = "",
    metadata: dict[str, Any] | None = None,
    reverses: LedgerTransaction | None = None,
) -> LedgerTransaction:
    """Post a balanced transaction, once.

    The same key with the same entries returns the first transaction; with other entries it raises
    `LedgerConflict`. A posting that would take an account with a balance rule below zero raises
    `InsufficientFunds` and writes nothing.
    """
    legs = _validate(entries)
    with transaction.atomic():
        accounts = _resolve_accounts(legs)
        ruled_ids = sorted(a.pk for a in accounts.values() if a.balance_rule != BalanceRule.NONE)
        locked = {a.pk: a for a in Account.objects.select_for_update().filter(pk__in=ruled_ids).order_by("pk")}

        existing = LedgerTransaction.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            return _existing_or_conflict(existing, legs)

        deltas: dict[int, list[int]] = defaultdict(lambda: [0, 0])
        for leg in legs:
            account = accounts[(leg.account.code, leg.amount.currency)]
            deltas[account.pk][0 if leg.direction == Direction.DEBIT else 1] += leg.amount.amount_minor
        for account_id in ruled_ids:
            account = locked[account_id]
            debits = account.debits_posted + deltas[account_id][0]
            credits = account.credits_posted + deltas[account_id][1]
            if (account.balance_rule == BalanceRule.DEBITS_MUST_NOT_EXCEED_CREDITS and debits > credits) or (
                account.balance_rule == BalanceRule.CREDITS_MUST_NOT_EXCEED_DEBITS and credits > debits
            ):
                raise InsufficientFunds(account.code, account.currency)

        header = LedgerTransaction(
            idempotency_key=idempotency_key,
            kind=kind,
            occurred_at=occurred_at,
            posted_at=timezone.now(),
            memo=memo[:300],
            metadata=metadata or {},
            reverses=reverses,
        )
        try:
            with transaction.atomic():
                # Entries first: the header's insert trigger refuses it unless these balance.
                Entry.objects.bulk_create(
                    [
                        Entry(
                            transaction_id=header.id,
                            account=accounts[(leg.account.code, leg.amount.currency)],
                            direction=leg.direction,
                            amount_minor=leg.amount.amount_minor,
                            currency=leg.amount.currency,
                        )
                        for leg in legs
                    ]
                )
                header.save(force_insert=True)
        except IntegrityError:
            existing = LedgerTransaction.objects.filter(idempotency_key=idempotency_key).first()
            if existing is None:
                raise
            return _existing_or_conflict(existing, legs)

        hot_ids = sorted(pk for pk in deltas if pk not in locked)
        # The hot accounts' row locks, taken last and in id order (rule accounts are already locked) ...
        list(Account.objects.select_for_update().filter(pk__in=hot_ids).order_by("pk").values_list("pk"))
        # ... then every running total in one statement.
        _add_to_running_totals(deltas)
    return header


def _add_to_running_totals(deltas: dict[int, list[int]]) -> None:
    ids = sorted(deltas)
    debit_case = " ".join("WHEN %s THEN %s" for _ in ids)
    sql = (
        f"UPDATE {Account._meta.db_table} SET "  # noqa: S608 - only table name and placeholders are formatted in
        f"debits_posted = debits_posted + CASE id {debit_case} ELSE 0 END, "
        f"credits_posted = credits_posted + CASE id {debit_case} ELSE 0 END "
        f"WHERE id IN ({', '.join('%s' for _ in ids)})"
    )
    params: list[int] = []
    for column in (0, 1):
        for account_id in ids:
            params += [account_id, deltas[account_id][column]]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *ids])
        if cursor.rowcount != len(ids):
            raise LedgerError("Running totals of some accounts could not be updated.")


def reverse_transaction(
    *, original: LedgerTransaction, occurred_at: datetime, memo: str = "", kind: str | None = None
) -> LedgerTransaction:
    """Post the mirror image of `original` (each entry in the other direction), once.

    Kind and key stay bounded however deep a chain of reversals gets: the kind is `reversal` (unless the
    caller names one) and the key names the original by id; `reverses` links the two."""
    postings = []
    for entry in original.entries.select_related("account"):
        spec = AccountSpec(
            entry.account.code,
            entry.account.kind,
            entry.account.balance_rule,
            entry.account.payee_id,
            entry.account.name,
        )
        other = Direction.CREDIT if entry.direction == Direction.DEBIT else Direction.DEBIT
        postings.append(Posting(spec, other, Money(entry.amount_minor, entry.currency)))
    return post_transaction(
        idempotency_key=f"reversal:{original.pk}",
        kind=kind or "reversal",
        entries=postings,
        occurred_at=occurred_at,
        memo=memo or f"Reversal of {original.idempotency_key}"[:300],
        reverses=original,
    )
