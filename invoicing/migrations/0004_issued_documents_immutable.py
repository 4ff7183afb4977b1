"""Issued documents never change: the database refuses UPDATE and DELETE on invoices, their lines, VAT
groups, PDFs and delivery log (corrections are credit notes). Numbering series stay updatable."""

from django.db import migrations

from core.immutable import ProtectRows

TABLES = ["invoicing_invoice", "invoicing_invoiceline", "invoicing_invoicevatgroup", "invoicing_invoicepdf",
          "invoicing_invoicedelivery"]


class Migration(migrations.Migration):
    dependencies = [("invoicing", "0003_issued_documents")]
    operations = [ProtectRows(table) for table in TABLES]
