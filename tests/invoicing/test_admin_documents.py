"""Issued documents in the back office: the list (filters, search, signed totals per currency), the read-only
document page, the PDF download and the "re-send by e-mail" action, each behind its permission. Documents
are issued through the real services (see `tests/invoicing/test_vat_report.py`)."""

from __future__ import annotations

from datetime import date

import pytest
from django.contrib.messages import get_messages
from django.core import mail

from core.models import AuditEntry
from invoicing.models import DocumentKind, InvoiceDelivery
from invoicing.services.commission import issue_monthly_commission_invoices
from tests.factories import PayeeFactory
from tests.invoicing.test_vat_report import APRIL, MARCH, MARCH_LATE, credit_note, invoiced_order, staff

pytestmark = pytest.mark.django_db
LIST = "/admin/invoicing/invoice/"
VIEW = "invoicing.view_invoice"
RESEND = "invoicing.resend_invoice"


@pytest.fixture
def docs():
    seller = PayeeFactory(country="CZ", vat_id="CZ25596641", uses_oss=True, legal_name="Zvuk Praha s.r.o.")
    other = PayeeFactory(country="CZ", legal_name="Eventy Brno s.r.o.")
    order, invoice = invoiced_order(
        seller, amount=12100, now=MARCH, reference="SHOP-1001", buyer_email="jana@example.com"
    )
    _, oss = invoiced_order(seller, amount=11900, now=MARCH, buyer_country="DE", reference="SHOP-1002")
    _, crowns = invoiced_order(other, amount=24200, now=MARCH, currency="CZK", reference="SHOP-1003")
    note = credit_note(order, amount=6050, now=MARCH_LATE)
    _, april = invoiced_order(seller, amount=12100, now=APRIL, reference="SHOP-1004")
    commission = issue_monthly_commission_invoices(year=2026, month=3, now=APRIL)
    return {
        "seller": seller,
        "other": other,
        "order": order,
        "invoice": invoice,
        "oss": oss,
        "crowns": crowns,
        "note": note,
        "april": april,
        "commission": commission,
    }


def rows(response) -> set[str]:
    assert response.status_code == 200
    return {document.number for document in response.context["cl"].result_list}


def numbers(*documents) -> set[str]:
    return {document.number for document in documents}


def post_action(client, action, *documents):
    return client.post(
        LIST, {"action": action, "_selected_action": [str(d.pk) for d in documents], "index": "0"}, follow=True
    )


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def totals(response) -> dict[str, str]:
    return {total.label: total.text.replace("\xa0", " ") for total in response.context["currency_totals"]}


def test_the_list_shows_every_kind_with_signed_totals(docs):
    client = staff(VIEW)
    response = client.get(LIST)
    buyer = numbers(docs["invoice"], docs["oss"], docs["crowns"], docs["note"], docs["april"])
    assert rows(response) == buyer | numbers(*docs["commission"])
    assert response.context["title"] == "Invoices, credit notes and commission invoices"
    text = response.content.decode()
    assert "-€60.50" in text  # the credit note's gross, negative
    assert "VAT report…" in text
    buyer_only = client.get(LIST, {"kind__in": "invoice,credit_note"})
    assert rows(buyer_only) == buyer
    # EUR: 121.00 + 119.00 + 121.00 − 60.50; CZK: 242.00.
    assert totals(buyer_only) == {
        "Net": "CZK 200.00 · €250.00",
        "VAT": "CZK 42.00 · €50.50",
        "Gross": "CZK 242.00 · €300.50",
    }


@pytest.mark.parametrize(
    ("params", "expected", "title"),
    [
        ({"kind__exact": "credit_note"}, ["note"], "Credit notes"),
        ({"kind__exact": "invoice", "currency__exact": "CZK"}, ["crowns"], "Invoices"),
        ({"kind__exact": "invoice", "scheme__exact": "oss"}, ["oss"], "Invoices"),
        ({"kind__exact": "invoice", "tax_country__exact": "DE"}, ["oss"], "Invoices"),
        ({"kind__exact": "invoice", "supply_month": "2026-04"}, ["april"], "Invoices"),
        ({"kind__exact": "invoice", "supply_date__year": "2026", "supply_date__month": "4"}, ["april"], "Invoices"),
    ],
)
def test_filters(docs, params, expected, title):
    response = staff(VIEW).get(LIST, params)
    assert rows(response) == numbers(*(docs[name] for name in expected))
    assert response.context["title"] == title


