"""What staff may edit: payees, payment links (with their lines), API clients and keys. Every save is
also an audit entry."""

import re

import pytest
from django.contrib.messages import get_messages

from commissions.models import Payee
from core.models import ApiClientKey, AuditEntry
from payments.models import PaymentLink
from tests.factories import ApiClientFactory

pytestmark = pytest.mark.django_db


def _inline_management(prefix: str, total: int, initial: int = 0) -> dict[str, str]:
    return {
        f"{prefix}-TOTAL_FORMS": str(total),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }


def test_staff_edit_a_payee_and_the_change_is_audited(staff_client, payee):
    client = staff_client("commissions.view_payee", "commissions.change_payee")
    response = client.post(
        f"/admin/commissions/payee/{payee.pk}/change/",
        {
            "kind": "seller",
            "legal_name": payee.legal_name,
            "display_name": "Autozvuk",
            "country": "CZ",
            "email": payee.email,
            "vat_id": "CZ25596641",
            "commission_bps": "850",
            "status": "active",
            "dispute_loss_bearer": "platform",
            "dispute_fee_bearer": "payee",
        },
    )
    assert response.status_code == 302
    payee.refresh_from_db()
    assert (payee.display_name, payee.commission_bps, payee.vat_id) == ("Autozvuk", 850, "CZ25596641")
    assert (payee.dispute_loss_bearer, payee.dispute_fee_bearer) == ("platform", "payee")
    audit = AuditEntry.objects.get(action="admin.payee.change")
    assert audit.actor_id == client.user.pk
    assert audit.object_id == str(payee.pk)
    assert payee.history.count() == 2


def test_payee_commission_above_100_percent_is_refused_by_the_form(admin_client, payee):
    response = admin_client.post(
        f"/admin/commissions/payee/{payee.pk}/change/",
        {"kind": "seller", "legal_name": "X", "country": "CZ", "email": "x@example.com", "commission_bps": "10001"},
    )
    assert response.status_code == 200
    assert "errornote" in response.content.decode()
    payee.refresh_from_db()
    assert payee.commission_bps is None


def test_payee_list_filters_and_search(admin_client, payee, other_payee):
    response = admin_client.get("/admin/commissions/payee/", {"kind": "organizer"})
    assert list(response.context_data["cl"].result_list) == [other_payee]
    response = admin_client.get("/admin/commissions/payee/", {"q": "Autozvuk"})
    assert list(response.context_data["cl"].result_list) == [payee]


def test_creating_a_payment_link_with_a_line_sets_its_creator(staff_client, payee):
    client = staff_client(
        "payments.add_paymentlink",
        "payments.view_paymentlink",
        "payments.change_paymentlink",
        "payments.add_paymentlinkline",
        "payments.view_paymentlinkline",
        "payments.change_paymentlinkline",
    )
    response = client.post(
        "/admin/payments/paymentlink/add/",
        {
            "title": "Subwoofer",
            "slug": "subwoofer",
            "currency": "EUR",
            "is_active": "on",
            "allow_quantity": "on",
            "max_quantity": "5",
            **_inline_management("lines", 1),
            "lines-0-payee": str(payee.pk),
            "lines-0-description": "Subwoofer 12 in",
            "lines-0-kind": "goods",
            "lines-0-quantity": "1",
            "lines-0-unit_amount_minor": "19900",
            "lines-0-vat_category": "standard",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    link = PaymentLink.objects.get(slug="subwoofer")
    assert link.created_by_id == client.user.pk
    assert link.lines.get().unit_amount_minor == 19900
    assert AuditEntry.objects.filter(action="admin.paymentlink.create", object_id=str(link.pk)).exists()
    # The buyer-facing page is live.
    assert client.get("/pay/subwoofer/").status_code == 200

    page = client.get(f"/admin/payments/paymentlink/{link.pk}/change/").content.decode()
    assert "€199.00" in page
    # The currency is fixed once lines are priced in it.
    assert 'name="currency"' not in page


def test_payment_link_currency_must_be_enabled(admin_client):
    response = admin_client.post(
        "/admin/payments/paymentlink/add/",
        {"title": "T", "slug": "t", "currency": "KWD", "max_quantity": "5", **_inline_management("lines", 0)},
    )
    assert response.status_code == 200
    assert not PaymentLink.objects.exists()


def test_creating_an_api_key_shows_it_once_and_it_authenticates(admin_client):
    client_obj = ApiClientFactory(name="car-audio-shop")
    response = admin_client.post("/admin/core/apiclientkey/add/", {"client": str(client_obj.pk), "name": "production"})
    assert response.status_code == 302
    shown = [str(m) for m in get_messages(response.wsgi_request)]
    key = re.search(r"The API key for production is: (\S+)\.", " ".join(shown)).group(1)
    stored = ApiClientKey.objects.get(client=client_obj)
    assert stored.hashed_key != key
    assert ApiClientKey.objects.get_from_key(key) == stored
    assert AuditEntry.objects.filter(action="admin.apiclientkey.create").exists()
    # The page after the redirect shows the message once; later pages never show the key again.
    assert key in admin_client.get(response["Location"]).content.decode()
    page = admin_client.get(f"/admin/core/apiclientkey/{stored.pk}/change/").content.decode()
    assert key not in page
    assert 'name="client"' not in page  # a key never moves to another client


def test_payees_are_suspended_not_deleted(admin_client, payee):
    response = admin_client.get("/admin/commissions/payee/")
    assert 'value="delete_selected"' not in response.content.decode()
    assert Payee.objects.filter(pk=payee.pk).exists()
