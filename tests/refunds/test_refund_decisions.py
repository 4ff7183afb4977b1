"""A buyer who asked for a refund outside the policy hears back by e-mail when staff decide; the refunds
list filters by payee."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from refunds.models import Refund, RefundStatus
from refunds.services.approvals import approve_refund, reject_refund
from tests.factories import PayeeFactory, StaffFactory
from tests.refunds.policy_helpers import make_policy, paid_order
from tests.refunds.test_refund_surfaces import staff_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def buyer_request(payee, client):
    """The buyer asks from the return page a day before the event: outside the policy, waiting for staff."""
    make_policy()
    order = paid_order(payee, event_in=timedelta(days=1))
    client.post(f"/checkout/{order.token}/refund/", {"lines": [order.lines.get().pk], "message": "Ill"})
    refund = Refund.objects.get()
    assert refund.status == RefundStatus.REQUESTED
    mail.outbox.clear()
    return refund


def _checker():
    user = StaffFactory()
    from django.contrib.auth.models import Permission

    user.user_permissions.add(Permission.objects.get(codename="approve_refund"))
    return user


def test_the_buyer_is_told_when_staff_approve(buyer_request, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        approve_refund(refund_id=buyer_request.pk, actor=_checker(), now=timezone.now())
    [sent] = mail.outbox
    assert sent.to == [buyer_request.order.buyer_email]
    assert "approved" in sent.subject
    assert "goes back to the way you paid" in sent.body
    assert f"/checkout/{buyer_request.order.token}/return/" in sent.body


def test_the_buyer_is_told_when_staff_decline_with_the_reason(buyer_request, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        reject_refund(refund_id=buyer_request.pk, actor=_checker(), reason="The event is tomorrow.", now=timezone.now())
    [sent] = mail.outbox
    assert "declined" in sent.subject
    assert "The reason given: The event is tomorrow." in sent.body
    assert "Nothing has been charged" in sent.body


def test_staff_refunds_send_the_buyer_no_decision_mail(payee, settings, django_capture_on_commit_callbacks):
    settings.TOLLGATE_REFUND_APPROVAL_THRESHOLD = {"default": 0}
    order = paid_order(payee)
    maker = staff_client("payments.view_order", "refunds.add_refund")
    maker.post(f"/admin/payments/order/{order.pk}/refund/", {"reason": "other", "method": "original", "amount": 100})
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        approve_refund(refund_id=Refund.objects.get().pk, actor=_checker(), now=timezone.now())
    assert mail.outbox == []


def test_the_refunds_list_filters_by_payee(payee, settings):
    other = PayeeFactory(legal_name="Other Seller s.r.o.", country="CZ")
    mine, theirs = paid_order(payee), paid_order(other)
    for order in (mine, theirs):
        staff_client("payments.view_order", "refunds.add_refund").post(
            f"/admin/payments/order/{order.pk}/refund/", {"reason": "other", "method": "original", "amount": 100}
        )
    viewer = staff_client("refunds.view_refund")
    page = viewer.get("/admin/refunds/refund/", {"lines__order_line__payee__id__exact": payee.pk}).content.decode()
    assert f"/admin/payments/order/{mine.pk}/change/" in page
    assert f"/admin/payments/order/{theirs.pk}/change/" not in page
    assert "By payee" in viewer.get("/admin/refunds/refund/").content.decode()
