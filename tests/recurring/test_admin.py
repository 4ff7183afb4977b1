"""Recurrences and charges in the back office: lists, filters, search, read-only money, and the actions (stop a
recurrence; retry or abandon a charge), each only for staff holding its permission."""

import pytest
from django.contrib.messages import get_messages
from django.utils import timezone

from core.models import AuditEntry
from recurring.models import ChargeStatus, RecurrenceStatus, RecurringCharge
from recurring.services import charge_recurrence
from tests.factories import staff_client as staff
from tests.recurring.helpers import CREATE_RECURRENCE, VOID_RECURRENCE, set_up_recurrence

pytestmark = pytest.mark.django_db
RECURRENCES = "/admin/recurring/recurrence/"
CHARGES = "/admin/recurring/recurringcharge/"


def post_action(client, url, action, *pks):
    return client.post(url, {"action": action, "_selected_action": [str(pk) for pk in pks], "index": "0"})


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def recurrence(fake_gopay, client, capture, payee):
    return set_up_recurrence(fake_gopay, client, capture, payee)


def test_lists_filter_search_and_pages_render(admin_client, fake_gopay, capture, recurrence):
    with capture(execute=True):
        made = charge_recurrence(recurrence=recurrence, amount_minor=45000, now=timezone.now(), actor_label="t")
    page = admin_client.get(RECURRENCES, {"status__exact": "active", "q": "jan.novak"}).content.decode()
    assert recurrence.provider_ref in page
    assert recurrence.provider_ref not in admin_client.get(RECURRENCES, {"status__exact": "stopped"}).content.decode()
    assert recurrence.provider_ref in admin_client.get(RECURRENCES, {"q": recurrence.provider_ref}).content.decode()
    detail = admin_client.get(f"{RECURRENCES}{recurrence.pk}/change/").content.decode()
    assert "450.00" in detail  # the charge inline, money formatted

    charges = admin_client.get(CHARGES, {"status__exact": "processing", "q": "jan.novak"}).content.decode()
    assert f"{CHARGES}{made.pk}/change/" in charges
    assert "450.00" in charges
    change = admin_client.get(f"{CHARGES}{made.pk}/change/")
    assert change.status_code == 200
    assert 'name="amount_minor"' not in change.content.decode()  # read only, no form field
    assert admin_client.post(f"{CHARGES}{made.pk}/change/", {"amount_minor": 1}).status_code == 403
    assert admin_client.get(f"{CHARGES}add/").status_code == 403


def test_stop_action_needs_its_permission(fake_gopay, recurrence):
    viewer = staff("recurring.view_recurrence")
    assert 'value="stop_recurrences"' not in viewer.get(RECURRENCES).content.decode()
    post_action(viewer, RECURRENCES, "stop_recurrences", recurrence.pk)
    recurrence.refresh_from_db()
    assert recurrence.status == RecurrenceStatus.ACTIVE
    assert not fake_gopay.posts(VOID_RECURRENCE)

    stopper = staff("recurring.view_recurrence", "recurring.stop_recurrence")
    assert 'value="stop_recurrences"' in stopper.get(RECURRENCES).content.decode()
    response = post_action(stopper, RECURRENCES, "stop_recurrences", recurrence.pk)
    assert messages_of(response) == [f"Recurrence #{recurrence.pk}: stopped."]
    recurrence.refresh_from_db()
    assert recurrence.status == RecurrenceStatus.STOPPED
    assert len(fake_gopay.posts(VOID_RECURRENCE)) == 1
    audit = AuditEntry.objects.get(action="recurrence.stop")
    assert audit.actor_id == stopper.user.pk


def test_release_and_abandon_actions_need_their_permission(fake_gopay, capture, recurrence):
    fake_gopay.fail(CREATE_RECURRENCE, "500")
    with capture(execute=True):
        made = charge_recurrence(recurrence=recurrence, now=timezone.now(), actor_label="t")
    assert made.needs_review

    viewer = staff("recurring.view_recurringcharge")
    post_action(viewer, CHARGES, "release_in_doubt", made.pk)
    post_action(viewer, CHARGES, "abandon_charges", made.pk)
    made.refresh_from_db()
    assert made.needs_review
    assert made.status == ChargeStatus.PROCESSING

    resolver = staff("recurring.view_recurringcharge", "recurring.resolve_recurringcharge")
    response = post_action(resolver, CHARGES, "release_in_doubt", made.pk)
    made.refresh_from_db()
    assert made.status == ChargeStatus.FAILED
    assert not made.needs_review
    assert messages_of(response)[-1].startswith(f"Charge #{made.pk}: released; next attempt at")
    again = post_action(resolver, CHARGES, "release_in_doubt", made.pk)  # nothing to release any more
    assert "unchanged" in messages_of(again)[-1]

    post_action(resolver, CHARGES, "abandon_charges", made.pk)
    made.refresh_from_db()
    assert made.status == ChargeStatus.ABANDONED
    entry = AuditEntry.objects.get(action="recurrence.charge.abandoned")
    assert entry.actor_id == resolver.user.pk
    assert entry.actor_label == resolver.user.get_username()
    assert RecurringCharge.objects.count() == 1
