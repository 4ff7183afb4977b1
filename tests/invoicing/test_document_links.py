"""The buyer's documents on the checkout return page, and their signed download links (issue 7)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import mail, signing
from django.urls import reverse
from django.utils import timezone

from invoicing.models import DocumentKind
from invoicing.services.delivery import LINK_SALT, download_token, invoice_for_token
from tests.factories import PayeeFactory
from tests.invoicing.document_helpers import goods, invoice_of, pay_order, refund_order

pytestmark = pytest.mark.django_db

LINK = re.compile(r'href="(/documents/[^"]+/)"')


@pytest.fixture
def seller():
    return PayeeFactory(legal_name="Zvuk s.r.o.", country="CZ", vat_id="CZ27082440", address="Vodičkova 1\nPraha")


@pytest.fixture
def order(django_capture_on_commit_callbacks, seller):
    return pay_order([goods(seller, "Amplifier", amount=12100)])


def return_page(client, order) -> str:
    response = client.get(reverse("checkout:return", args=[order.token]))
    assert response.status_code == 200
    return response.content.decode()


def linked_documents(page: str) -> list[int]:
    """The documents the page's download links name (tokens carry a timestamp: compare what they sign)."""
    tokens = [link.removeprefix("/documents/").rstrip("/") for link in LINK.findall(page)]
    return [invoice_for_token(token).pk for token in tokens]


def assert_not_served(response) -> None:
    assert response.status_code == 404
    assert response.get("Content-Type", "").split(";")[0] != "application/pdf"
    assert not response.content.startswith(b"%PDF")


def test_the_return_page_lists_the_invoice_and_its_link_downloads_the_pdf(client, order):
    invoice = invoice_of(order)
    page = return_page(client, order)

    assert f"Invoice {invoice.number} — <a href=" in page
    assert "download PDF</a>" in page
    assert "<script" not in page
    [link] = LINK.findall(page)
    assert linked_documents(page) == [invoice.pk]

    response = client.get(link)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'attachment; filename="{invoice.number}.pdf"'
    assert response.content == bytes(invoice.pdf.content)
    assert response.content.startswith(b"%PDF")


def test_credit_notes_are_listed_beside_the_invoice(client, django_capture_on_commit_callbacks, order):
    refund_order(django_capture_on_commit_callbacks, order, 5000)
    invoice, credit_note = invoice_of(order), invoice_of(order, DocumentKind.CREDIT_NOTE)
    page = return_page(client, order)

    assert f"Invoice {invoice.number} — <a" in page
    assert f"Credit note {credit_note.number} — <a" in page
    links = LINK.findall(page)
    assert linked_documents(page) == [invoice.pk, credit_note.pk]
    response = client.get(links[1])
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="{credit_note.number}.pdf"'


def test_an_unpaid_order_shows_no_documents(client, seller):
    from tests.payments.helpers import make_order

    page = return_page(client, make_order(seller))
    assert "download PDF" not in page
    assert not LINK.findall(page)


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda token: token[:-1] + ("A" if token[-1] != "A" else "B"), id="altered-signature"),
        pytest.param(lambda token: "999999" + token[token.index(":") :], id="other-id-same-signature"),
        pytest.param(lambda token: token.split(":")[0], id="bare-id"),
        pytest.param(lambda token: signing.TimestampSigner(salt="other").sign(token.split(":")[0]), id="other-salt"),
        pytest.param(
            lambda token: signing.TimestampSigner(key="x" * 50, salt=LINK_SALT).sign(token.split(":")[0]),
            id="other-key",
        ),
        pytest.param(lambda token: "not-a-token", id="garbage"),
    ],
)
def test_a_forged_or_altered_link_is_a_404_without_the_pdf(client, order, tamper):
    token = download_token(invoice_of(order))
    assert_not_served(client.get(reverse("invoicing:download", args=[tamper(token)])))


def test_an_expired_link_is_a_404(client, order, settings, time_machine):
    settings.TOLLGATE_DOCUMENT_LINK_MAX_AGE = 3600
    link = reverse("invoicing:download", args=[download_token(invoice_of(order))])
    assert client.get(link).status_code == 200

    time_machine.move_to(timezone.now() + timedelta(hours=2))
    assert_not_served(client.get(link))


def test_another_orders_invoice_is_not_on_this_orders_page(client, django_capture_on_commit_callbacks, seller, order):
    other = pay_order(
        [goods(seller, "Speaker", amount=5000)],
        buyer_email="someone-else@example.com",
    )
    other_invoice = invoice_of(other)
    page = return_page(client, order)

    assert other_invoice.number not in page
    assert linked_documents(page) == [invoice_of(order).pk]
    assert linked_documents(return_page(client, other)) == [other_invoice.pk]


def test_the_emailed_document_carries_its_pdf_and_a_working_link(client, documents_rendered, order):
    invoice = invoice_of(order)
    [message] = [message for message in mail.outbox if invoice.number in message.subject]
    [link] = re.findall(r"http://testserver(/documents/\S+/)", message.body)

    assert message.to == ["buyer@example.com"]
    assert f"attached is your invoice {invoice.number}" in message.body
    assert "in the name and on behalf of Zvuk s.r.o." in message.body
    assert message.attachments[0][0] == f"{invoice.number}.pdf"
    assert client.get(link).content == bytes(invoice.pdf.content) == message.attachments[0][1]
