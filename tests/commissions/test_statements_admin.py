"""Statements in the admin (issue 8 "Admin: ... statements"): the list with filters, search and totals per
currency; the PDF behind the view permission; "e-mail again" behind `commissions.resend_statement`, logged and
audited; never editable. And the portal's download of a statement issued without a stored PDF."""

import pytest
from django.core import mail
from django.urls import reverse

from commissions.models import PayoutStatement, StatementDelivery
from core.models import AuditEntry
from tests.commissions.portal_helpers import make_statement
from tests.factories import PayeeFactory, staff_client

pytestmark = pytest.mark.django_db

VIEW = "commissions.view_payoutstatement"
LIST = reverse("admin:commissions_payoutstatement_changelist")


@pytest.fixture
def statements():
    first = PayeeFactory(legal_name="Autozvuk s.r.o.", email="a@example.com")
    second = PayeeFactory(legal_name="Geluid BV", email="g@example.com")
    return [make_statement(first, month=3), make_statement(first, month=4), make_statement(second, month=3)]


def test_the_list_filters_searches_and_totals_per_currency(statements):
    client = staff_client(VIEW)
    page = client.get(LIST).content.decode()
    assert page.count("Download PDF") == 3
    assert "€300.00" in page  # sales of the three, in the totals row
    assert "Autozvuk s.r.o." in page
    searched = client.get(LIST, {"q": "Geluid"}).content.decode()
    assert searched.count("Download PDF") == 1
    by_kind = client.get(LIST, {"kind__exact": "payout"}).content.decode()
    assert by_kind.count("Download PDF") == 0


def test_the_pdf_needs_the_view_permission(statements):
    url = reverse("admin:commissions_payoutstatement_pdf", args=[statements[0].pk])
    assert staff_client().get(url).status_code == 403
    response = staff_client(VIEW).get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content == b"%PDF-1.4 statement"
    missing = reverse("admin:commissions_payoutstatement_pdf", args=[999999])
    assert staff_client(VIEW).get(missing).status_code == 404


def test_a_statement_cannot_be_added_or_changed_through_the_admin(statements):
    client = staff_client(VIEW)
    assert client.get(reverse("admin:commissions_payoutstatement_add")).status_code == 403
    change = reverse("admin:commissions_payoutstatement_change", args=[statements[0].pk])
    assert client.get(change).status_code == 200
    assert client.post(change, {"closing_minor": "1"}).status_code == 403
    assert PayoutStatement.objects.get(pk=statements[0].pk).closing_minor == 8790


def test_email_again_needs_its_permission_and_is_logged(statements):
    data = {"action": "resend_by_email", "_selected_action": [statements[0].pk, statements[1].pk]}
    refused = staff_client(VIEW).post(LIST, data)
    assert refused.status_code in (200, 403)  # no such action for this user
    assert not mail.outbox
    assert not StatementDelivery.objects.exists()

    client = staff_client(VIEW, "commissions.resend_statement")
    response = client.post(LIST, data, follow=True)
    assert "Sent 2 statements by e-mail." in response.content.decode()
    assert [m.to for m in mail.outbox] == [["a@example.com"], ["a@example.com"]]
    assert StatementDelivery.objects.filter(actor_label=f"staff:{client.user}").count() == 2
    assert AuditEntry.objects.filter(action="commissions.statement.resend").count() == 2


def test_the_portal_renders_a_statement_issued_without_a_stored_pdf(client, settings):
    payee = PayeeFactory()
    statement = make_statement(payee, pdf=b"")
    user = type(payee).portal_user.field.related_model.objects.create_user("payee-pdf", password="x")
    payee.portal_user = user
    payee.save(update_fields=["portal_user"])
    client.force_login(user)
    response = client.get(reverse("portal:statement_pdf", args=[statement.pk]))
    assert response.status_code == 200
    assert response.content.startswith(b"%PDF")
    assert f"statement-{statement.reference}.pdf" in response["Content-Disposition"]
