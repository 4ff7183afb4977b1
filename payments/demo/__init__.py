"""Demo data for `make run`: payees with portal logins, payment links, and about forty orders in every
state, with their payments, refunds and ledger postings, spread over the last two months.

Money is only ever moved by the real services, exactly as in production: `create_order` ->
`start_payment` (a real sandbox checkout session) -> the buyer's choice on the gateway (`buyer_pays`,
`buyer_declined`, `buyer_starts_3ds`, `buyer_abandons`) -> the gateway's signed event -> our webhook
inbox (`receive_webhook`: signature check, `WebhookEvent` row) -> `process_webhook_event` -> fulfilment
and ledger; refunds through `request_refund` / `execute_refund`; cancellations and expiries through
`cancel_order` / `expire_order`.

How the asynchronous steps run here. The whole load is one database transaction (all or nothing), so
nothing the services queue with `transaction.on_commit` (gateway delivery, inbox processing, refund
execution, closing the gateway session) runs until the end. The loader does those steps itself, in
order and on the demo clock (timestamps in the past), through the same functions the tasks call:

- each new gateway event is signed (`gateway.signed_delivery`) and posted, as a request built with
  `RequestFactory`, to `receive_webhook` (the webhook view's service), then marked delivered at the
  gateway; the stored inbox row is processed with `process_webhook_event`;
- approved refunds (including the automatic refund of a double payment) are executed with `execute_refund`;
- a payment closed on our side (order canceled or expired) has its gateway session expired through the
  sandbox client, as `expire_provider_checkout` does.

No HTTP request is made: when the transaction commits, the queued eager tasks find every event
delivered, every inbox row processed and every refund done, and do nothing (each task is idempotent).
The loader checks that nothing is left over before it commits.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from commissions.models import Payee
from core.models import ApiClient
from ledger.selectors import check_ledger
from payments.demo.catalog import ADMIN_PASSWORD, ADMIN_USERNAME, API_CLIENT_NAME, LINKS, PAYEES, PORTAL_PASSWORD, SEED
from payments.demo.loader import Loader
from payments.demo.results import DemoDataError, DemoResult, Login
from payments.models import Order, OrderStatus, Payment, PaymentLink, WebhookEvent
from refunds.models import Refund

__all__ = [
    "ADMIN_PASSWORD",
    "ADMIN_USERNAME",
    "API_CLIENT_NAME",
    "PORTAL_PASSWORD",
    "DemoDataError",
    "DemoResult",
    "Login",
    "is_loaded",
    "load_demo_data",
]


def is_loaded() -> bool:
    return ApiClient.objects.filter(name=API_CLIENT_NAME).exists()


def load_demo_data(
    *, now: datetime | None = None, seed: int = SEED, progress: Callable[[str], None] | None = None
) -> DemoResult:
    """Create the demo data once. Returns what was created (or, if it is already there, what there is)."""
    say = progress or (lambda message: None)
    if is_loaded():
        return _summary(DemoResult(already_loaded=True))
    loader = Loader(now=(now or timezone.now()).replace(second=0, microsecond=0), seed=seed, say=say)
    # The buyers are made up: the payment confirmations queued for them (sent when the transaction
    # commits) go nowhere instead of filling the console. Invoices and credit notes are issued on commit;
    # their PDFs are rendered when first downloaded (keeps loading quick).
    with (
        override_settings(
            EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend", TOLLGATE_RENDER_DOCUMENTS=False
        ),
        transaction.atomic(),
    ):
        result = loader.run()
        say("Checking the ledger")
        report = check_ledger()
        if not report.ok:
            raise DemoDataError(f"the ledger check failed: {report}")
        result.ledger = report
    say("Commission invoices for the past months")
    _issue_commission_invoices(since=loader.now - timedelta(days=75), now=loader.now)
    return _summary(result)


def _issue_commission_invoices(*, since: datetime, now: datetime) -> None:
    from invoicing.services.commission import issue_monthly_commission_invoices

    year, month = since.year, since.month
    while (year, month) < (now.year, now.month):
        issue_monthly_commission_invoices(year=year, month=month, now=now)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def _summary(result: DemoResult) -> DemoResult:
    base = settings.PUBLIC_BASE_URL
    result.order_counts = dict(Counter(Order.objects.values_list("status", flat=True)))
    result.payment_counts = dict(Counter(Payment.objects.values_list("status", flat=True)))
    result.refunds = Refund.objects.count()
    result.webhook_events = WebhookEvent.objects.count()
    if result.ledger is None:
        result.ledger = check_ledger()
    links = PaymentLink.objects.filter(is_active=True, slug__in=[link.slug for link in LINKS]).order_by("pk")
    result.link_urls = [(link.title, base + reverse("checkout:payment_link", args=[link.slug])) for link in links]
    if result.admin is None:
        admin = get_user_model().objects.filter(username=ADMIN_USERNAME).first()
        known = admin is not None and admin.check_password(ADMIN_PASSWORD)
        result.admin = Login(ADMIN_USERNAME, ADMIN_PASSWORD if known else None, "admin")
    if not result.portal_logins:
        payees = Payee.objects.filter(portal_user__username__in=[p.username for p in PAYEES]).select_related(
            "portal_user"
        )
        result.portal_logins = [Login(p.portal_user.username, PORTAL_PASSWORD, p.name) for p in payees.order_by("pk")]
    client = ApiClient.objects.filter(name=API_CLIENT_NAME).first()
    open_order = (
        Order.objects.filter(
            api_client=client, status=OrderStatus.OPEN, payments__isnull=True, expires_at__gt=timezone.now()
        )
        .order_by("-created_at")
        .first()
    )
    if open_order is not None:
        result.open_checkout_url = base + reverse("checkout:page", args=[open_order.token])
    api_order = Order.objects.filter(api_client=client, status=OrderStatus.PAID).order_by("-created_at").first()
    result.api_order_token = str(api_order.token) if api_order else ""
    payee = Payee.objects.filter(legal_name=PAYEES[0].legal_name).first()
    result.example_payee_id = payee.pk if payee else None
    return result
