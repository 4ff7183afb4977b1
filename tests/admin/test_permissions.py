"""What nobody may do from the admin, superusers included: write the ledger or the audit trail, delete
money-bearing rows, or edit orders and payments (directly or through a history "revert")."""

import pytest
from django.utils import timezone

from core.models import AuditEntry
from ledger.models import Account, Entry, LedgerTransaction
from payments.models import Order, OrderStatus, WebhookEvent
from refunds.services import request_refund
from tests.factories import ApiClientFactory, PaymentLinkLineFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def paid_order(make_paid_order):
    return make_paid_order()


def test_ledger_cannot_be_written_from_the_admin_even_by_a_superuser(admin_client, paid_order):
    account = Account.objects.get(code="provider:sandbox:clearing", currency="EUR")
    transaction = LedgerTransaction.objects.get(kind="capture")
    before = (account.debits_posted, account.credits_posted)
    for base, pk in [("/admin/ledger/account/", account.pk), ("/admin/ledger/ledgertransaction/", transaction.pk)]:
        assert admin_client.get(f"{base}add/").status_code == 403
        assert admin_client.post(f"{base}add/", {"code": "x", "kind": "asset", "currency": "EUR"}).status_code == 403
        assert admin_client.post(f"{base}{pk}/change/", {"memo": "edited", "name": "edited"}).status_code == 403
        assert admin_client.get(f"{base}{pk}/delete/").status_code == 403
        assert admin_client.post(f"{base}{pk}/delete/", {"post": "yes"}).status_code == 403
        # Viewing stays possible, read-only.
        page = admin_client.get(f"{base}{pk}/change/")
        assert page.status_code == 200
        assert 'name="_save"' not in page.content.decode()
    account.refresh_from_db()
    assert (account.debits_posted, account.credits_posted) == before
    assert Entry.objects.filter(transaction=transaction).count() == 4


def test_audit_trail_cannot_be_written_from_the_admin(admin_client, paid_order):
    entry = AuditEntry.objects.first()
    assert admin_client.get("/admin/core/auditentry/add/").status_code == 403
    assert admin_client.post(f"/admin/core/auditentry/{entry.pk}/change/", {"message": "x"}).status_code == 403
    assert admin_client.post(f"/admin/core/auditentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AuditEntry.objects.filter(pk=entry.pk).exists()


def test_money_bearing_rows_cannot_be_deleted(admin_client, paid_order):
    refund = request_refund(order=paid_order, amount_minor=500, reason="requested_by_customer", now=timezone.now())
    rows = {
        "/admin/payments/order/": paid_order,
        "/admin/payments/payment/": paid_order.payments.get(),
        "/admin/payments/webhookevent/": WebhookEvent.objects.get(),
        "/admin/refunds/refund/": refund,
        "/admin/commissions/payee/": paid_order.lines.get().payee,
        "/admin/payments/paymentlink/": PaymentLinkLineFactory().link,
        "/admin/core/apiclient/": ApiClientFactory(),
    }
    for base, obj in rows.items():
        assert admin_client.get(f"{base}{obj.pk}/delete/").status_code == 403, base
        assert admin_client.post(f"{base}{obj.pk}/delete/", {"post": "yes"}).status_code == 403, base
        assert type(obj)._default_manager.filter(pk=obj.pk).exists(), base


def test_orders_and_payments_are_view_only(admin_client, paid_order):
    response = admin_client.post(
        f"/admin/payments/order/{paid_order.pk}/change/", {"buyer_email": "mallory@example.com", "status": "open"}
    )
    assert response.status_code == 403
    assert admin_client.get("/admin/payments/order/add/").status_code == 403
    assert admin_client.get("/admin/payments/payment/add/").status_code == 403
    assert admin_client.get("/admin/payments/webhookevent/add/").status_code == 403
    paid_order.refresh_from_db()
    assert (paid_order.status, paid_order.buyer_email) == (OrderStatus.PAID, "buyer@example.com")


def test_history_revert_cannot_write_a_view_only_order(admin_client, paid_order):
    """django-simple-history only hides its Revert button: the form view itself saves a POST."""
    open_version = paid_order.history.filter(status=OrderStatus.OPEN).earliest("history_date")
    url = f"/admin/payments/order/{paid_order.pk}/history/{open_version.history_id}/"
    assert admin_client.get(url).status_code == 200

    response = admin_client.post(url, {"_change_history": "1", "status": "open", "buyer_email": "x@example.com"})

    assert response.status_code == 403
    paid_order.refresh_from_db()
    assert paid_order.status == OrderStatus.PAID


def test_history_revert_needs_the_change_permission_on_editable_models(staff_client, payee):
    payee.legal_name = "Renamed s.r.o."
    payee.save()
    first = payee.history.earliest("history_date")
    url = f"/admin/commissions/payee/{payee.pk}/history/{first.history_id}/"
    form = {
        "kind": "seller",
        "legal_name": "Autozvuk Praha s.r.o.",
        "country": "CZ",
        "email": payee.email,
        "status": "active",
        "dispute_loss_bearer": "payee",
        "dispute_fee_bearer": "platform",
    }

    viewer = staff_client("commissions.view_payee")
    assert viewer.get(url).status_code == 200
    assert viewer.post(url, form).status_code == 403
    payee.refresh_from_db()
    assert payee.legal_name == "Renamed s.r.o."

    editor = staff_client("commissions.view_payee", "commissions.change_payee")
    assert editor.post(url, form).status_code == 302
    payee.refresh_from_db()
    assert payee.legal_name == "Autozvuk Praha s.r.o."


def test_staff_without_view_permission_sees_nothing(staff_client, paid_order):
    client = staff_client()
    for url in [
        "/admin/payments/order/",
        f"/admin/payments/order/{paid_order.pk}/change/",
        "/admin/ledger/account/",
        "/admin/core/auditentry/",
    ]:
        assert client.get(url).status_code == 403, url


def test_webhook_events_are_view_only(admin_client):
    event = WebhookEvent.objects.create(
        provider="sandbox", event_id="evt_1", event_type="payment.succeeded", payload={}, received_at=timezone.now()
    )
    response = admin_client.post(f"/admin/payments/webhookevent/{event.pk}/change/", {"status": "processed"})
    assert response.status_code == 403
    event.refresh_from_db()
    assert event.status == WebhookEvent.Status.RECEIVED
    assert Order.objects.count() == 0
