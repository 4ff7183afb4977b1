"""`manage.py load_demo_data`: every order and payment state, made through the real services and the
sandbox gateway (no HTTP), an exact ledger, working logins and an API key printed once."""

import re
from datetime import timedelta
from io import StringIO

import pytest
import responses
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Sum
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from commissions.models import Payee
from core.models import ApiClient, ApiClientKey
from ledger.models import Account, LedgerTransaction
from ledger.selectors import check_ledger, payee_balances
from payments import demo
from payments.models import (
    LineKind,
    Order,
    OrderStatus,
    Payment,
    PaymentLink,
    PaymentStatus,
    ReviewReason,
    WebhookEvent,
)
from payments.providers.sandbox.models import SandboxEvent
from refunds.models import Refund, RefundReason, RefundStatus

pytestmark = pytest.mark.django_db

API_KEY = re.compile(r"^\s+([A-Za-z0-9]{8}\.[A-Za-z0-9]{32})$", re.MULTILINE)


def _load(capture) -> str:
    """Run the command as `make run` does. On commit the services' queued eager tasks run (here when the
    capture block ends): they must find nothing left to do."""
    out = StringIO()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as http, capture(execute=True):
        call_command("load_demo_data", stdout=out)
        before = _snapshot()
    assert len(http.calls) == 0, "the sandbox gateway must not deliver over HTTP during the load"
    assert _snapshot() == before, "tasks queued during the load must find nothing left to do"
    return out.getvalue()


def _snapshot():
    return (
        LedgerTransaction.objects.count(),
        WebhookEvent.objects.count(),
        sorted(WebhookEvent.objects.values_list("status", flat=True)),
        sorted(Refund.objects.values_list("status", flat=True)),
        sorted(Payment.objects.values_list("status", flat=True)),
        sorted(Order.objects.values_list("status", flat=True)),
        SandboxEvent.objects.filter(delivered_at__isnull=True).count(),
    )


def _counts():
    return {
        model.__name__: model.objects.count()
        for model in (Payee, PaymentLink, Order, Payment, Refund, WebhookEvent, LedgerTransaction, ApiClient,
                      ApiClientKey, get_user_model())
    }  # fmt: skip


@pytest.fixture
def loaded(settings, django_capture_on_commit_callbacks):
    settings.DEBUG = True  # what config.settings.dev runs with
    return _load(django_capture_on_commit_callbacks)


def test_creates_payees_links_and_orders_in_every_state(loaded):
    payees = Payee.objects.all()
    assert payees.count() >= 3
    assert payees.filter(kind=Payee.Kind.ORGANIZER).exists()
    assert payees.filter(commission_bps__isnull=False).exists()
    assert all(p.portal_user and not p.portal_user.is_staff for p in payees)

    links = PaymentLink.objects.filter(is_active=True)
    assert links.count() >= 3
    assert {"EUR", "CZK", "JPY"} <= set(links.values_list("currency", flat=True))
    ticket = PaymentLink.objects.get(slug="jazz-night-tickets").lines.get()
    assert ticket.kind == LineKind.EVENT_TICKET
    assert ticket.vat_category == "reduced"
    assert ticket.event_country == "CZ"
    assert ticket.event_ref
    assert ticket.event_starts_at > timezone.now()
    assert len({line.payee_id for line in PaymentLink.objects.get(slug="amp-install-bundle").lines.all()}) == 2

    orders = Order.objects.all()
    assert orders.count() >= 30
    assert set(orders.values_list("status", flat=True)) == set(OrderStatus.values)
    assert {"EUR", "CZK", "JPY", "USD"} <= set(orders.values_list("currency", flat=True))
    now = timezone.now()
    assert orders.filter(created_at__lt=now - timedelta(days=30)).exists()
    assert not orders.filter(created_at__gt=now).exists()
    assert orders.filter(status=OrderStatus.OPEN, payments__isnull=True).exists()
    assert orders.filter(status=OrderStatus.OPEN, payments__status=PaymentStatus.PENDING).exists()

    statuses = set(Payment.objects.values_list("status", flat=True))
    assert {"succeeded", "failed", "canceled", "requires_action", "expired", "pending"} <= statuses
    declines = set(Payment.objects.filter(status=PaymentStatus.FAILED).values_list("failure_code", flat=True))
    assert len(declines) >= 3
    # Each paid order has exactly one settling payment; the history lies in the past.
    for order in orders.filter(status__in=[OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED, OrderStatus.REFUNDED]):
        assert order.payments.filter(settles_order=True).count() == 1
        assert order.paid_at < now
    assert WebhookEvent.objects.filter(received_at__lt=now - timedelta(days=30)).exists()


