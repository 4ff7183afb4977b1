"""The admin "Refund…" page (policy quote on GET, refund on POST), approve/reject actions, the force-majeure
page and command, and the buyer's self-service request on the return page."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client

from core.models import AuditEntry
from ledger.selectors import check_ledger
from payments.models import OrderStatus
from refunds.models import Refund, RefundStatus
from tests.factories import staff_client
from tests.refunds.policy_helpers import make_policy, paid_order

pytestmark = pytest.mark.django_db


def test_admin_refund_page_shows_the_quote_and_refunds(payee, django_capture_on_commit_callbacks):
    make_policy()
    order = paid_order(payee, event_in=timedelta(days=10))
    client = staff_client("payments.view_order", "refunds.add_refund")
    change = client.get(f"/admin/payments/order/{order.pk}/change/")
    assert f"/admin/payments/order/{order.pk}/refund/" in change.content.decode()
    page = client.get(f"/admin/payments/order/{order.pk}/refund/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "policy-quote" in html
    assert "€10.00" in html  # the 10 % fee
    assert "€90.00" in html  # back to the buyer
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/admin/payments/order/{order.pk}/refund/", {"reason": "requested_by_customer", "method": "original"}
        )
    assert response.status_code == 302
    refund = Refund.objects.get()
    assert (refund.amount_minor, refund.fee_minor, refund.status, refund.requested_by) == (
        9000,
        1000,
        RefundStatus.SUCCEEDED,
        client.user,
    )
    assert check_ledger().ok


def test_admin_refund_page_outside_policy_needs_an_override(payee):
    make_policy()
    order = paid_order(payee, event_in=timedelta(days=1))
    client = staff_client("payments.view_order", "refunds.add_refund")
    url = f"/admin/payments/order/{order.pk}/refund/"
    refused = client.post(url, {"reason": "other", "method": "original"})
    assert refused.status_code == 200
    assert "does not allow" in refused.content.decode()
    assert client.post(url, {"reason": "other", "method": "original", "override_reason": "Goodwill"}).status_code == 302
    assert Refund.objects.get().override_reason == "Goodwill"
    assert AuditEntry.objects.filter(action="refund.override", actor=client.user).exists()


def test_admin_refund_page_needs_the_permission(payee):
    order = paid_order(payee)
    client = staff_client("payments.view_order")
    assert client.get(f"/admin/payments/order/{order.pk}/refund/").status_code == 403


def test_admin_approve_action(payee, settings, django_capture_on_commit_callbacks):
    settings.TOLLGATE_REFUND_APPROVAL_THRESHOLD = {"default": 0}
    order = paid_order(payee)
    maker = staff_client("payments.view_order", "refunds.add_refund", "refunds.view_refund", "refunds.approve_refund")
    maker.post(f"/admin/payments/order/{order.pk}/refund/", {"reason": "other", "method": "original", "amount": 100})
    refund = Refund.objects.get()
    assert refund.status == RefundStatus.REQUESTED
    changelist = "/admin/refunds/refund/"
    maker.post(changelist, {"action": "approve_refunds", "_selected_action": [refund.pk]})
    refund.refresh_from_db()
    assert refund.status == RefundStatus.REQUESTED  # not their own
    checker = staff_client("refunds.view_refund", "refunds.approve_refund")
    with django_capture_on_commit_callbacks(execute=True):
        checker.post(changelist, {"action": "approve_refunds", "_selected_action": [refund.pk]})
    refund.refresh_from_db()
    assert refund.status == RefundStatus.SUCCEEDED


def test_admin_reject_action_asks_for_a_reason(payee, settings):
    settings.TOLLGATE_REFUND_APPROVAL_THRESHOLD = {"default": 0}
    order = paid_order(payee)
    maker = staff_client("payments.view_order", "refunds.add_refund")
    maker.post(f"/admin/payments/order/{order.pk}/refund/", {"reason": "other", "method": "original", "amount": 100})
    refund = Refund.objects.get()
    checker = staff_client("refunds.view_refund", "refunds.approve_refund")
    form = checker.post("/admin/refunds/refund/", {"action": "reject_refunds", "_selected_action": [refund.pk]})
    assert "rejection_reason" in form.content.decode()
    checker.post(
        "/admin/refunds/refund/",
        {"action": "reject_refunds", "_selected_action": [refund.pk], "apply": "1", "rejection_reason": "No"},
    )
    refund.refresh_from_db()
    assert (refund.status, refund.rejection_reason) == (RefundStatus.CANCELED, "No")


def test_cancel_event_page_and_command(payee, django_capture_on_commit_callbacks):
    orders = [paid_order(payee, event_ref="gig") for _ in range(2)]
    client = staff_client("refunds.view_refund", "refunds.add_refund", "refunds.approve_refund")
    assert client.get("/admin/refunds/refund/cancel-event/").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        page = client.post(
            "/admin/refunds/refund/cancel-event/", {"event_ref": "gig", "reason": "Flood", "confirm": "on"}
        )
    assert "2 refund(s)" in page.content.decode()
    out = StringIO()
    call_command("cancel_event", "gig", stdout=out)
    assert "0 refund(s)" in out.getvalue()
    for order in orders:
        order.refresh_from_db()
        assert order.status == OrderStatus.REFUNDED
    assert check_ledger().ok


def test_self_service_inside_the_policy_is_refunded_at_once(payee, client, django_capture_on_commit_callbacks):
    make_policy()
    order = paid_order(payee, event_in=timedelta(days=30))
    page = client.get(f"/checkout/{order.token}/return/")
    html = page.content.decode()
    assert "Ask for a refund" in html
    assert "csrfmiddlewaretoken" in html
    line = order.lines.get()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/checkout/{order.token}/refund/", {"lines": [line.pk], "message": "Can't come"})
    assert response.status_code == 303
    followed = client.get(response["Location"]).content.decode()
    assert "Your refund of €100.00 is on its way" in followed
    refund = Refund.objects.get()
    assert (refund.status, refund.note, refund.requested_by_label) == (RefundStatus.SUCCEEDED, "Can't come", "buyer")


def test_self_service_outside_the_policy_waits_for_staff(payee, client):
    make_policy()
    order = paid_order(payee, event_in=timedelta(days=1))
    line = order.lines.get()
    response = client.post(f"/checkout/{order.token}/refund/", {"lines": [line.pk]}, follow=True)
    assert "the seller&#x27;s team will look at it" in response.content.decode()
    assert Refund.objects.get().status == RefundStatus.REQUESTED
    assert "Ask for a refund" not in client.get(f"/checkout/{order.token}/return/").content.decode()


def test_no_policy_no_self_service_form(payee, client):
    order = paid_order(payee)
    assert "Ask for a refund" not in client.get(f"/checkout/{order.token}/return/").content.decode()
    response = client.post(f"/checkout/{order.token}/refund/", {"lines": [order.lines.get().pk]}, follow=True)
    assert "Choose at least one item" in response.content.decode()
    assert not Refund.objects.exists()


@pytest.mark.parametrize("garbage", ["9" * 5000, "-1", "1e3", "١", "", "0x1", "1; DROP TABLE refunds_refund"])
def test_self_service_with_garbage_line_ids_is_a_plain_message_never_a_500(payee, client, garbage):
    make_policy()
    order = paid_order(payee, event_in=timedelta(days=30))
    response = client.post(f"/checkout/{order.token}/refund/", {"lines": [garbage]}, follow=True)
    assert response.status_code == 200
    assert "Choose at least one item" in response.content.decode()
    assert not Refund.objects.exists()


def test_self_service_form_is_csrf_protected(payee):
    make_policy()
    order = paid_order(payee)
    strict = Client(enforce_csrf_checks=True)
    assert strict.post(f"/checkout/{order.token}/refund/", {"lines": [order.lines.get().pk]}).status_code == 403


def test_refund_and_policy_admin_pages_render(payee, django_capture_on_commit_callbacks):
    from django.utils import timezone

    from refunds.services import request_policy_refund

    policy = make_policy()
    order = paid_order(payee)
    with django_capture_on_commit_callbacks(execute=True):
        refund = request_policy_refund(order=order, amount_minor=1000, now=timezone.now())
    client = staff_client("refunds.view_refund", "refunds.view_refundpolicy", "refunds.add_refundpolicy")
    page = client.get(f"/admin/refunds/refund/{refund.pk}/change/")
    assert page.status_code == 200
    assert "Policy" in page.content.decode()
    assert client.get("/admin/refunds/refund/").status_code == 200
    assert client.get(f"/admin/refunds/refundpolicy/{policy.pk}/change/").status_code == 200
    assert client.get("/admin/refunds/refundpolicy/add/").status_code == 200
