"""Stopping a recurrence: by the marketplace (API), by staff (admin), or by the buyer at GoPay. Once stopped, a
charge is refused with 409 `recurrence_stopped` and nothing more is sent to GoPay."""

import pytest
from django.utils import timezone

from core.models import AuditEntry
from payments.models import OrderStatus
from recurring.models import ChargeStatus, RecurrenceStatus, RecurringCharge
from recurring.services import RecurrenceStopped, charge_recurrence, stop_recurrence
from tests.payments.gopay.helpers import assert_conserved, notify_and_process
from tests.recurring.helpers import CREATE_RECURRENCE, VOID_RECURRENCE, key, set_up_recurrence, settle

pytestmark = pytest.mark.django_db


@pytest.fixture
def recurrence(fake_gopay, client, capture, payee, api_client_obj):
    return set_up_recurrence(fake_gopay, client, capture, payee, api_client=api_client_obj)


def post(api, url, body=None):
    return api.post(url, body or {}, format="json", HTTP_IDEMPOTENCY_KEY=key())


def test_stop_through_the_api_then_a_charge_is_refused_without_calling_gopay(
    fake_gopay, client, capture, api, recurrence
):
    charged = post(api, f"/api/v1/recurrences/{recurrence.pk}/charges")
    assert charged.status_code == 201
    settle(fake_gopay, client, capture, RecurringCharge.objects.get(), "PAID")

    stopped = post(api, f"/api/v1/recurrences/{recurrence.pk}/stop", {"reason": "Membership canceled"})
    assert stopped.status_code == 200, stopped.json()
    assert stopped.json()["status"] == "stopped"
    assert stopped.json()["stopped_reason"] == "Membership canceled"
    (void,) = fake_gopay.posts(VOID_RECURRENCE)
    assert void.path == f"/payments/payment/{recurrence.provider_ref}/void-recurrence"
    assert fake_gopay.payment(int(recurrence.provider_ref))["recurrence"]["recurrence_state"] == "STOPPED"
    recurrence.refresh_from_db()
    assert recurrence.status == RecurrenceStatus.STOPPED
    assert recurrence.stop_sent_at is not None

    again = post(api, f"/api/v1/recurrences/{recurrence.pk}/stop")  # idempotent: nothing more sent
    assert again.status_code == 200
    assert len(fake_gopay.posts(VOID_RECURRENCE)) == 1

    calls = len(fake_gopay.requests)
    refused = post(api, f"/api/v1/recurrences/{recurrence.pk}/charges", {"amount": 29900})
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "recurrence_stopped"
    assert "stopped" in refused.json()["error"]["message"]
    assert len(fake_gopay.requests) == calls
    assert len(fake_gopay.posts(CREATE_RECURRENCE)) == 1
    assert RecurringCharge.objects.count() == 1
    with pytest.raises(RecurrenceStopped):
        charge_recurrence(recurrence=recurrence, now=timezone.now(), actor_label="test")
    assert len(fake_gopay.requests) == calls
    assert_conserved(fake_gopay)


def test_stopped_by_the_buyer_at_gopay_the_refusal_stops_it_here(fake_gopay, client, capture, api, recurrence):
    fake_gopay.stop_recurrence(int(recurrence.provider_ref))  # no notification reaches us

    refused = post(api, f"/api/v1/recurrences/{recurrence.pk}/charges")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "recurrence_stopped"
    assert len(fake_gopay.posts(CREATE_RECURRENCE)) == 1  # GoPay refused it: PAYMENT_RECURRENCE_STOPPED
    recurrence.refresh_from_db()
    assert recurrence.status == RecurrenceStatus.STOPPED
    assert recurrence.stop_sent_at is not None
    charge = RecurringCharge.objects.get()
    assert charge.status == ChargeStatus.ABANDONED
    assert charge.payment.status == "failed"
    assert charge.payment.failure_code == "PAYMENT_RECURRENCE_STOPPED"
    assert charge.order.status == OrderStatus.CANCELED

    again = post(api, f"/api/v1/recurrences/{recurrence.pk}/charges")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "recurrence_stopped"
    assert len(fake_gopay.posts(CREATE_RECURRENCE)) == 1
    assert RecurringCharge.objects.count() == 1
    assert not fake_gopay.posts(VOID_RECURRENCE)  # GoPay stopped it itself: nothing to tell it
    assert_conserved(fake_gopay)


def test_the_parents_notification_after_a_stop_at_gopay_stops_it_here(fake_gopay, client, capture, api, recurrence):
    fake_gopay.stop_recurrence(int(recurrence.provider_ref))
    notify_and_process(client, capture, int(recurrence.provider_ref))
    recurrence.refresh_from_db()
    assert recurrence.status == RecurrenceStatus.STOPPED
    refused = post(api, f"/api/v1/recurrences/{recurrence.pk}/charges")
    assert refused.status_code == 409
    assert not fake_gopay.posts(CREATE_RECURRENCE)

    fake_gopay.objects[int(recurrence.provider_ref)]["recurrence"]["recurrence_state"] = "STARTED"  # a stale read
    notify_and_process(client, capture, int(recurrence.provider_ref))
    recurrence.refresh_from_db()
    assert recurrence.status == RecurrenceStatus.STOPPED  # never active again


def test_stop_when_gopay_is_down_stops_here_at_once_and_tells_gopay_later(fake_gopay, capture, recurrence):
    fake_gopay.fail(VOID_RECURRENCE, "500")
    stopped = stop_recurrence(recurrence=recurrence, actor_label="test", reason="", now=timezone.now())
    assert stopped.status == RecurrenceStatus.STOPPED
    assert stopped.stop_sent_at is None
    assert fake_gopay.payment(int(recurrence.provider_ref))["recurrence"]["recurrence_state"] == "STARTED"

    from tests.recurring.helpers import run_beat

    assert run_beat(capture)["stops_sent"] == 1
    assert fake_gopay.payment(int(recurrence.provider_ref))["recurrence"]["recurrence_state"] == "STOPPED"
    assert run_beat(capture)["stops_sent"] == 0
    assert len(fake_gopay.posts(VOID_RECURRENCE)) == 2
    assert AuditEntry.objects.filter(action="recurrence.stop").count() == 1