def test_payee_series_and_commission_filters(docs):
    client = staff(VIEW)
    other = client.get(LIST, {"payee__id__exact": docs["other"].pk, "kind__exact": "invoice"})
    assert rows(other) == numbers(docs["crowns"])
    series = docs["note"].series
    assert rows(client.get(LIST, {"series__id__exact": series.pk})) == numbers(docs["note"])
    commission = client.get(LIST, {"kind__exact": DocumentKind.COMMISSION_INVOICE})
    assert rows(commission) == numbers(*docs["commission"])
    assert commission.context["title"] == "Commission invoices"
    assert "2026-03-01 – 2026-03-31" in commission.content.decode()
    assert rows(client.get(LIST, {"supply_month": "not-a-month"})) == set()


def test_search_by_number_order_and_recipient(docs):
    client = staff(VIEW)
    invoice = docs["invoice"]
    assert rows(client.get(LIST, {"q": invoice.number})) == numbers(invoice)
    prefix = invoice.number.rsplit("-", 1)[0]  # P0001-INV-2026: all the seller's invoices
    assert rows(client.get(LIST, {"q": prefix})) == numbers(invoice, docs["oss"], docs["april"])
    assert rows(client.get(LIST, {"q": "SHOP-1001"})) == numbers(invoice, docs["note"])
    assert rows(client.get(LIST, {"q": str(docs["order"].token)})) == numbers(invoice, docs["note"])
    assert rows(client.get(LIST, {"q": "jana@example.com"})) == numbers(invoice, docs["note"])
    assert rows(client.get(LIST, {"q": "SHOP-10"})) == set()  # references match whole only


def test_the_document_page_is_read_only_with_lines_vat_groups_and_deliveries(docs):
    client = staff(VIEW)
    note = docs["note"]
    url = f"{LIST}{note.pk}/change/"
    response = client.get(url)
    assert response.status_code == 200
    text = response.content.decode()
    assert "Refund: Amplifier" in text
    assert docs["invoice"].number in text  # the original
    assert "-€60.50" in text
    assert {formset.opts.model.__name__ for formset in response.context["inline_admin_formsets"]} == {
        "InvoiceLine",
        "InvoiceVatGroup",
        "InvoiceDelivery",
    }
    assert client.post(url, {"number": "X"}).status_code == 403
    assert client.get(f"{LIST}add/").status_code == 403
    assert client.post(f"{LIST}{note.pk}/delete/", {"post": "yes"}).status_code == 403


def test_staff_without_the_view_permission_cannot_list_or_open_documents(docs):
    client = staff(RESEND)
    assert client.get(LIST).status_code == 403
    assert client.get(f"{LIST}{docs['invoice'].pk}/change/").status_code == 403
    assert client.get(f"{LIST}{docs['invoice'].pk}/pdf/").status_code == 403


