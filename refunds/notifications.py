"""E-mails to buyers about the refunds they asked for themselves (from the order's return page)."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse

from ledger.money import format_money
from refunds.models import Refund, RefundStatus

BUYER_LABEL = "buyer"  # requested_by_label of a refund the buyer asked for


def queue_refund_decision_email(refund: Refund) -> None:
    """After staff approve or reject a buyer's own request: tell the buyer, once the decision is committed."""
    if refund.requested_by_label != BUYER_LABEL:
        return  # staff and API refunds: the marketplace speaks to its buyer
    from django.db import transaction

    from refunds.tasks import send_refund_decision_email

    transaction.on_commit(lambda: send_refund_decision_email.delay(refund_id=refund.pk))


def send_refund_decision_email(*, refund_id: int, now: datetime) -> bool:
    refund = Refund.objects.select_related("order").get(pk=refund_id)
    if refund.requested_by_label != BUYER_LABEL or refund.status == RefundStatus.REQUESTED:
        return False
    order = refund.order
    approved = refund.status != RefundStatus.CANCELED
    context = {
        "order": order,
        "refund": refund,
        "approved": approved,
        "amount": format_money(refund.amount_minor, refund.currency),
        "to_store_credit": getattr(refund, "method", "") == "store_credit",
        "platform_name": settings.TOLLGATE_PLATFORM_NAME,
        "order_url": settings.PUBLIC_BASE_URL + reverse("checkout:return", args=[order.token]),
    }
    send_mail(
        subject=f"Your refund request for order {order.short_token} was {'approved' if approved else 'declined'}",
        message=render_to_string("emails/refund_decision.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[order.buyer_email],
    )
    return True
