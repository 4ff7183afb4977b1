from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from payments.models import WebhookEvent
from payments.providers.base import EVENT_BACKFILL, ProviderError
from payments.providers.registry import get_provider
from payments.webhooks.services import backfill_events


class Command(BaseCommand):
    help = (
        "Fetch a provider's events from its events API (Stripe keeps 30 days) and put those the webhook inbox "
        "lacks into it, to be processed like any delivery. Events already received are left alone, so running "
        "it again changes nothing. Use it after an outage longer than the provider's retries."
    )

    def add_arguments(self, parser):
        parser.add_argument("--provider", default="stripe")
        parser.add_argument("--days", type=int, default=7, help="how far back to look (1-30, default 7)")
        parser.add_argument(
            "--all",
            action="store_true",
            help="every event, not only those the provider failed to deliver (slower; use if unsure)",
        )

    def handle(self, *args, provider: str, days: int, all: bool, **options):
        if not 1 <= days <= 30:
            raise CommandError("--days must be between 1 and 30 (the provider keeps events for 30 days)")
        try:
            gateway = get_provider(provider)
        except ProviderError as exc:
            raise CommandError(str(exc)) from exc
        if EVENT_BACKFILL not in gateway.capabilities:
            raise CommandError(f"{provider} has no events API to fetch past events from")
        if not gateway.is_configured():
            raise CommandError(f"{provider} is not configured on this server")
        now = timezone.now()
        since = now - timedelta(days=days)
        what = "events" if all else "undelivered events"
        self.stdout.write(f"Asking {provider} for {what} since {since:%Y-%m-%d %H:%M} UTC ...")
        try:
            result = backfill_events(provider_name=provider, since=since, now=now, undelivered_only=not all)
        except ProviderError as exc:
            raise CommandError(f"{provider} did not answer ({exc}); nothing was changed, run it again later") from exc
        pending = WebhookEvent.objects.filter(
            provider=provider, status__in=[WebhookEvent.Status.RECEIVED, WebhookEvent.Status.PROCESSING]
        ).count()
        self.stdout.write(
            self.style.SUCCESS(
                f"{result.listed} listed, {result.stored} new in the inbox, "
                f"{result.listed - result.stored} already received. {pending} event(s) waiting to be processed."
            )
        )
