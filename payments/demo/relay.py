"""The parts of the demo that happen outside a request in real life, done in-process on the demo clock: the
buyer's clicks on the sandbox gateway's page, the gateway's signed deliveries to our webhook inbox, and the
eager tasks that would otherwise run after commit (inbox processing, refund execution, closing a gateway
session). See the package docstring."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import F, Max
from django.test import RequestFactory
from django.urls import reverse

from payments.demo.catalog import PROVIDER
from payments.demo.results import DemoDataError
from payments.models import Order, Payment, PaymentStatus, WebhookEvent
from payments.providers.registry import get_provider
from payments.providers.sandbox import client as sandbox_client
from payments.providers.sandbox import gateway
from payments.providers.sandbox.models import SandboxEvent, SandboxSession
from payments.providers.sandbox.signing import HEADER as SIGNATURE_HEADER
from payments.services.checkout import start_payment
from payments.webhooks.services import process_webhook_event, receive_webhook
from refunds.models import Refund, RefundStatus
from refunds.services import execute_refund


class Relay:
    def __init__(self):
        self.requests = RequestFactory()
        self.webhook_path = reverse("webhooks:receive", args=[PROVIDER])
        # Only what the demo creates is driven (a database may already hold other rows).
        self.event_floor = SandboxEvent.objects.aggregate(m=Max("pk"))["m"] or 0
        self.refund_floor = Refund.objects.aggregate(m=Max("pk"))["m"] or 0
        self.webhook_floor = WebhookEvent.objects.aggregate(m=Max("pk"))["m"] or 0
        self.provider = get_provider(PROVIDER)

    def double_click(self, order: Order, at: datetime) -> list[Payment]:
        """Two checkout clicks racing (two tabs): the second `start_payment` runs while the first is still
        waiting for the gateway. The first attempt is only `created` then (no checkout URL to hand out), so
        the second opens its own session. Both sessions can be paid; the second success is a double payment,
        refunded automatically and flagged for staff (DESIGN.md §5)."""
        provider = self.provider
        original = provider.create_checkout
        second: list[Payment] = []

        def first_click_waiting_for_gateway(**kwargs):
            del provider.create_checkout  # once only: the second click gets the real method
            second.append(start_payment(order=order, provider_name=PROVIDER, now=at + timedelta(seconds=2)))
            return original(**kwargs)

        provider.create_checkout = first_click_waiting_for_gateway
        try:
            first = start_payment(order=order, provider_name=PROVIDER, now=at)
        finally:
            provider.__dict__.pop("create_checkout", None)
        if len(second) != 1 or second[0].pk == first.pk:
            raise DemoDataError("the two checkout clicks did not open two payments")
        return [first, second[0]]

    def buyer(self, payment: Payment, action: str, at: datetime, reason: str = "") -> None:
        """What the buyer clicks on the sandbox gateway's hosted page."""
        token = str(gateway.get_session(payment.provider_ref).token)
        if action == "pay":
            gateway.buyer_pays(token, now=at)
        elif action == "decline":
            gateway.buyer_declined(token, reason=reason, now=at)
        elif action == "3ds":
            gateway.buyer_starts_3ds(token, now=at)
        elif action == "abandon":
            gateway.buyer_abandons(token, now=at)
        else:
            raise ValueError(action)
        self.deliver_gateway_events(at + timedelta(seconds=2))
        payment.refresh_from_db()

    def close_at_gateway(self, payments: list[Payment], at: datetime) -> None:
        """What `expire_provider_checkout` does for a payment we closed: expire its session at the gateway
        (through the sandbox client, on the demo clock)."""
        for payment in payments:
            payment.refresh_from_db()
            if payment.status not in (PaymentStatus.CANCELED, PaymentStatus.EXPIRED) or not payment.provider_ref:
                continue
            session = gateway.get_session(payment.provider_ref)
            if session.status in gateway.OPEN_STATES:
                sandbox_client.expire_checkout_session(payment.provider_ref, now=at)
        self.deliver_gateway_events(at + timedelta(seconds=1))

    def deliver_gateway_events(self, at: datetime) -> None:
        """The gateway's delivery, in-process: each new event, signed as the gateway signs it, goes through
        signature verification into the inbox; the inbox row is then processed."""
        pending = SandboxEvent.objects.filter(pk__gt=self.event_floor, delivered_at__isnull=True).order_by("pk")
        for event in pending:
            moment = max(at, event.created_at)
            body, headers = gateway.signed_delivery(event)
            request = self.requests.post(
                self.webhook_path,
                data=body,
                content_type=headers["Content-Type"],
                headers={SIGNATURE_HEADER: headers[SIGNATURE_HEADER]},
            )
            receive_webhook(provider_name=PROVIDER, request=request, now=moment)
            SandboxEvent.objects.filter(pk=event.pk).update(
                delivered_at=moment, attempts=F("attempts") + 1, last_error=""
            )
            row = WebhookEvent.objects.get(provider=PROVIDER, event_id=event.event_id)
            status = process_webhook_event(webhook_event_id=row.pk, now=moment)
            if status not in (WebhookEvent.Status.PROCESSED, WebhookEvent.Status.IGNORED):
                row.refresh_from_db()
                raise DemoDataError(f"webhook event {row.event_id} ended {status}: {row.last_error}")
            # A double payment or a payment for a canceled order queues its refund: run it now.
            self.execute_refunds(moment + timedelta(seconds=3))

    def execute_refunds(self, at: datetime) -> None:
        approved = Refund.objects.filter(pk__gt=self.refund_floor, status=RefundStatus.APPROVED).order_by("pk")
        for refund_id in approved.values_list("pk", flat=True):
            refund = execute_refund(refund_id=refund_id, now=at)
            if refund.status != RefundStatus.SUCCEEDED:
                raise DemoDataError(f"refund {refund.pk} ended {refund.status}: {refund.failure_message}")

    def assert_nothing_left_over(self) -> None:
        """Before commit: every on_commit task queued during the load must find nothing left to do."""
        undelivered = SandboxEvent.objects.filter(pk__gt=self.event_floor, delivered_at__isnull=True).count()
        unprocessed = WebhookEvent.objects.filter(
            pk__gt=self.webhook_floor, status__in=[WebhookEvent.Status.RECEIVED, WebhookEvent.Status.FAILED]
        ).count()
        unexecuted = Refund.objects.filter(pk__gt=self.refund_floor, status=RefundStatus.APPROVED).count()
        in_flight_closed = (
            Payment.objects.filter(status__in=[PaymentStatus.CANCELED, PaymentStatus.EXPIRED])
            .exclude(provider_ref="")
            .values_list("provider_ref", flat=True)
        )
        open_sessions = SandboxSession.objects.filter(
            status__in=gateway.OPEN_STATES, token__in=[ref.removeprefix("sbx_") for ref in in_flight_closed]
        ).count()
        if undelivered or unprocessed or unexecuted or open_sessions:
            raise DemoDataError(
                f"left over: {undelivered} undelivered gateway events, {unprocessed} unprocessed inbox rows, "
                f"{unexecuted} unexecuted refunds, {open_sessions} gateway sessions still open"
            )
