"""The safety net: documents whose on-commit task never ran (broker down, worker killed) are issued by the
beat task a few minutes later, once, and e-mailed."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.core import mail
from django.utils import timezone

from invoicing.models import DocumentKind, Invoice
from invoicing.services.issuing import issue_missing_documents
from invoicing.tasks import issue_missing_documents as beat_task
from refunds.services import request_refund
from tests.factories import PayeeFactory
from tests.invoicing.helpers import line, pay, run_on_commit

pytestmark = pytest.mark.django_db


def test_lost_tasks_are_caught_up_once(documents_rendered):
    seller, organizer = PayeeFactory(), PayeeFactory()
    with (
        mock.patch("invoicing.tasks.issue_order_documents.delay") as lost_invoice_task,
        mock.patch("invoicing.tasks.issue_refund_documents.delay") as lost_credit_task,
    ):
        order = pay(lines=[line(seller, 5000), line(organizer, 7000)])
        run_on_commit(
            request_refund, order=order, amount_minor=3000, reason="requested_by_customer", now=timezone.now()
        )
    assert lost_invoice_task.called
    assert lost_credit_task.called
    assert not Invoice.objects.exists()
    # Within the grace period the tasks may still be on their way: nothing yet.
    assert issue_missing_documents(now=timezone.now()) == []
    later = timezone.now() + timedelta(minutes=11)
    with mock.patch("django.utils.timezone.now", return_value=later):
        assert beat_task.delay().get() == 2 + 2  # two invoices, a credit note per payee the refund touched
    assert Invoice.objects.filter(kind=DocumentKind.INVOICE).count() == 2
    assert Invoice.objects.filter(kind=DocumentKind.CREDIT_NOTE).count() == 2
    assert len(mail.outbox) >= 4
    sent = len(mail.outbox)
    assert issue_missing_documents(now=later) == []
    assert len(mail.outbox) == sent


def test_orders_outside_the_window_are_left_alone():
    with mock.patch("invoicing.tasks.issue_order_documents.delay"):
        pay(lines=[line(PayeeFactory(), 5000)])
    assert issue_missing_documents(now=timezone.now() + timedelta(days=8)) == []
