"""`manage.py cancel_event <event_ref> --reason "..."`: force majeure — refund every paid line of the event in
full (commission returned, no fee), printing progress and a summary. Running it again refunds nothing more."""

from django.core.management.base import BaseCommand
from django.utils import timezone

from refunds.services import cancel_event


class Command(BaseCommand):
    help = "Cancel an event: refund every paid ticket of it in full, commission returned."

    def add_arguments(self, parser):
        parser.add_argument("event_ref")
        parser.add_argument("--reason", default="Event canceled by the organizer")

    def handle(self, *args, event_ref, reason, **options):
        def progress(done, total, order):
            self.stdout.write(f"[{done}/{total}] order {order.short_token}")

        summary = cancel_event(event_ref=event_ref, reason=reason, now=timezone.now(), progress=progress)
        for line in summary.lines():
            self.stdout.write(line)
        if summary.failures:
            self.stderr.write(self.style.WARNING(f"{len(summary.failures)} order(s) could not be refunded"))
