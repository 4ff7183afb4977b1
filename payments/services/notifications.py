"""E-mails to buyers."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string

from payments.models import Order
from payments.selectors import settling_payment


def send_payment_confirmation(*, order_id: int, now: datetime) -> bool:
    """E-mail the buyer that the order is paid. Claimed with a conditional UPDATE first, so a task run twice
    sends it once (at most once: a crash after the claim and before sending loses the mail, never doubles it)."""
    claimed = Order.objects.filter(pk=order_id, confirmation_sent_at__isnull=True).update(confirmation_sent_at=now)
    if not claimed:
        return False
    order = Order.objects.prefetch_related("lines__payee").get(pk=order_id)
    from refunds.store_credit import spent_credit_minor

    payment = settling_payment(order)
    credit_part = spent_credit_minor(order)  # a split payment: store credit for part, the payment for the rest
    context = {
        "order": order,
        "lines": list(order.lines.all()),
        "payment": payment,
        "store_credit_minor": credit_part,
        "partial_capture": bool(payment and payment.captured_minor + credit_part < order.total_minor),
        "platform_name": settings.TOLLGATE_PLATFORM_NAME,
        "base_url": settings.PUBLIC_BASE_URL,
    }
    send_mail(
        subject=f"Payment received — order {order.short_token}",
        message=render_to_string("emails/payment_confirmation.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[order.buyer_email],
    )
    return True
