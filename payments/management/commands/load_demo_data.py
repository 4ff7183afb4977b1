import logging
import time
from contextlib import contextmanager

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from payments import demo
from payments.models import OrderStatus, PaymentStatus


class Command(BaseCommand):
    help = (
        "Load demo data once: payees with portal logins, payment links and about forty orders in every state, "
        "paid and refunded through the real services and the sandbox gateway; an admin login and an API key "
        "(printed once). Running it again changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--force",
            action="store_true",
            help="Run even with DEBUG off (the demo logins have published passwords: never on a real system).",
        )

    def handle(self, *args, force: bool = False, **options):
        if not settings.DEBUG and not force:
            raise CommandError(
                "DEBUG is off: refusing to create demo logins with published passwords. Use --force to do it anyway."
            )
        started = time.monotonic()
        if not demo.is_loaded():
            self.stdout.write(self.style.MIGRATE_HEADING("Loading demo data"))
        try:
            with _quiet_task_log():
                result = demo.load_demo_data(progress=self.stdout.write)
        except demo.DemoDataError as exc:
            raise CommandError(f"demo data not loaded (nothing was saved): {exc}") from exc

        if result.already_loaded:
            self.stdout.write(
                self.style.WARNING(
                    f'Demo data is already loaded (API client "{demo.API_CLIENT_NAME}" exists); nothing was created.'
                )
            )
            self.stdout.write("To start over: make reset   (or: rm db.sqlite3 && make run)")
        else:
            self.stdout.write(self.style.SUCCESS(f"Demo data loaded in {time.monotonic() - started:.1f} s."))
        self._summary(result)

    def _summary(self, result: demo.DemoResult) -> None:
        write, base = self.stdout.write, settings.PUBLIC_BASE_URL
        orders = result.order_counts
        write("")
        write(
            f"Orders ({sum(orders.values())}): "
            + ", ".join(f"{label.lower()} {orders.get(value, 0)}" for value, label in OrderStatus.choices)
        )
        payments = result.payment_counts
        write(
            f"Payments ({sum(payments.values())}): "
            + ", ".join(f"{value} {payments[value]}" for value in PaymentStatus.values if payments.get(value))
        )
        write(f"Refunds: {result.refunds}; webhook events in the inbox: {result.webhook_events}")
        ledger = result.ledger
        if ledger.ok:
            write(
                self.style.SUCCESS(
                    f"Ledger check passed: {ledger.transactions} transactions, {ledger.entries} entries, "
                    f"{ledger.accounts} accounts; balanced, totals match, nets to zero"
                )
            )
        else:
            write(self.style.ERROR("Ledger check FAILED: run manage.py ledger_check"))

        write("")
        write(self.style.MIGRATE_HEADING("Try it"))
        write(f"  Landing page   {base}/")
        write(f"  API docs       {base}/api/docs/")
        admin = result.admin
        write(f"  Admin          {base}/admin/    {admin.username} / {admin.password or '(password unchanged)'}")
        for index, login in enumerate(result.portal_logins):
            where = f"Payee portal   {base}/portal/" if index == 0 else " " * (15 + len(base) + 8)
            write(f"  {where}   {login.username} / {login.password}   ({login.label})")
        write("  Payment links")
        for title, url in result.link_urls:
            write(f"    {url:<45} {title}")
        if result.open_checkout_url:
            write(f"  An open order, ready to pay: {result.open_checkout_url}")

        write("")
        key = result.api_key
        if key:
            write(self.style.WARNING(f'API key of "{demo.API_CLIENT_NAME}" (shown only now; only its hash is stored):'))
            write(f"  {key}")
        else:
            write(
                f'API key of "{demo.API_CLIENT_NAME}": not shown again (it was printed when the demo data was '
                "created; only its hash is stored). Add another one in the admin."
            )
            key = "<API key>"
        write("  Examples:")
        write(f'    curl -H "Authorization: Api-Key {key}" {base}/api/v1/payees')
        if result.api_order_token:
            write(f'    curl -H "Authorization: Api-Key {key}" {base}/api/v1/orders/{result.api_order_token}')
        payee = result.example_payee_id or 1
        body = (
            '{"currency": "EUR", "buyer": {"email": "buyer@example.com", "country": "CZ"}, "lines": [{"payee": '
            f'{payee}, "description": "Amplifier AMP-4100", "quantity": 1, "unit_amount": 12900}}]}}'
        )
        write(
            f'    curl -X POST {base}/api/v1/orders -H "Authorization: Api-Key {key}" '
            f'-H "Idempotency-Key: demo-order-1" -H "Content-Type: application/json" -d \'{body}\''
        )
        write("    (send a new Idempotency-Key for each new order; the same key replays the first response)")


@contextmanager
def _quiet_task_log():
    """The eager tasks queued during the load run (and find nothing left to do) when it commits: keep their
    one-line-per-task INFO log out of the command's output."""
    logger = logging.getLogger("celery.app.trace")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)
