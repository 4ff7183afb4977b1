"""Posted history cannot be changed: the database refuses raw SQL, the ORM refuses saves and deletes
(DESIGN.md §4 "Immutable"; RELIABILITY.md §6 row 19). Runs on SQLite and PostgreSQL alike.

Each refused statement runs in its own `transaction.atomic()` (a savepoint), so the error is the database's
and the test goes on; afterwards every row is compared with a snapshot taken before.
"""

from __future__ import annotations

import uuid

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from commissions.rules import split_line_amount
from core.audit import record_audit
from core.immutable import ImmutableRowError
from core.models import AuditEntry
from ledger import accounts
from ledger.models import Account, Entry, LedgerTransaction
from ledger.money import Money
from ledger.selectors import check_ledger
from ledger.services import credit, debit, post_transaction
from tests.factories import PayeeFactory
from tests.ledger.helpers import account, entry_insert, execute, execute_all, header_insert, snapshot

pytestmark = pytest.mark.django_db

CLEARING = accounts.provider_clearing("sandbox")


@pytest.fixture
def posted(db):
    """One capture: clearing 12900 = payee pending 11339 + commission 1290 + VAT 271."""
    seller = PayeeFactory()
    split = split_line_amount(amount_minor=12900, commission_bps=1000, commission_vat_bps=2100)
    return post_transaction(
        idempotency_key="capture:payment:1",
        kind="capture",
        entries=[
            debit(CLEARING, Money(12900, "EUR")),
            credit(accounts.payee_pending(seller.pk), Money(split.payee_share_minor, "EUR")),
            credit(accounts.PLATFORM_COMMISSION, Money(split.commission_minor, "EUR")),
            credit(accounts.PLATFORM_VAT_PAYABLE, Money(split.commission_vat_minor, "EUR")),
        ],
        occurred_at=timezone.now(),
    )


def refused(match: str):
    """The database refuses, with its own message (not a typo in our SQL)."""
    return pytest.raises(DatabaseError, match=match)


# --- raw SQL on entries and transactions ----------------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE ledger_entry SET amount_minor = amount_minor + 1",
        "UPDATE ledger_entry SET direction = 'debit'",
        "UPDATE ledger_entry SET account_id = account_id",  # even a no-op update
        "DELETE FROM ledger_entry",
        "UPDATE ledger_ledgertransaction SET memo = 'edited'",
        "UPDATE ledger_ledgertransaction SET idempotency_key = 'other'",
        "DELETE FROM ledger_ledgertransaction",
    ],
)
def test_raw_update_or_delete_of_posted_rows_is_refused(posted, sql):
    before = snapshot()

    with refused("immutable"):
        execute(sql)

    assert snapshot() == before


def test_deleting_one_entry_by_id_is_refused(posted):
    before = snapshot()
    entry_id = posted.entries.order_by("pk").values_list("pk", flat=True)[0]

    with refused("immutable"):
        execute("DELETE FROM ledger_entry WHERE id = %s", [entry_id])

    assert snapshot() == before


def test_raw_insert_of_a_balanced_transaction_is_accepted(posted):
    """The control for the refusals below: the same raw SQL, balanced, goes through."""
    txn_id = uuid.uuid4()
    clearing, commission = account("provider:sandbox:clearing"), account("platform:commission")

    execute_all(
        [
            entry_insert(txn_id, clearing, "debit", 500),
            entry_insert(txn_id, commission, "credit", 500),
            header_insert(txn_id, "forged:balanced"),
        ]
    )

    assert LedgerTransaction.objects.get(pk=txn_id).entries.count() == 2


@pytest.mark.parametrize(
    "legs",
    [
        pytest.param([("debit", 500), ("credit", 499)], id="unbalanced"),
        pytest.param([("debit", 500)], id="one-entry"),
        pytest.param([], id="no-entries"),
        pytest.param([("debit", 500), ("credit", 500), ("debit", 1)], id="off-by-one"),
    ],
)
def test_raw_insert_of_an_unbalanced_transaction_is_refused(posted, legs):
    before = snapshot()
    txn_id = uuid.uuid4()
    clearing, commission = account("provider:sandbox:clearing"), account("platform:commission")
    statements = [entry_insert(txn_id, clearing if d == "debit" else commission, d, amount) for d, amount in legs]

    with refused("does not balance"):
        execute_all([*statements, header_insert(txn_id, "forged:unbalanced")])

    assert snapshot() == before


