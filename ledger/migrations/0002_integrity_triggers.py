"""Database-level integrity of the ledger, on SQLite and PostgreSQL alike:

1. an entry can only be inserted before its transaction header exists (nothing is added afterwards),
   and its currency must be its account's;
2. a transaction header is refused unless its entries (>= 2) balance per currency;
3. transactions and entries refuse UPDATE and DELETE;
4. account running totals only grow, and an account's identity (code, currency, kind, rule) never changes;
   accounts are never deleted.
On PostgreSQL a deferred constraint trigger re-checks, at commit, every transaction that got entries.

Warning for later migrations: SQLite applies most ALTERs to these tables by rebuilding the table (create,
copy, drop, rename), which drops the table's own triggers and trips over triggers on the other ledger
tables that name it. A migration that alters a ledger table must drop these triggers first and create
them again after (reverse this migration's VendorSQL, alter, re-apply), and a test must show they work.
"""

from django.db import migrations

from core.immutable import ProtectRows, VendorSQL

SIGNED = "CASE WHEN direction = 'debit' THEN amount_minor ELSE -amount_minor END"
UNBALANCED = (
    "(SELECT COUNT(*) FROM ledger_entry WHERE transaction_id = NEW.id) < 2 "
    "OR EXISTS (SELECT 1 FROM ledger_entry WHERE transaction_id = NEW.id GROUP BY currency "
    f"HAVING SUM({SIGNED}) <> 0)"
)
ACCOUNT_CHANGE = (
    "NEW.debits_posted < OLD.debits_posted OR NEW.credits_posted < OLD.credits_posted "
    "OR NEW.code <> OLD.code OR NEW.currency <> OLD.currency OR NEW.kind <> OLD.kind "
    "OR NEW.balance_rule <> OLD.balance_rule"
)

SQLITE = [
    "CREATE TRIGGER ledger_entry_before_header BEFORE INSERT ON ledger_entry "
    "WHEN EXISTS (SELECT 1 FROM ledger_ledgertransaction WHERE id = NEW.transaction_id) "
    "BEGIN SELECT RAISE(ABORT, 'entries cannot be added to a posted ledger transaction'); END",
    "CREATE TRIGGER ledger_entry_currency BEFORE INSERT ON ledger_entry "
    "WHEN NEW.currency <> (SELECT currency FROM ledger_account WHERE id = NEW.account_id) "
    "BEGIN SELECT RAISE(ABORT, 'entry currency differs from its account'); END",
    f"CREATE TRIGGER ledger_transaction_balanced BEFORE INSERT ON ledger_ledgertransaction WHEN {UNBALANCED} "
    "BEGIN SELECT RAISE(ABORT, 'ledger transaction does not balance'); END",
    f"CREATE TRIGGER ledger_account_append_only BEFORE UPDATE ON ledger_account WHEN {ACCOUNT_CHANGE} "
    "BEGIN SELECT RAISE(ABORT, 'ledger account totals only grow and its identity never changes'); END",
    "CREATE TRIGGER ledger_account_no_delete BEFORE DELETE ON ledger_account "
    "BEGIN SELECT RAISE(ABORT, 'ledger accounts are never deleted'); END",
]
SQLITE_BACK = [f"DROP TRIGGER IF EXISTS {name}" for name in (
    "ledger_entry_before_header", "ledger_entry_currency", "ledger_transaction_balanced",
    "ledger_account_append_only", "ledger_account_no_delete")]


def _pg_function(name: str, body: str) -> str:
    return (f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger AS $$ BEGIN {body} END; $$ LANGUAGE plpgsql")


def _raise(message: str) -> str:
    return f"RAISE EXCEPTION USING MESSAGE = '{message}', ERRCODE = 'integrity_constraint_violation';"


POSTGRES = [
    _pg_function("ledger_entry_guard",
                 "IF EXISTS (SELECT 1 FROM ledger_ledgertransaction WHERE id = NEW.transaction_id) THEN "
                 f"{_raise('entries cannot be added to a posted ledger transaction')} END IF; "
                 "IF NEW.currency IS DISTINCT FROM (SELECT currency FROM ledger_account WHERE id = NEW.account_id) "
                 f"THEN {_raise('entry currency differs from its account')} END IF; RETURN NEW;"),
    "CREATE TRIGGER ledger_entry_guard BEFORE INSERT ON ledger_entry FOR EACH ROW "
    "EXECUTE FUNCTION ledger_entry_guard()",
    _pg_function("ledger_transaction_balanced",
                 f"IF {UNBALANCED} THEN {_raise('ledger transaction does not balance')} END IF; RETURN NEW;"),
    "CREATE TRIGGER ledger_transaction_balanced BEFORE INSERT ON ledger_ledgertransaction FOR EACH ROW "
    "EXECUTE FUNCTION ledger_transaction_balanced()",
    # At commit: the transaction each new entry belongs to exists and balances (catches entries added by
    # a concurrent writer to a header being inserted at the same moment).
    _pg_function("ledger_entry_commit_check",
                 "IF NOT EXISTS (SELECT 1 FROM ledger_ledgertransaction WHERE id = NEW.transaction_id) "
                 f"OR EXISTS (SELECT 1 FROM ledger_entry WHERE transaction_id = NEW.transaction_id "
                 f"GROUP BY currency HAVING SUM({SIGNED}) <> 0) THEN "
                 f"{_raise('ledger transaction does not balance at commit')} END IF; RETURN NULL;"),
    "CREATE CONSTRAINT TRIGGER ledger_entry_commit_check AFTER INSERT ON ledger_entry "
    "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_entry_commit_check()",
    _pg_function("ledger_account_guard",
                 f"IF TG_OP = 'DELETE' THEN {_raise('ledger accounts are never deleted')} END IF; "
                 f"IF {ACCOUNT_CHANGE} THEN "
                 f"{_raise('ledger account totals only grow and its identity never changes')} END IF; RETURN NEW;"),
    "CREATE TRIGGER ledger_account_guard BEFORE UPDATE OR DELETE ON ledger_account FOR EACH ROW "
    "EXECUTE FUNCTION ledger_account_guard()",
]
POSTGRES_BACK = [
    "DROP TRIGGER IF EXISTS ledger_entry_guard ON ledger_entry",
    "DROP TRIGGER IF EXISTS ledger_transaction_balanced ON ledger_ledgertransaction",
    "DROP TRIGGER IF EXISTS ledger_entry_commit_check ON ledger_entry",
    "DROP TRIGGER IF EXISTS ledger_account_guard ON ledger_account",
]


class Migration(migrations.Migration):
    dependencies = [("ledger", "0001_initial"), ("core", "0002_auditentry_append_only")]
    operations = [
        VendorSQL({"sqlite": SQLITE, "postgresql": POSTGRES}, {"sqlite": SQLITE_BACK, "postgresql": POSTGRES_BACK},
                  description="Ledger integrity triggers"),
        ProtectRows("ledger_entry"),
        ProtectRows("ledger_ledgertransaction"),
    ]
