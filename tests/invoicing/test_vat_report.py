"""The VAT report (`invoicing.selectors.vat_report`, admin page and CSV): documents issued through the real
services (orders paid through the sandbox, refunds through the refund services), summed per section, country
of taxation, scheme, rate and currency by supply date, credit notes subtracted."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime

import pytest
from django.test import Client

from invoicing.models import DocumentKind, Invoice
from invoicing.selectors import decimal_amount, vat_report, vat_report_totals
from invoicing.services.commission import issue_monthly_commission_invoices
from invoicing.services.issuing import issue_order_invoices, issue_refund_credit_notes
from payments.models import Order
from refunds.models import RefundStatus
from refunds.services import execute_refund, request_refund
from tests.factories import PayeeFactory
from tests.factories import staff_client as staff
from tests.invoicing.helpers import line, pay

pytestmark = pytest.mark.django_db
REPORT = "/admin/invoicing/invoice/vat-report/"
MARCH = datetime.fromisoformat("2026-03-10T10:00:00+00:00")
MARCH_LATE = datetime.fromisoformat("2026-03-25T10:00:00+00:00")
APRIL = datetime.fromisoformat("2026-04-02T10:00:00+00:00")


def invoiced_order(
    payee,
    *,
    amount: int,
    now: datetime,
    buyer_country: str = "CZ",
    buyer_vat_id: str = "",
    currency: str = "EUR",
    reference: str | None = None,
    buyer_email: str = "buyer@example.com",
) -> tuple[Order, Invoice]:
    """An order of goods paid through the sandbox at `now`, and its invoice issued by the issuing service."""
    order = pay(
        lines=[line(payee, amount, description="Amplifier")],
        currency=currency,
        buyer_country=buyer_country,
        buyer_vat_id=buyer_vat_id,
        buyer_email=buyer_email,
        reference=reference,
        now=now,
    )
    (invoice,) = issue_order_invoices(order_id=order.pk, now=now)
    return order, invoice


def credit_note(order: Order, *, amount: int, now: datetime) -> Invoice:
    """A partial refund through the refund services, completed at the sandbox, and its credit note."""
    refund = request_refund(order=order, amount_minor=amount, reason="requested_by_customer", now=now)
    refund = execute_refund(refund_id=refund.pk, now=now)
    assert refund.status == RefundStatus.SUCCEEDED
    (document,) = issue_refund_credit_notes(refund_id=refund.pk, now=now)
    return document


@pytest.fixture
def documents():
    """March 2026: domestic CZ 21 % (121.00, 60.50 credited back), OSS to DE 19 % (119.00), reverse charge
    to a DE business (100.00), and a CZK domestic one; April: one more domestic invoice (outside March)."""
    seller = PayeeFactory(country="CZ", vat_id="CZ25596641", uses_oss=True, address="Main 1\nPraha")
    domestic_order, domestic = invoiced_order(seller, amount=12100, now=MARCH)
    _, oss = invoiced_order(seller, amount=11900, now=MARCH, buyer_country="DE")
    _, reverse = invoiced_order(seller, amount=10000, now=MARCH, buyer_country="DE", buyer_vat_id="DE136695976")
    _, crowns = invoiced_order(seller, amount=24200, now=MARCH, currency="CZK")
    note = credit_note(domestic_order, amount=6050, now=MARCH_LATE)
    _, april = invoiced_order(seller, amount=12100, now=APRIL)
    return {
        "seller": seller,
        "domestic": domestic,
        "oss": oss,
        "reverse": reverse,
        "crowns": crowns,
        "note": note,
        "april": april,
    }


def as_tuples(rows):
    return [
        (r.section, r.country, r.scheme, r.rate_bps, r.currency, r.net_minor, r.vat_minor, r.gross_minor, r.documents)
        for r in rows
    ]


def test_the_fixture_documents_are_what_the_report_expects(documents):
    assert (documents["domestic"].scheme, documents["domestic"].vat_minor) == ("domestic", 2100)
    assert (documents["oss"].scheme, documents["oss"].tax_country, documents["oss"].vat_minor) == ("oss", "DE", 1900)
    assert (documents["reverse"].scheme, documents["reverse"].vat_minor) == ("reverse_charge", 0)
    note = documents["note"]
    assert note.kind == DocumentKind.CREDIT_NOTE
    assert (note.net_minor, note.vat_minor, note.gross_minor) == (5000, 1050, 6050)


def test_report_of_march_sums_per_country_scheme_rate_and_currency_with_the_credit_note_subtracted(documents):
    rows = vat_report(date_from=date(2026, 3, 1), date_to=date(2026, 3, 31))
    assert as_tuples(rows) == [
        ("domestic", "CZ", "domestic", 2100, "CZK", 20000, 4200, 24200, 1),
        ("domestic", "CZ", "domestic", 2100, "EUR", 10000 - 5000, 2100 - 1050, 12100 - 6050, 2),
        ("oss", "DE", "oss", 1900, "EUR", 10000, 1900, 11900, 1),
        ("reverse_charge_out_of_scope", "DE", "reverse_charge", 0, "EUR", 10000, 0, 10000, 1),
    ]
    totals = [(t.section, t.currency, t.net_minor, t.vat_minor, t.gross_minor) for t in vat_report_totals(rows)]
    assert totals == [
        ("domestic", "CZK", 20000, 4200, 24200),
        ("domestic", "EUR", 5000, 1050, 6050),
        ("oss", "EUR", 10000, 1900, 11900),
        ("reverse_charge_out_of_scope", "EUR", 10000, 0, 10000),
    ]


def test_the_period_and_currency_filter_the_documents(documents):
    april = vat_report(date_from=date(2026, 4, 1), date_to=date(2026, 4, 30))
    assert as_tuples(april) == [("domestic", "CZ", "domestic", 2100, "EUR", 10000, 2100, 12100, 1)]
    crowns = vat_report(date_from=date(2026, 3, 1), date_to=date(2026, 4, 30), currency="CZK")
    assert [row.currency for row in crowns] == ["CZK"]
    # The credit note alone (supplied on the 25th): a negative row.
    late = vat_report(date_from=date(2026, 3, 20), date_to=date(2026, 3, 31))
    assert as_tuples(late) == [("domestic", "CZ", "domestic", 2100, "EUR", -5000, -1050, -6050, 1)]
    assert vat_report(date_from=date(2025, 1, 1), date_to=date(2025, 12, 31)) == []


def test_commission_invoices_are_their_own_section(documents):
    commission = issue_monthly_commission_invoices(year=2026, month=3, now=APRIL)
    assert sorted(document.currency for document in commission) == ["CZK", "EUR"]
    rows = vat_report(date_from=date(2026, 3, 1), date_to=date(2026, 3, 31))
    for document in commission:
        assert document.kind == DocumentKind.COMMISSION_INVOICE
        section = [row for row in rows if row.section == "commission" and row.currency == document.currency]
        assert sum(row.gross_minor for row in section) == document.gross_minor
        assert sum(row.vat_minor for row in section) == document.vat_minor
        assert all(row.documents == 1 for row in section)
    # The buyer documents' rows are unchanged by the commission invoices.
    assert len([row for row in rows if row.section != "commission"]) == 4


def test_decimal_amounts_use_the_currency_exponent():
    assert decimal_amount(12100, "EUR") == "121.00"
    assert decimal_amount(-6050, "EUR") == "-60.50"
    assert decimal_amount(500, "JPY") == "500"
    assert decimal_amount(1234, "KWD") == "1.234"
    assert decimal_amount(0, "CZK") == "0.00"


def test_report_page_shows_the_sections_and_totals(documents):
    response = staff("invoicing.view_invoice").get(REPORT, {"date_from": "2026-03-01", "date_to": "2026-03-31"})
    assert response.status_code == 200
    sections = {section["key"]: section for section in response.context["sections"]}
    assert [item["row"].country for item in sections["oss"]["rows"]] == ["DE"]
    assert sections["oss"]["totals"] == [{"currency": "EUR", "net": "€100.00", "vat": "€19.00", "gross": "€119.00"}]
    assert sections["domestic"]["totals"][1]["vat"] == "€10.50"
    assert sections["commission"]["rows"] == []
    assert b"Export CSV" in response.content


def test_report_defaults_to_last_month(documents, time_machine):
    time_machine.move_to(datetime.fromisoformat("2026-04-15T12:00:00+00:00"))
    response = staff("invoicing.view_invoice").get(REPORT)
    assert response.status_code == 200
    form = response.context["form"]
    assert (form.cleaned_data["date_from"], form.cleaned_data["date_to"]) == (date(2026, 3, 1), date(2026, 3, 31))
    assert len([item for section in response.context["sections"] for item in section["rows"]]) == 4


def test_csv_export_has_a_header_and_one_row_per_report_row(documents):
    response = staff("invoicing.view_invoice").get(
        REPORT, {"date_from": "2026-03-01", "date_to": "2026-03-31", "currency": "EUR", "format": "csv"}
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="vat-report-2026-03-01-2026-03-31-EUR.csv"' in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows == [
        ["section", "country", "scheme", "rate_percent", "currency", "net", "vat", "gross", "documents"],
        ["domestic", "CZ", "domestic", "21.00", "EUR", "50.00", "10.50", "60.50", "2"],
        ["oss", "DE", "oss", "19.00", "EUR", "100.00", "19.00", "119.00", "1"],
        ["reverse_charge_out_of_scope", "DE", "reverse_charge", "0.00", "EUR", "100.00", "0.00", "100.00", "1"],
    ]


@pytest.mark.parametrize(
    "params",
    [
        {"date_from": "2026-03-31", "date_to": "2026-03-01"},
        {"date_from": "garbage", "date_to": "2026-03-01"},
        {"date_from": "2026-02-30", "date_to": ""},
        {"date_from": "2026-03-01", "date_to": "2026-03-31", "currency": "XXX"},
    ],
)
def test_bad_input_is_a_form_error_not_a_500(params):
    client = staff("invoicing.view_invoice")
    response = client.get(REPORT, params)
    assert response.status_code == 200
    assert response.context["form"].errors
    assert response.context["sections"] == []
    csv_response = client.get(REPORT, {**params, "format": "csv"})
    assert csv_response.status_code == 400
    assert not csv_response["Content-Type"].startswith("text/csv")


def test_report_and_csv_need_the_view_permission(documents):
    client = staff()
    assert client.get(REPORT).status_code == 403
    assert client.get(REPORT, {"date_from": "2026-03-01", "date_to": "2026-03-31", "format": "csv"}).status_code == 403
    assert Client().get(REPORT).status_code == 302  # not logged in: to the admin login
