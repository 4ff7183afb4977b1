"""Issued documents never change: the ORM refuses, and so does the database (triggers), on SQLite and
PostgreSQL alike. A correction is a credit note."""

from __future__ import annotations

import hashlib

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from core.immutable import ImmutableRowError
from invoicing.models import Invoice, InvoiceLine, InvoicePdf, InvoiceVatGroup
from invoicing.services.pdf import store_document_pdf
from tests.factories import PayeeFactory
from tests.invoicing.helpers import line, pay

pytestmark = pytest.mark.django_db


@pytest.fixture
def invoice():
    order = pay(lines=[line(PayeeFactory(), 12100)])
    return Invoice.objects.get(order=order)


def test_the_orm_refuses_to_change_or_delete_a_document(invoice):
    invoice.gross_minor = 1
    with pytest.raises(ImmutableRowError):
        invoice.save()
    with pytest.raises(ImmutableRowError):
        Invoice.objects.filter(pk=invoice.pk).update(gross_minor=1)
    with pytest.raises(ImmutableRowError):
        invoice.delete()


@pytest.mark.parametrize(
    ("model", "sql"),
    [
        (Invoice, "UPDATE invoicing_invoice SET gross_minor = gross_minor + 1, net_minor = net_minor + 1"),
        (Invoice, "UPDATE invoicing_invoice SET number = 'X-1'"),
        (Invoice, "DELETE FROM invoicing_invoice"),
        (InvoiceLine, "UPDATE invoicing_invoiceline SET gross_minor = 1"),
        (InvoiceVatGroup, "UPDATE invoicing_invoicevatgroup SET vat_minor = 0, net_minor = gross_minor"),
        (InvoicePdf, "UPDATE invoicing_invoicepdf SET sha256 = 'forged'"),
        (InvoicePdf, "DELETE FROM invoicing_invoicepdf"),
    ],
)
def test_the_database_refuses_raw_changes(invoice, model, sql):
    store_document_pdf(invoice_id=invoice.pk, now=timezone.now())
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)
    assert model.objects.exists()
    invoice_row = Invoice.objects.get(pk=invoice.pk)
    assert (invoice_row.number, invoice_row.gross_minor) == (invoice.number, 12100)


def test_the_stored_pdf_is_served_unchanged_and_matches_its_hash(invoice):
    first = store_document_pdf(invoice_id=invoice.pk, now=timezone.now())
    again = store_document_pdf(invoice_id=invoice.pk, now=timezone.now())
    assert bytes(first.content) == bytes(again.content)
    assert hashlib.sha256(bytes(again.content)).hexdigest() == again.sha256
    assert bytes(again.content).startswith(b"%PDF-")
