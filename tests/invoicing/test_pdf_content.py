"""The issued PDF, read back with pypdf: what a tax auditor looks for is printed on it (issue 7)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from unittest import mock

import pytest
from django.conf import settings
from django.utils import timezone

from invoicing.models import DocumentKind
from invoicing.services.commission import issue_monthly_commission_invoices
from invoicing.services.pdf import render_document_pdf
from invoicing.vat import LEGEND_OSS, LEGEND_REVERSE_CHARGE, VatCategory
from payments.services.orders import LineInput
from tests.factories import PayeeFactory
from tests.invoicing.document_helpers import goods, invoice_of, pay_order, pdf_pages, pdf_text, refund_order

pytestmark = pytest.mark.django_db

TODAY = "{d.day} {d:%B} {d.year}"


def today() -> str:
    return TODAY.format(d=timezone.localdate())


def flat(text: str) -> str:
    """pypdf breaks long cells and paragraphs over lines: compare on single spaces."""
    return re.sub(r"\s+", " ", text)


@pytest.fixture
def seller():
    return PayeeFactory(
        legal_name="Zvuk s.r.o.", country="CZ", vat_id="CZ27082440", address="Vodičkova 1\n110 00 Praha 1"
    )


def test_domestic_invoice_prints_parties_lines_vat_breakdown_totals_and_payment(
    django_capture_on_commit_callbacks, seller
):
    order = pay_order(
        [
            goods(seller, "Amplifier 4×100 W", amount=12100, quantity=2),
            LineInput(
                payee_id=seller.pk,
                description="Car audio handbook",
                quantity=1,
                unit_amount_minor=11200,
                vat_category=VatCategory.REDUCED,
            ),
        ],
        buyer_name="Audio Brno a.s.",
        buyer_address="Dlouhá 5\n602 00 Brno",
        buyer_vat_id="CZ00177041",
        buyer_email="accounts@audio-brno.example",
        reference="SHOP-77",
    )
    invoice = invoice_of(order)
    text = flat(pdf_text(invoice))

    assert re.fullmatch(r"P\d{4}-INV-\d{4}-000001", invoice.number)
    assert f"Invoice No. {invoice.number}" in text
    assert f"Date of issue {today()}" in text
    assert f"Date of supply (tax point) {today()}" in text
    assert "Order SHOP-77" in text
    # Issuer (the payee, in whose name the platform invoices) and buyer.
    assert "Zvuk s.r.o. Vodičkova 1 110 00 Praha 1 Country: Czechia (CZ) VAT id: CZ27082440" in text
    assert "Audio Brno a.s. Dlouhá 5 602 00 Brno Country: Czechia (CZ) VAT id: CZ00177041" in text
    assert "E-mail: accounts@audio-brno.example" in text
    # Lines: description, quantity, unit price without and with VAT, rate, amount.
    assert "1 Amplifier 4×100 W 2 €100.00 €121.00 21 % €242.00" in text
    assert "2 Car audio handbook 1 €100.00 €112.00 12 % €112.00" in text
    # VAT breakdown per rate: net, VAT, gross, scheme and country of taxation.
    assert "21 % Domestic Czechia (CZ) €200.00 €42.00 €242.00" in text
    assert "12 % Domestic Czechia (CZ) €100.00 €12.00 €112.00" in text
    assert "Total net €300.00 Total VAT €54.00 Total (EUR) €354.00" in text
    assert f"Paid by Sandbox test payment on {today()}. Nothing is due." in text
    assert f"Issued by {settings.TOLLGATE_PLATFORM_LEGAL_NAME}" in text
    assert "in the name and on behalf of Zvuk s.r.o." in text
    assert "Page 1 of 1" in text
    assert "Reverse charge" not in text
    assert "One-Stop Shop" not in text


def test_b2b_cross_border_invoice_carries_the_reverse_charge_legend(django_capture_on_commit_callbacks, seller):
    order = pay_order(
        [goods(seller, "Amplifier", amount=12100)],
        buyer_country="DE",
        buyer_vat_id="DE136695976",
        buyer_name="Muster GmbH",
        buyer_address="Hauptstraße 1\n10115 Berlin",
    )
    text = flat(pdf_text(invoice_of(order)))

    assert "Muster GmbH Hauptstraße 1 10115 Berlin Country: Germany (DE) VAT id: DE136695976" in text
    assert "VAT id: CZ27082440" in text
    assert "1 Amplifier Reverse charge · taxable in DE 1 €121.00 €121.00 0 % €121.00" in text
    assert "0 % Reverse charge Germany (DE) €121.00 €0.00 €121.00" in text
    assert "Total VAT €0.00" in text
    assert LEGEND_REVERSE_CHARGE in text


def test_b2c_distance_sale_under_oss_is_taxed_in_the_buyers_country_with_the_legend(
    django_capture_on_commit_callbacks,
):
    payee = PayeeFactory(legal_name="Knihy s.r.o.", country="CZ", vat_id="CZ26168685", uses_oss=True)
    order = pay_order(
        [goods(payee, "Headphones", amount=11900)],
        buyer_country="DE",
        buyer_name="Erika Mustermann",
    )
    text = flat(pdf_text(invoice_of(order)))

    assert "Erika Mustermann" in text
    assert "Country: Germany (DE)" in text
    assert "19 % One-Stop Shop Germany (DE) €100.00 €19.00 €119.00" in text
    assert LEGEND_OSS in text
    assert LEGEND_REVERSE_CHARGE not in text


def test_credit_note_references_the_original_invoice_and_shows_negative_amounts(
    django_capture_on_commit_callbacks, seller
):
    order = pay_order([goods(seller, "Amplifier", amount=12100)])
    original = invoice_of(order)
    refund = refund_order(django_capture_on_commit_callbacks, order, 6050)
    credit_note = invoice_of(order, DocumentKind.CREDIT_NOTE)
    text = flat(pdf_text(credit_note))

    assert f"Credit note No. {credit_note.number}" in text
    assert f"Corrects invoice {original.number} of {today()}" in text
    assert f"Refund no. {refund.pk} of {today()}" in text
    assert "1 Refund: Amplifier 1 -€50.00 -€60.50 21 % -€60.50" in text
    assert "21 % Domestic Czechia (CZ) -€50.00 -€10.50 -€60.50" in text
    assert "Total net -€50.00 Total VAT -€10.50 Total credited (EUR) -€60.50" in text
    assert f"Refunded to the buyer on {today()}" in text
    assert "Zvuk s.r.o." in text
    assert "VAT id: CZ27082440" in text


def test_jpy_invoice_has_no_decimals(django_capture_on_commit_callbacks, seller):
    order = pay_order([goods(seller, "Tea set", amount=1500)], currency="JPY")
    text = flat(pdf_text(invoice_of(order)))

    assert "1 Tea set 1 ¥1,240 ¥1,500 21 % ¥1,500" in text
    assert "21 % Domestic Czechia (CZ) ¥1,240 ¥260 ¥1,500" in text
    assert "Total (JPY) ¥1,500" in text
    assert not re.search(r"¥[\d,]+\.\d", text)


def test_a_long_invoice_paginates_with_the_number_and_table_header_on_every_page(
    django_capture_on_commit_callbacks, seller
):
    lines = [goods(seller, f"Spare part no. {index:03d}", amount=1000 + index) for index in range(1, 71)]
    order = pay_order(lines)
    invoice = invoice_of(order)
    pages = [flat(page) for page in pdf_pages(invoice)]

    assert len(pages) >= 2
    assert f"Page 2 of {len(pages)}" in pages[1]
    for number, page in enumerate(pages, start=1):
        assert f"Page {number} of {len(pages)}" in page
        assert invoice.number in page
    assert "# Description Qty Unit price excl. VAT" in pages[1]  # the lines' header, repeated
    text = " ".join(pages)
    for index in range(1, 71):
        assert f"Spare part no. {index:03d}" in text
    assert "Total (EUR) €724.85" in text  # 70 × €10.00 + (1 + … + 70) cents


def test_commission_invoice_lists_each_order_with_net_and_vat_for_the_period(
    django_capture_on_commit_callbacks, seller
):
    october = datetime(2026, 10, 5, 10, tzinfo=UTC)
    pay_order([goods(seller, "Cable", amount=10000)], reference="OCT-1", now=october)
    pay_order(
        [goods(seller, "Speaker", amount=20000)],
        reference="OCT-2",
        now=october.replace(day=20),
    )
    [document] = issue_monthly_commission_invoices(year=2026, month=10, now=timezone.now())
    lines = list(document.lines.all())
    text = flat(pdf_text(document))

    assert f"Commission invoice No. {document.number}" in text
    assert "Period 1 October 2026 – 31 October 2026" in text
    assert "Date of supply (tax point) 31 October 2026" in text
    # The platform issues it; the payee receives it.
    assert f"SUPPLIER {settings.TOLLGATE_PLATFORM_LEGAL_NAME}" in text
    assert f"Country: Czechia (CZ) VAT id: {settings.TOLLGATE_PLATFORM_VAT_ID} CUSTOMER" in text
    assert "CUSTOMER Zvuk s.r.o. Vodičkova 1 110 00 Praha 1 Country: Czechia (CZ) VAT id: CZ27082440" in text
    assert "# Description Net VAT rate VAT Amount" in text
    for line, reference, day in zip(lines, ["OCT-1", "OCT-2"], ["2026-10-05", "2026-10-20"], strict=True):
        net, vat = f"€{line.net_minor / 100:,.2f}", f"€{line.vat_minor / 100:,.2f}"
        gross = f"€{line.gross_minor / 100:,.2f}"
        assert f"Commission on order {reference} ({day}) {net} 21 % {vat} {gross}" in text
    net = sum(line.net_minor for line in lines)
    vat = sum(line.vat_minor for line in lines)
    assert f"21 % Domestic Czechia (CZ) €{net / 100:,.2f} €{vat / 100:,.2f} €{(net + vat) / 100:,.2f}" in text
    assert f"Total (EUR) €{(net + vat) / 100:,.2f}" in text
    assert "in the name and on behalf of" not in text


def test_markup_in_document_data_is_printed_as_text_and_nothing_is_fetched(django_capture_on_commit_callbacks):
    payee = PayeeFactory(legal_name='Evil <b>"Co"</b>', address='<img src="http://169.254.169.254/x">')
    order = pay_order(
        [goods(payee, '<link rel="stylesheet" href="http://example.invalid/a.css">Cable', amount=1000)],
        buyer_name="</style><h1>Buyer</h1>",
    )
    invoice = invoice_of(order)
    text = flat(pdf_text(invoice))

    with mock.patch("core.pdf.refuse_fetch") as fetch:
        render_document_pdf(invoice)
    fetch.assert_not_called()  # self-contained: no fonts, images or stylesheets fetched
    assert 'Evil <b>"Co"</b>' in text
    assert '<img src="http://169.254.169.254/x">' in text
    # A long cell wraps anywhere: compare without the line breaks.
    assert '<linkrel="stylesheet"href="http://example.invalid/a.css">Cable' in text.replace(" ", "")
    assert "</style><h1>Buyer</h1>" in text