def test_raw_insert_balanced_only_across_currencies_is_refused(posted):
    before = snapshot()
    txn_id = uuid.uuid4()
    eur = account("provider:sandbox:clearing")
    czk = Account.objects.create(code="platform:commission", currency="CZK", kind="income")

    with refused("does not balance"):
        execute_all(
            [
                entry_insert(txn_id, eur, "debit", 500),
                entry_insert(txn_id, czk, "credit", 500),
                header_insert(txn_id, "forged:fx"),
            ]
        )

    assert snapshot()["transactions"] == before["transactions"]
    assert snapshot()["entries"] == before["entries"]


@pytest.mark.parametrize(
    "legs",
    [
        pytest.param([("debit", 1)], id="one-entry"),
        pytest.param([("debit", 1), ("credit", 1)], id="a-balanced-pair"),
    ],
)
def test_adding_entries_to_a_posted_transaction_is_refused(posted, legs):
    before = snapshot()
    clearing, commission = account("provider:sandbox:clearing"), account("platform:commission")

    with refused("cannot be added to a posted"):
        execute_all([entry_insert(posted.pk, clearing if d == "debit" else commission, d, a) for d, a in legs])

    assert snapshot() == before


def test_an_entry_in_another_currency_than_its_account_is_refused(posted):
    before = snapshot()
    txn_id = uuid.uuid4()
    clearing, commission = account("provider:sandbox:clearing"), account("platform:commission")

    with refused("currency"):
        execute_all(
            [
                entry_insert(txn_id, clearing, "debit", 500, currency="CZK"),
                entry_insert(txn_id, commission, "credit", 500, currency="CZK"),
                header_insert(txn_id, "forged:currency"),
            ]
        )

    assert snapshot() == before


@pytest.mark.postgres
def test_postgres_rechecks_orphan_entries_at_commit(posted):
    """The deferred constraint trigger: entries whose header never arrives (or does not balance) fail at
    commit. `SET CONSTRAINTS ... IMMEDIATE` makes "commit" happen now, inside the test's transaction."""
    before = snapshot()
    clearing = account("provider:sandbox:clearing")

    with refused("does not balance at commit"):
        execute_all(
            [
                entry_insert(uuid.uuid4(), clearing, "debit", 500),
                ("SET CONSTRAINTS ledger_entry_commit_check IMMEDIATE", []),
            ]
        )

    assert snapshot() == before


# --- raw SQL on accounts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "match"),
    [
        ("UPDATE ledger_account SET debits_posted = debits_posted - 1 WHERE debits_posted > 0", "only grow"),
        ("UPDATE ledger_account SET credits_posted = 0 WHERE credits_posted > 0", "only grow"),
        ("UPDATE ledger_account SET code = 'platform:elsewhere' WHERE code = 'platform:commission'", "identity"),
        ("UPDATE ledger_account SET currency = 'CZK' WHERE code = 'platform:commission'", "identity"),
        ("UPDATE ledger_account SET kind = 'expense' WHERE code = 'platform:commission'", "identity"),
        ("UPDATE ledger_account SET balance_rule = 'none' WHERE code LIKE 'payee:%%:pending'", "identity"),
        ("DELETE FROM ledger_account", "never deleted"),
        ("DELETE FROM ledger_account WHERE code = 'platform:vat_payable'", "never deleted"),
    ],
)
def test_raw_changes_to_account_totals_or_identity_are_refused(posted, sql, match):
    before = snapshot()

    with refused(match):
        execute(sql)

    assert snapshot() == before


def test_raw_overdraft_of_a_no_overdraft_account_is_refused_by_its_check_constraint(posted):
    """Totals may only grow, but growing the debits of a no-overdraft account past its credits is refused."""
    before = snapshot()

    with pytest.raises(IntegrityError):
        execute(
            "UPDATE ledger_account SET debits_posted = credits_posted + 1 WHERE code LIKE 'payee:%%:pending'",
        )

    assert snapshot() == before


def test_an_account_without_entries_cannot_be_deleted_either(posted):
    unused = Account.objects.create(code="platform:unused", currency="EUR", kind="expense")
    before = snapshot()

    with pytest.raises(IntegrityError), transaction.atomic():
        unused.delete()

    assert snapshot() == before


# --- the ORM ---------------------------------------------------------------------------------------------