def test_pdf_download_serves_the_stored_pdf(docs):
    invoice = docs["invoice"]
    client = staff(VIEW)
    response = client.get(f"{LIST}{invoice.pk}/pdf/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'attachment; filename="{invoice.number}.pdf"'
    assert response.content.startswith(b"%PDF")
    assert response.content == bytes(invoice.pdf.content)
    assert f"{LIST}{invoice.pk}/pdf/" in client.get(LIST).content.decode()  # the link column
    assert client.get(f"{LIST}999999/pdf/").status_code == 404


def test_resend_emails_the_pdf_logs_the_delivery_and_audits(docs):
    client = staff(VIEW, RESEND)
    invoice, oss = docs["invoice"], docs["oss"]
    mail.outbox.clear()
    response = post_action(client, "resend_by_email", invoice, oss)
    assert response.status_code == 200
    assert "Sent 2 documents by e-mail." in messages_of(response)
    assert len(mail.outbox) == 2
    sent = {message.to[0]: message for message in mail.outbox}
    attachment = sent["jana@example.com"].attachments[0]
    assert attachment[0] == f"{invoice.number}.pdf"
    assert attachment[2] == "application/pdf"
    assert attachment[1].startswith(b"%PDF")
    delivery = InvoiceDelivery.objects.get(invoice=invoice)
    assert (delivery.to, delivery.actor_label) == ("jana@example.com", f"staff:{client.user.get_username()}")
    audit = AuditEntry.objects.filter(action="invoicing.document.resend", object_id=str(invoice.pk)).get()
    assert audit.actor == client.user
    assert audit.metadata["sent"] is True
    # The list now shows them as e-mailed.
    listed = {document.number: document.was_emailed for document in client.get(LIST).context["cl"].result_list}
    assert listed[invoice.number] is True
    assert listed[oss.number] is True
    assert listed[docs["april"].number] is False


def test_resend_is_refused_without_its_permission(docs):
    client = staff(VIEW)
    mail.outbox.clear()
    assert client.get(LIST).context["action_form"] is None  # no action offered
    response = post_action(client, "resend_by_email", docs["invoice"])
    assert response.status_code == 200
    assert "Sent" not in " ".join(messages_of(response))
    assert mail.outbox == []
    assert not InvoiceDelivery.objects.exists()
    assert not AuditEntry.objects.filter(action="invoicing.document.resend").exists()


def test_resend_of_a_document_without_an_address_is_reported(docs):
    seller = PayeeFactory(country="CZ")
    _, invoice = invoiced_order(seller, amount=5000, now=MARCH, buyer_email="")
    assert invoice.recipient_email == ""
    response = post_action(staff(VIEW, RESEND), "resend_by_email", invoice)
    assert "1 document not sent: no recipient e-mail address." in messages_of(response)
    assert not InvoiceDelivery.objects.filter(invoice=invoice).exists()


def test_supply_month_lookups_list_the_months_with_documents(docs):
    response = staff(VIEW).get(LIST)
    month_filter = next(
        spec for spec in response.context["cl"].filter_specs if getattr(spec, "parameter_name", "") == "supply_month"
    )
    assert [value for value, _ in month_filter.lookup_choices] == ["2026-04", "2026-03"]
    assert date(2026, 3, 1) <= docs["note"].supply_date <= date(2026, 3, 31)


def test_a_failed_send_is_reported_and_audited_and_the_others_still_go(docs, monkeypatch):
    from invoicing import admin as invoicing_admin

    real = invoicing_admin.email_document
    failing = docs["oss"].pk

    def flaky(*, invoice_id, **kwargs):
        if invoice_id == failing:
            raise ConnectionRefusedError("SMTP server down")
        return real(invoice_id=invoice_id, **kwargs)

    monkeypatch.setattr(invoicing_admin, "email_document", flaky)
    mail.outbox.clear()
    response = post_action(staff(VIEW, RESEND), "resend_by_email", docs["invoice"], docs["oss"])
    assert "Sent 1 document by e-mail." in messages_of(response)
    assert "1 document could not be sent." in messages_of(response)
    assert len(mail.outbox) == 1
    assert not InvoiceDelivery.objects.filter(invoice=docs["oss"]).exists()
    failure = AuditEntry.objects.get(action="invoicing.document.resend", object_id=str(failing))
    assert failure.outcome == AuditEntry.Outcome.FAILURE
    assert "SMTP server down" in failure.message


def test_credit_note_lines_and_vat_groups_are_shown_negative(docs):
    response = staff(VIEW).get(f"{LIST}{docs['note'].pk}/change/")
    lines, groups, _ = response.context["inline_admin_formsets"]
    line_cells = [field.contents() for row in lines for fieldset in row for line in fieldset for field in line]
    assert "-€60.50" in line_cells
    group_cells = [field.contents() for row in groups for fieldset in row for line in fieldset for field in line]
    assert [cell for cell in group_cells if "€" in cell] == ["-€50.00", "-€10.50", "-€60.50"]
