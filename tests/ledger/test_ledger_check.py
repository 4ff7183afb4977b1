"""`manage.py ledger_check`: passes on a healthy ledger, fails loudly when the ledger is wrong.

A wrong ledger cannot be made through the guards, so each failure case drops one database trigger inside a
savepoint, damages the ledger, runs the check, and rolls the savepoint back (DDL is transactional on SQLite
and PostgreSQL); the test then proves the trigger is back.
"""

from __future__ import annotations

import uuid
from contextlib import contextmanager
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from ledger import accounts
from ledger.money import Money
from ledger.selectors import check_ledger
from ledger.services import credit, debit, post_transaction
from tests.factories import PayeeFactory
from tests.ledger.helpers import account, entry_insert, execute, execute_all, header_insert, snapshot

pytestmark = pytest.mark.django_db

CLEARING = accounts.provider_clearing("sandbox")

DROP = {
    "account_guard": {
        "sqlite": "DROP TRIGGER ledger_account_append_only",
        "postgresql": "DROP TRIGGER ledger_account_guard ON ledger_account",
    },
    "transaction_balanced": {
        "sqlite": "DROP TRIGGER ledger_transaction_balanced",
        "postgresql": "DROP TRIGGER ledger_transaction_balanced ON ledger_ledgertransaction",
    },
}


@contextmanager
def trigger_dropped(name: str):
    """Drop one trigger for the duration of the block, then roll everything in the block back."""
    with transaction.atomic():
        execute(DROP[name][connection.vendor])
        yield
        transaction.set_rollback(True)


def run_check() -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("ledger_check", stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def run_failing_check() -> str:
    err = StringIO()
    with pytest.raises(CommandError, match="ledger check FAILED"):
        call_command("ledger_check", stdout=StringIO(), stderr=err)
    return err.getvalue()


@pytest.fixture
def ledger(db):
    seller = PayeeFactory()
    for n, (gross, currency) in enumerate([(12900, "EUR"), (320000, "CZK"), (5000, "JPY")]):
        post_transaction(
            idempotency_key=f"capture:{n}",
            kind="capture",
            entries=[
                debit(CLEARING, Money(gross, currency)),
                credit(accounts.payee_pending(seller.pk), Money(gross - gross // 10, currency)),
                credit(accounts.PLATFORM_COMMISSION, Money(gross // 10, currency)),
            ],
            occurred_at=timezone.now(),
        )
    return seller


def test_passes_on_an_empty_ledger(db):
    out, err = run_check()

    assert "0 transactions, 0 entries, 0 accounts" in out
    assert "ledger check passed" in out
    assert err == ""


def test_passes_on_a_healthy_ledger(ledger):
    out, err = run_check()

    assert "3 transactions, 9 entries, 9 accounts" in out
    assert "ledger check passed: balanced, totals match, nets to zero" in out
    assert err == ""


@pytest.mark.parametrize(
    ("sql", "net"),
    [
        ("UPDATE ledger_account SET credits_posted = credits_posted - 1 WHERE code = 'platform:commission'", 1),
        ("UPDATE ledger_account SET debits_posted = debits_posted + 7 WHERE code = 'platform:commission'", 7),
    ],
    ids=["lowered", "raised"],
)
def test_fails_when_running_totals_drift_from_the_entries(ledger, sql, net):
    with trigger_dropped("account_guard"):
        execute(sql)
        errors = run_failing_check()
        report = check_ledger()

    assert (
        "running totals differ from entries: "
        "platform:commission (EUR), platform:commission (CZK), platform:commission (JPY)"
    ) in errors
    assert "accounts do not net to zero: {" in errors
    assert report.currencies_not_netting == {"EUR": net, "CZK": net, "JPY": net}
    assert not report.unbalanced_transactions
    # the savepoint took the drift and the DROP TRIGGER back with it
    assert check_ledger().ok
    before = snapshot()
    with pytest.raises(DatabaseError, match="only grow"):
        execute("UPDATE ledger_account SET credits_posted = credits_posted - 1 WHERE code = 'platform:commission'")
    assert snapshot() == before


def test_fails_on_an_unbalanced_transaction(ledger):
    txn_id = uuid.uuid4()
    with trigger_dropped("transaction_balanced"):
        execute_all(
            [
                entry_insert(txn_id, account(CLEARING.code), "debit", 500),
                header_insert(txn_id, "forged:one-sided"),
            ]
        )
        errors = run_failing_check()
        report = check_ledger()

    assert "unbalanced transactions: forged:one-sided" in errors
    assert "transactions with fewer than 2 entries: forged:one-sided" in errors
    assert report.unbalanced_transactions == ["forged:one-sided"]
    assert report.short_transactions == ["forged:one-sided"]
    # the forged entry moved no running total: the journal and the totals disagree on that account only
    assert report.drifted_accounts == ["provider:sandbox:clearing (EUR)"]
    assert report.currencies_not_netting == {}
    assert check_ledger().ok
