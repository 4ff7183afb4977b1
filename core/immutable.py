"""Rows that, once written, are never changed: ledger transactions and entries, audit entries.

Two layers: the ORM refuses `save()` on an existing row, `delete()` and queryset `update()`/`delete()`;
the database refuses UPDATE and DELETE through triggers (see `protect_rows_sql`), so raw SQL cannot
change history either. Corrections are new rows (a reversing transaction).
"""

from __future__ import annotations

from django.db import models
from django.db.migrations.operations.base import Operation


class ImmutableRowError(Exception):
    pass


class ImmutableQuerySet(models.QuerySet):
    def update(self, **kwargs):  # noqa: ARG002
        raise ImmutableRowError(f"{self.model.__name__} rows are immutable")

    def delete(self):
        raise ImmutableRowError(f"{self.model.__name__} rows are immutable")

    def bulk_update(self, *args, **kwargs):  # noqa: ARG002
        raise ImmutableRowError(f"{self.model.__name__} rows are immutable")


class AppendOnlyModel(models.Model):
    objects = ImmutableQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ImmutableRowError(f"{type(self).__name__} rows are immutable")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):  # noqa: ARG002
        raise ImmutableRowError(f"{type(self).__name__} rows are immutable")


def protect_rows_sql(vendor: str, table: str) -> tuple[list[str], list[str]]:
    """(forward, backward) SQL that makes `table` refuse UPDATE and DELETE at the database."""
    if vendor == "sqlite":
        forward = [
            f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{table} rows are immutable'); END",
            f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{table} rows are immutable'); END",
        ]
        backward = [f"DROP TRIGGER IF EXISTS {table}_no_update", f"DROP TRIGGER IF EXISTS {table}_no_delete"]
        return forward, backward
    if vendor == "postgresql":
        # No '%' in these statements: the schema editor passes params, so psycopg would parse it.
        forward = [
            "CREATE OR REPLACE FUNCTION tollgate_refuse_change() RETURNS trigger AS $$ "
            "BEGIN RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME || ' rows are immutable', "
            "ERRCODE = 'integrity_constraint_violation'; END; $$ LANGUAGE plpgsql",
            f"CREATE TRIGGER {table}_immutable BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION tollgate_refuse_change()",
        ]
        backward = [f"DROP TRIGGER IF EXISTS {table}_immutable ON {table}"]
        return forward, backward
    raise NotImplementedError(f"no immutability triggers for {vendor}")


class VendorSQL(Operation):
    """A migration step with SQL per database vendor (triggers differ between SQLite and PostgreSQL)."""

    reduces_to_sql = True
    reversible = True

    def __init__(self, forward: dict[str, list[str]], backward: dict[str, list[str]], description: str = ""):
        self.forward = forward
        self.backward = backward
        self.description = description

    def deconstruct(self):
        return (
            self.__class__.__name__,
            [],
            {"forward": self.forward, "backward": self.backward, "description": self.description},
        )

    def state_forwards(self, app_label, state):
        pass

    def _run(self, schema_editor, statements: dict[str, list[str]]) -> None:
        vendor = schema_editor.connection.vendor
        if vendor not in statements:
            raise NotImplementedError(f"{self.description or 'this migration'} has no SQL for {vendor}")
        for sql in statements[vendor]:
            schema_editor.execute(sql, params=None)

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        self._run(schema_editor, self.forward)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        self._run(schema_editor, self.backward)

    def describe(self):
        return self.description or "Vendor-specific SQL"


def ProtectRows(table: str) -> VendorSQL:  # noqa: N802 - reads like the operation it builds
    """Migration operation: the database refuses UPDATE and DELETE on `table`."""
    forward, backward = {}, {}
    for vendor in ("sqlite", "postgresql"):
        forward[vendor], backward[vendor] = protect_rows_sql(vendor, table)
    return VendorSQL(forward, backward, description=f"Refuse UPDATE/DELETE on {table}")