def test_money_went_through_the_gateway_inbox_and_ledger(loaded):
    assert not SandboxEvent.objects.filter(delivered_at__isnull=True).exists()
    assert set(WebhookEvent.objects.values_list("status", flat=True)) <= {"processed", "ignored"}
    assert WebhookEvent.objects.count() == SandboxEvent.objects.count()
    for payment in Payment.objects.exclude(status=PaymentStatus.CREATED):
        assert payment.provider_ref.startswith("sbx_")

    double = Payment.objects.get(review_reason=ReviewReason.DOUBLE_PAYMENT)
    assert double.needs_review
    assert double.status == PaymentStatus.SUCCEEDED
    assert not double.settles_order
    assert double.order.status == OrderStatus.PAID
    assert double.order.payments.filter(status=PaymentStatus.SUCCEEDED).count() == 2
    refund = Refund.objects.get(payment=double, is_overpayment=True)
    assert refund.status == RefundStatus.SUCCEEDED
    assert refund.reason == RefundReason.DUPLICATE_PAYMENT
    assert refund.amount_minor == double.captured_minor == double.refunded_minor

    for order in Order.objects.filter(status__in=[OrderStatus.PARTIALLY_REFUNDED, OrderStatus.REFUNDED]):
        refunded = order.refunds.filter(status=RefundStatus.SUCCEEDED, is_overpayment=False)
        assert refunded.aggregate(s=Sum("amount_minor"))["s"] == order.refunded_minor
        assert (order.refunded_minor == order.total_minor) == (order.status == OrderStatus.REFUNDED)
    assert not Refund.objects.exclude(status=RefundStatus.SUCCEEDED).exists()

    report = check_ledger()
    assert report.ok, report
    for currency in Account.objects.values_list("currency", flat=True).distinct():
        totals = Account.objects.filter(currency=currency).aggregate(d=Sum("debits_posted"), c=Sum("credits_posted"))
        assert totals["d"] == totals["c"], currency
    assert (
        LedgerTransaction.objects.filter(kind="capture").count() == Payment.objects.filter(settles_order=True).count()
    )
    assert LedgerTransaction.objects.filter(occurred_at__lt=timezone.now() - timedelta(days=30)).exists()
    assert "Ledger check passed" in loaded


def test_api_key_is_printed_once_and_a_second_run_creates_nothing(loaded, settings, django_capture_on_commit_callbacks):
    keys = API_KEY.findall(loaded)
    assert len(keys) == 1
    key = keys[0]
    assert loaded.count(key) >= 2  # the key line and the curl examples
    assert "curl -X POST" in loaded
    assert "Idempotency-Key" in loaded
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    response = api.get("/api/v1/payees")
    assert response.status_code == 200
    assert {p["legal_name"] for p in response.json()} >= {"Autozvuk Praha s.r.o.", "Prague Jazz Nights z.s."}
    for status, _ in OrderStatus.choices:
        assert f"{status.replace('_', ' ')} " in loaded.lower()
    for path in ("/pay/car-amplifier/", "/pay/jazz-night-tickets/", "/portal/", "/admin/", "/api/docs/"):
        assert path in loaded

    before = _counts()
    again = _load(django_capture_on_commit_callbacks)
    assert _counts() == before
    assert "already loaded" in again
    assert "make reset" in again
    assert not API_KEY.findall(again)
    assert key not in again


def test_admin_and_payee_portal_logins_work(loaded):
    admin = get_user_model().objects.get(username=demo.ADMIN_USERNAME)
    assert admin.is_superuser
    assert admin.is_staff
    assert len(demo.ADMIN_PASSWORD) >= 12
    client = Client()
    response = client.post(
        "/admin/login/?next=/admin/", {"username": demo.ADMIN_USERNAME, "password": demo.ADMIN_PASSWORD}
    )
    assert response.status_code == 302, response.content[:500]
    assert client.get("/admin/").status_code == 200

    payee = Payee.objects.get(legal_name="Autozvuk Praha s.r.o.")
    portal = Client()
    response = portal.post("/portal/login/", {"username": payee.portal_user.username, "password": demo.PORTAL_PASSWORD})
    assert response.status_code == 302, response.content[:500]
    page = portal.get("/portal/")
    assert page.status_code == 200
    assert payee.legal_name in page.content.decode()
    balances = page.context["balances"]
    assert balances == payee_balances(payee.pk)
    assert {b.currency for b in balances} >= {"EUR", "CZK"}
    assert page.context["lines"]
    # The demo's SEPA payout run paid the released EUR balance; the file is sent, the statement issued.
    payout = payee.payouts.get(currency="EUR")
    assert payout.sepa_file.status == "sent"
    payouts_page = portal.get("/portal/payouts/").content.decode()
    assert "Payout statement" in payouts_page
    statement = payee.statements.get(payout=payout)
    assert statement.payouts_minor == payout.amount_minor
    assert statement.closing_minor == next(b.total for b in balances if b.currency == "EUR")
    assert portal.get(f"/portal/statements/{statement.pk}/pdf/").content.startswith(b"%PDF")
    assert portal.get("/admin/").status_code == 302  # a payee is not staff


def test_refuses_to_run_with_debug_off_unless_forced(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG is off"):
        call_command("load_demo_data", stdout=StringIO())
    assert not Order.objects.exists()
    assert not get_user_model().objects.filter(username=demo.ADMIN_USERNAME).exists()
