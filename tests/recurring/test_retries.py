"""Failed charges are retried on RECURRING_RETRY_SCHEDULE (1 h, 1 day, 3 days) by the hourly task, each attempt a
new payment (a new GoPay order number), and only once the previous attempt is known not to take money; after
the last attempt the charge is abandoned and staff are told. An attempt whose answer was lost is in doubt:
never retried until staff have checked GoPay. Never two children charged for one charge."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from core.models import AuditEntry
from payments.models import OrderStatus, Payment, PaymentStatus
from recurring.models import ChargeStatus, RecurringCharge
from recurring.services import abandon_charge, charge_recurrence, release_in_doubt_charge
from tests.payments.gopay.fake import notify
from tests.payments.gopay.helpers import assert_conserved
from tests.payments.helpers import captures_of
from tests.recurring.helpers import CREATE_RECURRENCE, child_of, children, run_beat, set_up_recurrence, settle

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 9, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture
def recurrence(clock, fake_gopay, client, capture, payee, api_client_obj):
    return set_up_recurrence(fake_gopay, client, capture, payee, api_client=api_client_obj)


def charge(recurrence, capture) -> RecurringCharge:
    with capture(execute=True):
        return charge_recurrence(recurrence=recurrence, now=timezone.now(), actor_label="test")


def staff_mails():
    return [message for message in mail.outbox if message.to == ["finance@tollgate.example"]]


def in_flight_children(fake, recurrence) -> int:
    return sum(child["state"] == "CREATED" for child in children(fake, recurrence))


def test_canceled_children_are_retried_on_the_schedule_then_abandoned_and_reported(
    clock, fake_gopay, client, capture, recurrence, staff_mail, api
):
    fake_gopay.recurrence_charge_outcome = "CANCELED"
    made = charge(recurrence, capture)
    assert made.status == ChargeStatus.PROCESSING
    assert made.attempts == 1

    settle(fake_gopay, client, capture, made, "CANCELED")
    assert made.status == ChargeStatus.FAILED
    assert made.next_attempt_at == T0 + timedelta(hours=1)
    assert made.payment.status == PaymentStatus.CANCELED

    delays = [timedelta(hours=1), timedelta(days=1), timedelta(days=3)]
    for attempt, delay in enumerate(delays, start=2):
        clock.shift(delay - timedelta(minutes=1))
        assert run_beat(capture)["sent"] == 0  # not due yet
        assert len(children(fake_gopay, recurrence)) == attempt - 1
        clock.shift(timedelta(minutes=1))
        assert run_beat(capture)["sent"] == 1
        made.refresh_from_db()
        assert made.attempts == attempt
        assert made.status == ChargeStatus.PROCESSING
        assert in_flight_children(fake_gopay, recurrence) == 1  # never two at once
        assert run_beat(capture)["sent"] == 0  # the next run does not send another while this one is pending
        settle(fake_gopay, client, capture, made, "CANCELED")

    assert made.status == ChargeStatus.ABANDONED
    assert made.abandoned_at is not None
    assert made.next_attempt_at is None
    assert "4 attempts" in made.last_error
    assert made.order.__class__.objects.get(pk=made.order_id).status == OrderStatus.CANCELED

    at_gopay = children(fake_gopay, recurrence)
    assert [child["state"] for child in at_gopay] == ["CANCELED"] * 4
    attempts = Payment.objects.filter(order=made.order).order_by("pk")
    assert [child["order_number"] for child in at_gopay] == [str(p.pk) for p in attempts]  # a new one each time
    assert {p.status for p in attempts} == {PaymentStatus.CANCELED}

    (report,) = staff_mails()
    assert f"#{made.pk} abandoned" in report.subject
    assert AuditEntry.objects.filter(action="recurrence.charge.abandoned", object_id=str(made.pk)).count() == 1
    assert AuditEntry.objects.filter(action="recurrence.charge.failed").count() == 3

    clock.shift(timedelta(days=10))
    assert run_beat(capture)["sent"] == 0
    assert len(children(fake_gopay, recurrence)) == 4
    shown = api.get(f"/api/v1/recurrences/{recurrence.pk}").json()["charges"][0]
    assert shown["status"] == "abandoned"
    assert shown["attempts"] == 4
    assert shown["last_error"]
    assert_conserved(fake_gopay)


def test_a_retry_that_succeeds_is_captured_once(clock, fake_gopay, client, capture, recurrence):
    made = charge(recurrence, capture)
    settle(fake_gopay, client, capture, made, "CANCELED")
    clock.shift(timedelta(hours=1))
    run_beat(capture)
    settle(fake_gopay, client, capture, made, "PAID", times=3)
    assert made.status == ChargeStatus.SUCCEEDED
    assert made.attempts == 2
    assert captures_of(made.payment) == 1
    assert [child["state"] for child in children(fake_gopay, recurrence)] == ["CANCELED", "PAID"]
    clock.shift(timedelta(days=5))
    assert run_beat(capture)["sent"] == 0
    assert_conserved(fake_gopay)


def test_a_pending_child_is_waited_for_and_read_back_when_its_notification_is_lost(
    clock, fake_gopay, client, capture, recurrence
):
    made = charge(recurrence, capture)
    for _ in range(3):  # days pass; GoPay has not charged the child yet
        clock.shift(timedelta(days=1))
        counts = run_beat(capture)
        assert counts["sent"] == 0
        assert counts["looked_up"] == 1
    assert len(children(fake_gopay, recurrence)) == 1

    fake_gopay.settle_recurrence(child_of(made), "PAID")  # its notification never arrives
    clock.shift(timedelta(hours=1))
    run_beat(capture)
    made.refresh_from_db()
    assert made.status == ChargeStatus.SUCCEEDED
    assert captures_of(made.payment) == 1
    assert_conserved(fake_gopay)


def test_gopay_unreachable_before_sending_is_retried_automatically(clock, fake_gopay, client, capture, recurrence):
    from django.core.cache import cache

    cache.clear()  # no token cached: the call needs a new one, and GoPay's token endpoint is down
    fake_gopay.fail(r"/oauth2/token", "500")
    made = charge(recurrence, capture)
    assert made.status == ChargeStatus.FAILED
    assert not made.needs_review
    assert made.payment.status == PaymentStatus.FAILED
    assert made.payment.failure_code == "token_unavailable"
    assert not fake_gopay.posts(CREATE_RECURRENCE)

    clock.shift(timedelta(hours=1))
    run_beat(capture)
    settle(fake_gopay, client, capture, made, "PAID")
    assert made.status == ChargeStatus.SUCCEEDED
    assert len(children(fake_gopay, recurrence)) == 1
    assert_conserved(fake_gopay)


def test_a_refused_charge_is_retried_automatically(clock, fake_gopay, client, capture, recurrence):
    parent = fake_gopay.objects[int(recurrence.provider_ref)]
    parent["recurrence"]["recurrence_state"] = "REQUESTED"  # GoPay refuses: PAYMENT_WRONG_STATE
    made = charge(recurrence, capture)
    assert made.status == ChargeStatus.FAILED
    assert made.last_error.startswith("PAYMENT_WRONG_STATE")
    assert not children(fake_gopay, recurrence)

    parent["recurrence"]["recurrence_state"] = "STARTED"
    clock.shift(timedelta(hours=1))
    run_beat(capture)
    settle(fake_gopay, client, capture, made, "PAID")
    assert made.status == ChargeStatus.SUCCEEDED
    assert len(children(fake_gopay, recurrence)) == 1


@pytest.mark.parametrize("fault", ["500", "status0"])
def test_a_lost_create_recurrence_answer_is_in_doubt_until_staff_release_it(
    clock, fake_gopay, client, capture, recurrence, staff_mail, fault
):
    fake_gopay.fail(CREATE_RECURRENCE, fault)
    made = charge(recurrence, capture)
    assert made.status == ChargeStatus.PROCESSING
    assert made.needs_review
    assert made.payment.status == PaymentStatus.CREATED
    assert made.payment.failure_code == "outcome_unknown"
    assert str(made.payment_id) in made.last_error
    (alert,) = staff_mails()
    assert "check whether GoPay charged it" in alert.subject
    assert str(made.payment_id) in alert.body

    for _ in range(5):  # whatever the schedule says: nothing is sent while it may have been charged
        clock.shift(timedelta(days=1))
        assert run_beat(capture)["sent"] == 0
    assert len(fake_gopay.posts(CREATE_RECURRENCE)) == 1
    assert len(staff_mails()) == 1

    # Staff look for order number <payment id> in GoPay's portal, find nothing, and release the charge.
    released = release_in_doubt_charge(charge=made, now=timezone.now())
    assert released.status == ChargeStatus.FAILED
    assert not released.needs_review
    assert released.next_attempt_at == timezone.now() + timedelta(hours=1)
    assert Payment.objects.get(pk=made.payment_id).status == PaymentStatus.FAILED
    clock.shift(timedelta(hours=1))
    assert run_beat(capture)["sent"] == 1
    settle(fake_gopay, client, capture, released, "PAID")
    assert released.status == ChargeStatus.SUCCEEDED
    assert released.attempts == 2
    assert [child["state"] for child in children(fake_gopay, recurrence)] == ["PAID"]
    assert_conserved(fake_gopay)


def test_an_answer_lost_after_gopay_created_the_child_never_leads_to_a_second_child(
    clock, fake_gopay, client, capture, recurrence, staff_mail
):
    fake_gopay.fail(CREATE_RECURRENCE, "lost")  # GoPay created the child; its answer never came back
    made = charge(recurrence, capture)
    assert made.needs_review
    assert made.status == ChargeStatus.PROCESSING
    (orphan,) = children(fake_gopay, recurrence)
    assert orphan["order_number"] == str(made.payment_id)  # what staff look for in GoPay's portal

    assert notify(client, orphan["id"]).status_code == 400  # its notification names no payment of ours
    for _ in range(7):
        clock.shift(timedelta(days=1))
        run_beat(capture)
    assert len(children(fake_gopay, recurrence)) == 1
    assert len(fake_gopay.posts(CREATE_RECURRENCE)) == 1

    abandoned = abandon_charge(charge=made, reason="Found at GoPay; settled by hand", now=timezone.now())
    assert abandoned.status == ChargeStatus.ABANDONED
    assert abandoned.order.__class__.objects.get(pk=abandoned.order_id).status == OrderStatus.CANCELED
    clock.shift(timedelta(days=7))
    run_beat(capture)
    assert len(children(fake_gopay, recurrence)) == 1


def test_an_attempt_that_never_got_an_answer_recorded_becomes_in_doubt(
    clock, fake_gopay, client, capture, recurrence, staff_mail
):
    from recurring.services.charges import claim_attempt, create_recurring_charge

    made = create_recurring_charge(recurrence=recurrence, now=timezone.now(), actor_label="test")
    claim_attempt(charge=made, now=timezone.now())  # the worker died after claiming, maybe mid-call
    clock.shift(timedelta(minutes=5))
    assert run_beat(capture)["in_doubt"] == 0
    clock.shift(timedelta(minutes=6))
    assert run_beat(capture)["in_doubt"] == 1
    made.refresh_from_db()
    assert made.needs_review
    assert len(staff_mails()) == 1
    assert run_beat(capture)["in_doubt"] == 0
    assert len(staff_mails()) == 1
    assert not fake_gopay.posts(CREATE_RECURRENCE)


def test_a_charge_created_but_never_sent_is_sent_by_the_hourly_task(clock, fake_gopay, client, capture, recurrence):
    from recurring.services import create_recurring_charge

    made = create_recurring_charge(recurrence=recurrence, now=timezone.now(), actor_label="test")
    assert made.status == ChargeStatus.SCHEDULED  # e.g. the process died before sending
    clock.shift(timedelta(minutes=11))
    assert run_beat(capture)["sent"] == 1
    settle(fake_gopay, client, capture, made, "PAID")
    assert made.status == ChargeStatus.SUCCEEDED


def test_a_stop_abandons_the_charges_waiting_for_a_retry(clock, fake_gopay, client, capture, recurrence):
    from recurring.services import stop_recurrence

    made = charge(recurrence, capture)
    settle(fake_gopay, client, capture, made, "CANCELED")
    assert made.status == ChargeStatus.FAILED
    stop_recurrence(recurrence=recurrence, actor_label="test", reason="", now=timezone.now())
    made.refresh_from_db()
    assert made.status == ChargeStatus.ABANDONED
    clock.shift(timedelta(days=5))
    assert run_beat(capture)["sent"] == 0
    assert len(children(fake_gopay, recurrence)) == 1
