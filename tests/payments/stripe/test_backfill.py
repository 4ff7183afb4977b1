"""Our endpoint is down for longer than Stripe retries (RELIABILITY §6 row 8): the hourly backfill asks
Stripe's Events API for what was never delivered and puts it through the inbox, so nothing is missing and
nothing is applied twice, however the late deliveries and the backfill interleave."""

from datetime import timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.utils import timezone

from ledger.models import LedgerTransaction
from payments.models import WebhookEvent
from payments.tasks import backfill_webhook_events
from payments.webhooks.services import backfill_window_start
from tests.payments.stripe.helpers import assert_conserved, deliver_all, drain_webhooks
from tests.payments.stripe.test_story import EXPECTED, STORIES, snapshot

pytestmark = pytest.mark.django_db

STORY = "dashboard_refund_then_dispute_won_no_return"  # every effect comes from events: none may be lost


def _outage_story(fake, client, payee, capture, *, delivered_before: int):
    """The story's events at T0, of which only the first `delivered_before` reach us; then 4 days pass."""
    payment, events = STORIES[STORY](fake, client, payee, capture)
    deliver_all(client, events[:delivered_before], capture)
    fake.delivered(events[:delivered_before])
    return payment, events


@pytest.mark.parametrize("delivered_before", [0, 2])
def test_an_outage_longer_than_stripes_retries_is_backfilled_with_nothing_missing_or_doubled(
    client, payee, fake_stripe, django_capture_on_commit_callbacks, delivered_before
):
    capture = django_capture_on_commit_callbacks
    payment, events = _outage_story(fake_stripe, client, payee, capture, delivered_before=delivered_before)

    with time_machine.travel(timezone.now() + timedelta(days=4)):
        with capture(execute=True):
            stored = backfill_webhook_events()
        assert stored == len(events) - delivered_before
        drain_webhooks(capture)
        assert snapshot(payment) == EXPECTED[STORY]
        ledger_count = LedgerTransaction.objects.count()

        # The next run, and Stripe's own late retries of every event, change nothing.
        with capture(execute=True):
            assert backfill_webhook_events() == 0
        assert deliver_all(client, events, capture) == [200] * len(events)
        drain_webhooks(capture)

    assert WebhookEvent.objects.count() == len(events)
    assert LedgerTransaction.objects.count() == ledger_count
    assert snapshot(payment) == EXPECTED[STORY]
    assert_conserved(fake_stripe)


def test_the_backfill_asks_only_for_undelivered_events_since_just_before_the_last_one_received(
    client, payee, fake_stripe, django_capture_on_commit_callbacks
):
    now = timezone.now()
    assert backfill_window_start(provider_name="stripe", now=now) == now - timedelta(days=30)  # never heard
    _outage_story(fake_stripe, client, payee, django_capture_on_commit_callbacks, delivered_before=1)
    last = WebhookEvent.objects.get().received_at
    later = now + timedelta(days=4)
    assert backfill_window_start(provider_name="stripe", now=later) == last - timedelta(hours=1)
    assert backfill_window_start(provider_name="stripe", now=now + timedelta(hours=2)) == now + timedelta(
        hours=2
    ) - timedelta(days=3)

    with time_machine.travel(later), django_capture_on_commit_callbacks(execute=True):
        backfill_webhook_events()
    [listing] = [r for r in fake_stripe.requests if r.path == "/v1/events"]
    assert fake_stripe.spec_errors == []
    assert listing.status == 200


def test_listing_is_paged_through_oldest_first(client, payee, fake_stripe, django_capture_on_commit_callbacks):
    capture = django_capture_on_commit_callbacks
    payments = [STORIES[STORY](fake_stripe, client, payee, capture)[0] for _ in range(13)]  # > 100 events
    assert len(fake_stripe.events) > 100

    with capture(execute=True):
        assert backfill_webhook_events() == len(fake_stripe.events)
    drain_webhooks(capture)

    assert len([r for r in fake_stripe.requests if r.path == "/v1/events"]) == 2
    stored = list(WebhookEvent.objects.order_by("pk").values_list("event_id", flat=True))
    assert stored == [event["id"] for event in fake_stripe.events]
    for payment in payments:
        assert snapshot(payment)["payment"] == EXPECTED[STORY]["payment"]


def test_stripe_down_during_the_backfill_leaves_everything_for_the_next_run(
    client, payee, fake_stripe, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    _, events = _outage_story(fake_stripe, client, payee, capture, delivered_before=0)
    fake_stripe.fail(r"/v1/events", "500", times=100)
    with capture(execute=True):
        assert backfill_webhook_events() == 0
    assert not WebhookEvent.objects.exists()

    fake_stripe.faults.clear()
    with capture(execute=True):
        assert backfill_webhook_events() == len(events)


def test_the_command_reports_what_it_found_and_refuses_bad_input(
    client, payee, fake_stripe, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    _, events = _outage_story(fake_stripe, client, payee, capture, delivered_before=3)
    out = StringIO()
    with capture(execute=True):
        call_command("backfill_webhook_events", "--days", "2", stdout=out)
    assert f"{len(events) - 3} listed, {len(events) - 3} new in the inbox, 0 already received" in out.getvalue()

    out = StringIO()
    call_command("backfill_webhook_events", "--all", stdout=out)
    assert f"{len(events)} listed, 0 new in the inbox, {len(events)} already received" in out.getvalue()

    with pytest.raises(CommandError, match="between 1 and 30"):
        call_command("backfill_webhook_events", "--days", "31")
    with pytest.raises(CommandError, match="no events API"):
        call_command("backfill_webhook_events", "--provider", "sandbox")
    fake_stripe.fail(r"/v1/events", "500", times=100)
    with pytest.raises(CommandError, match="did not answer"):
        call_command("backfill_webhook_events")
