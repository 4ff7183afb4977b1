import pytest
from django.core import mail

from invoicing.models import DocumentKind, Invoice
from tests.factories import PayeeFactory
from tests.refunds.policy_helpers import paid_order


@pytest.mark.django_db(transaction=False)
def test_paid_order_gets_an_invoice_with_pdf_and_email(django_capture_on_commit_callbacks, documents_rendered):
    payee = PayeeFactory(country="CZ", vat_id="CZ25596641", address="Main 1\nPraha")
    with django_capture_on_commit_callbacks(execute=True):
        order = paid_order(payee, amount=12100, event_in=None)
    invoice = Invoice.objects.get(order=order, kind=DocumentKind.INVOICE)
    assert (invoice.net_minor, invoice.vat_minor, invoice.gross_minor) == (10000, 2100, 12100)
    assert invoice.number.endswith("-000001")
    assert invoice.pdf.size > 1000
    assert len(mail.outbox[-1].attachments) == 1