def test_orm_refuses_to_change_or_delete_entries(posted):
    before = snapshot()
    entry = posted.entries.first()
    entry.amount_minor += 1

    with pytest.raises(ImmutableRowError):
        entry.save()
    with pytest.raises(ImmutableRowError):
        entry.delete()
    with pytest.raises(ImmutableRowError):
        Entry.objects.filter(pk=entry.pk).update(amount_minor=1)
    with pytest.raises(ImmutableRowError):
        Entry.objects.all().delete()
    with pytest.raises(ImmutableRowError):
        posted.entries.update(amount_minor=1)
    with pytest.raises(ImmutableRowError):
        posted.entries.all().delete()
    with pytest.raises(ImmutableRowError):
        Entry.objects.bulk_update([entry], ["amount_minor"])

    assert snapshot() == before


def test_orm_refuses_to_change_or_delete_transactions(posted):
    before = snapshot()
    posted.memo = "edited"

    with pytest.raises(ImmutableRowError):
        posted.save()
    with pytest.raises(ImmutableRowError):
        posted.delete()
    with pytest.raises(ImmutableRowError):
        LedgerTransaction.objects.filter(pk=posted.pk).update(memo="edited")
    with pytest.raises(ImmutableRowError):
        LedgerTransaction.objects.all().delete()

    assert snapshot() == before


def test_going_around_the_orm_guard_still_hits_the_database_guard(posted):
    """`_base_manager` is a plain manager (no ImmutableQuerySet): the triggers are the last line."""
    before = snapshot()

    with refused("immutable"), transaction.atomic():
        Entry._base_manager.filter(transaction=posted).update(amount_minor=1)
    with refused("immutable"), transaction.atomic():
        LedgerTransaction._base_manager.filter(pk=posted.pk).update(memo="edited")
    with refused("immutable"), transaction.atomic():
        Entry._base_manager.filter(transaction=posted)._raw_delete(connection.alias)

    assert snapshot() == before


def test_orm_cannot_insert_an_unbalanced_transaction(posted):
    before = snapshot()

    with refused("does not balance"), transaction.atomic():
        LedgerTransaction.objects.create(
            idempotency_key="forged:empty", kind="forged", occurred_at=timezone.now(), posted_at=timezone.now()
        )

    assert snapshot() == before


def test_orm_update_lowering_account_totals_is_refused(posted):
    before = snapshot()

    with refused("only grow"), transaction.atomic():
        Account.objects.filter(code="platform:commission").update(credits_posted=0)

    assert snapshot() == before
    assert check_ledger().ok


def test_admin_cannot_edit_or_delete_ledger_rows(posted, admin_client):
    before = snapshot()
    entry = posted.entries.first()

    change = admin_client.post(f"/admin/ledger/ledgertransaction/{posted.pk}/change/", {"memo": "edited"})
    delete = admin_client.post(f"/admin/ledger/ledgertransaction/{posted.pk}/delete/", {"post": "yes"})
    bulk = admin_client.post(
        "/admin/ledger/ledgertransaction/",
        {"action": "delete_selected", "_selected_action": [str(posted.pk)], "post": "yes"},
    )
    entry_account = admin_client.post(f"/admin/ledger/account/{entry.account_id}/change/", {"debits_posted": 0})

    assert change.status_code == 403
    assert delete.status_code == 403
    assert bulk.status_code in (200, 302, 403)  # no delete action offered: nothing happens
    assert entry_account.status_code == 403
    assert snapshot() == before


# --- the audit trail --------------------------------------------------------------------------------------


@pytest.fixture
def audit_entry(db):
    return record_audit(action="refund.succeeded", actor_label="staff", object_type="refund", object_id=7)


def test_audit_entries_are_append_only_in_the_orm(audit_entry):
    audit_entry.message = "nothing happened"

    with pytest.raises(ImmutableRowError):
        audit_entry.save()
    with pytest.raises(ImmutableRowError):
        audit_entry.delete()
    with pytest.raises(ImmutableRowError):
        AuditEntry.objects.filter(pk=audit_entry.pk).update(outcome="failure")
    with pytest.raises(ImmutableRowError):
        AuditEntry.objects.all().delete()

    stored = AuditEntry.objects.get()
    assert (stored.action, stored.outcome, stored.message) == ("refund.succeeded", "success", "")


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE core_auditentry SET outcome = 'failure'",
        "UPDATE core_auditentry SET actor_label = 'someone else'",
        "DELETE FROM core_auditentry",
    ],
)
def test_audit_entries_refuse_raw_update_and_delete(audit_entry, sql):
    with refused("immutable"):
        execute(sql)

    stored = AuditEntry.objects.get()
    assert (stored.pk, stored.actor_label, stored.outcome) == (audit_entry.pk, "staff", "success")


def test_audit_entries_can_still_be_appended(audit_entry):
    record_audit(action="payout.approved", actor_label="staff")
    assert AuditEntry.objects.count() == 2
