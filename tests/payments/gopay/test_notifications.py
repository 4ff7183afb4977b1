"""GoPay's notification, `GET /webhooks/gopay/?id=<GoPay payment id>`: an unsigned hint (RELIABILITY §2, rows
9–10). Garbage never reaches GoPay, the database or a 5xx; a hint about a payment of ours makes us fetch the truth
with a `payment-all` token and apply that, whatever the hint. Also the buyer's return page (`?id=` again), and what
each GoPay state becomes for us, including refunds made in GoPay's portal."""

import pytest
from django.utils import timezone

from ledger.models import LedgerTransaction
from payments.models import Order, OrderStatus, Payment, PaymentStatus, WebhookEvent, WebhookRejection
from refunds.models import Refund, RefundReason, RefundStatus
from tests.payments.gopay.fake import notify
from tests.payments.gopay.helpers import (
    assert_conserved,
    gopay_id,
    gopay_order,
    notify_and_process,
    start_gopay_payment,
)

pytestmark = pytest.mark.django_db
STATUS = r"/payments/payment/\d+"


def snapshot():
    """Every payment and order row as it is (to show that nothing changed)."""
    return (
        list(Payment.objects.order_by("pk").values()),
        list(Order.objects.order_by("pk").values()),
        list(Refund.objects.order_by("pk").values()),
        LedgerTransaction.objects.count(),
    )


@pytest.fixture
def capture(django_capture_on_commit_callbacks):
    return django_capture_on_commit_callbacks


@pytest.fixture
def pending(payee, fake_gopay):
    """An order with a GoPay payment the buyer has not paid yet (GoPay says CREATED)."""
    order = gopay_order(payee)
    payment = start_gopay_payment(order)
    fake_gopay.requests.clear()
    return payment


# --- garbage ------------------------------------------------------------------------------------------------


# (query string, why it is refused): the id parser refuses everything but a GoPay id before any look-up.
GARBAGE_QUERIES = [
    ("", "malformed_id"),  # no query at all
    ("?id=", "malformed_id"),
    ("?id=3299999999", "unknown_payment"),  # digits, but no payment of ours
    ("?id=abc", "malformed_id"),
    ("?id=-3299531053", "malformed_id"),
    ("?id=03299531053", "malformed_id"),
    ("?id=+3299531053", "malformed_id"),
    ("?id=%203299531053", "malformed_id"),
    ("?id=3299531053%0a", "malformed_id"),
    ("?id=3299531053.0", "malformed_id"),
    ("?id=3_299_531_053", "malformed_id"),
    ("?id=0x1", "malformed_id"),
    ("?id=" + "1" * 10240, "malformed_id"),
    ("?id=" + "x" * 10240, "malformed_id"),
    ("?id=1%20OR%201%3D1", "malformed_id"),
    ("?id=1;DROP%20TABLE%20payments_payment", "malformed_id"),
    ("?id=1%27%3B%20DROP%20TABLE%20payments_payment%3B--", "malformed_id"),
    ("?id=123%0d%0aX:%20y", "malformed_id"),
    ("?id=%0d%0a", "malformed_id"),
    ("?id=%00", "malformed_id"),
    ("?id=%D9%A3%D9%A2%D9%A9%D9%A9%D9%A5%D9%A3%D9%A1%D9%A0%D9%A5%D9%A3", "malformed_id"),  # ٣٢٩٩٥٣١٠٥٣
    ("?id=%EF%BC%93%EF%BC%92%EF%BC%99%EF%BC%99%EF%BC%95%EF%BC%93", "malformed_id"),  # full-width ３２９９５３
    ("?id=%F0%9F%92%B8", "malformed_id"),
    ("?id=%ff%fe", "malformed_id"),  # not UTF-8
    ("?id=1&id=2", "malformed_id"),
    ("?id=3299999999&id=abc", "malformed_id"),
    ("?ID=3299531053", "malformed_payload"),
    ("?id[]=3299531053", "malformed_payload"),
]


@pytest.mark.parametrize(("query", "reason"), GARBAGE_QUERIES)
def test_garbage_ids_are_refused_without_a_call_a_row_or_a_change(client, pending, fake_gopay, capture, query, reason):
    before = snapshot()
    with capture(execute=True):
        response = client.get("/webhooks/gopay/" + query)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "webhook_rejected"
    assert fake_gopay.requests == []
    assert WebhookEvent.objects.count() == 0
    assert snapshot() == before
    # counted (never stored), with the reason
    assert list(WebhookRejection.objects.values_list("provider", "reason", "count")) == [("gopay", reason, 1)]


@pytest.mark.parametrize(
    "extra", [{"state": "PAID"}, {"amount": "1"}, {"parent_id": "1", "x": "y"}, {"id2": "3299531053"}]
)
def test_a_valid_id_with_unexpected_query_params_is_refused(client, pending, fake_gopay, capture, extra):
    before = snapshot()
    fake_gopay.pay(gopay_id(pending))  # even when it is true, the hint is not GoPay's shape
    with capture(execute=True):
        response = notify(client, gopay_id(pending), **extra)

    assert response.status_code == 400
    assert fake_gopay.requests == []
    assert WebhookEvent.objects.count() == 0
    assert snapshot() == before


def test_another_payment_of_ours_named_by_a_garbage_repeat_is_not_acted_on(client, pending, fake_gopay, capture):
    with capture(execute=True):
        response = client.get(f"/webhooks/gopay/?id={gopay_id(pending)}&id=1%20OR%201%3D1")

    assert response.status_code == 400
    assert fake_gopay.requests == []
    assert WebhookEvent.objects.count() == 0


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_other_methods_are_refused(client, pending, fake_gopay, capture, method):
    before = snapshot()
    with capture(execute=True):
        response = getattr(client, method)(f"/webhooks/gopay/?id={gopay_id(pending)}")

    assert response.status_code == 405
    assert fake_gopay.requests == []
    assert WebhookEvent.objects.count() == 0
    assert snapshot() == before


def test_post_with_a_body_naming_a_paid_payment_is_refused(client, pending, fake_gopay, capture):
    fake_gopay.pay(gopay_id(pending))
    with capture(execute=True):
        response = client.post(
            "/webhooks/gopay/", {"id": gopay_id(pending), "state": "PAID"}, content_type="application/json"
        )

    assert response.status_code == 405
    assert fake_gopay.requests == []
    pending.refresh_from_db()
    assert pending.status == PaymentStatus.PENDING


# --- a hint about a payment of ours: the truth is fetched ----------------------------------------------------


def test_forged_notifications_while_gopay_says_created_change_nothing(client, pending, fake_gopay, capture):
    before = snapshot()
    for _ in range(3):
        assert notify_and_process(client, capture, gopay_id(pending)).status_code == 200

    assert snapshot() == before
    gets = fake_gopay.calls("GET", STATUS)
    assert len(gets) == 3
    assert {r.scope for r in gets} == {"payment-all"}
    assert {r.status for r in gets} == {200}
    assert fake_gopay.posts(r"/payments/.*") == []
    assert set(WebhookEvent.objects.values_list("status", flat=True)) == {WebhookEvent.Status.PROCESSED}


def test_a_valid_notification_fetches_the_status_with_a_payment_all_token(client, pending, fake_gopay, capture):
    fake_gopay.pay(gopay_id(pending))
    with capture(execute=True) as callbacks:
        response = notify(client, gopay_id(pending))

    assert response.status_code == 200
    assert response.json() == {"received": 1, "duplicates": 0}
    assert callbacks  # processing was queued on commit, not done in the request
    gets = fake_gopay.calls("GET", STATUS)  # the processing, then the fee look-up its success queues
    assert gets
    assert {(r.path, r.scope, r.status) for r in gets} == {
        (f"/payments/payment/{gopay_id(pending)}", "payment-all", 200)
    }
    event = WebhookEvent.objects.get()
    assert (event.status, event.payment_id) == (WebhookEvent.Status.PROCESSED, pending.pk)
    pending.refresh_from_db()
    assert pending.status == PaymentStatus.SUCCEEDED


def test_a_notification_with_parent_id_is_accepted(client, pending, fake_gopay, capture):
    fake_gopay.pay(gopay_id(pending))
    response = notify_and_process(client, capture, gopay_id(pending), parent_id=gopay_id(pending))
    assert response.status_code == 200
    pending.refresh_from_db()
    assert pending.status == PaymentStatus.SUCCEEDED


def test_the_processing_never_trusts_the_hint_but_what_gopay_answers(client, pending, fake_gopay, capture):
    """A payment of another shop at GoPay answering with another order_number is refused, not applied."""
    record = fake_gopay.objects[gopay_id(pending)]
    record["order_number"] = "999999"
    fake_gopay.pay(gopay_id(pending))
    response = notify_and_process(client, capture, gopay_id(pending))

    assert response.status_code == 200  # stored; the processing refused to apply it
    event = WebhookEvent.objects.get()
    assert event.status == WebhookEvent.Status.FAILED
    assert "another order number" in event.last_error
    pending.refresh_from_db()
    assert pending.status == PaymentStatus.PENDING
    assert LedgerTransaction.objects.count() == 0


def test_gopay_down_while_processing_fails_the_event_for_a_retry_and_applies_it_later(
    client, pending, fake_gopay, capture
):
    from payments.webhooks.services import retry_failed_events

    fake_gopay.pay(gopay_id(pending))
    fake_gopay.fail(STATUS, "500")
    assert notify_and_process(client, capture, gopay_id(pending)).status_code == 200  # GoPay need not retry
    event = WebhookEvent.objects.get()
    assert event.status == WebhookEvent.Status.FAILED
    pending.refresh_from_db()
    assert pending.status == PaymentStatus.PENDING

    with capture(execute=True):
        assert retry_failed_events(now=event.next_attempt_at) == 1
    event.refresh_from_db()
    pending.refresh_from_db()
    assert event.status == WebhookEvent.Status.PROCESSED
    assert pending.status == PaymentStatus.SUCCEEDED
    assert LedgerTransaction.objects.filter(kind="capture").count() == 1
    assert_conserved(fake_gopay)


# --- GoPay's states ------------------------------------------------------------------------------------------


def test_created_and_payment_method_chosen_are_pending(client, pending, fake_gopay, capture):
    notify_and_process(client, capture, gopay_id(pending))
    pending.refresh_from_db()
    assert pending.status == PaymentStatus.PENDING

    fake_gopay.choose_method(gopay_id(pending))
    notify_and_process(client, capture, gopay_id(pending))
    pending.refresh_from_db()
    assert pending.status == PaymentStatus.PENDING
    assert pending.order.status == OrderStatus.OPEN
    assert LedgerTransaction.objects.count() == 0


@pytest.mark.parametrize("instrument", ["PAYMENT_CARD", "BANK_ACCOUNT"])
def test_paid_is_succeeded_once_whatever_the_number_of_notifications(client, pending, fake_gopay, capture, instrument):
    fake_gopay.pay(gopay_id(pending), instrument)
    for _ in range(5):
        assert notify_and_process(client, capture, gopay_id(pending)).status_code == 200

    pending.refresh_from_db()
    assert (pending.status, pending.captured_minor) == (PaymentStatus.SUCCEEDED, 150000)
    assert pending.order.status == OrderStatus.PAID
    assert LedgerTransaction.objects.filter(kind="capture").count() == 1
    assert Refund.objects.count() == 0
    assert_conserved(fake_gopay)


def test_canceled_leaves_the_order_open_and_the_buyer_can_pay_again(client, pending, fake_gopay, capture):
    order = pending.order
    fake_gopay.cancel(gopay_id(pending))
    notify_and_process(client, capture, gopay_id(pending))
    pending.refresh_from_db()
    order.refresh_from_db()
    assert pending.status == PaymentStatus.CANCELED
    assert order.status == OrderStatus.OPEN

    page = client.get(f"/checkout/{order.token}/return/", {"id": gopay_id(pending)})
    assert page.status_code == 200
    html = page.content.decode()
    assert "The payment did not go through" in html
    assert "No money was taken" in html
    assert f"/checkout/{order.token}/" in html  # "Try again"

    response = client.post(f"/checkout/{order.token}/", {"method": "gopay"})
    assert response.status_code == 303
    second = order.payments.exclude(pk=pending.pk).get()
    assert response["Location"] == second.checkout_url == fake_gopay.payment(gopay_id(second))["gw_url"]
    assert second.status == PaymentStatus.PENDING
    assert len(fake_gopay.posts(r"/payments/payment")) == 1

    fake_gopay.pay(gopay_id(second))
    notify_and_process(client, capture, gopay_id(second))
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    assert LedgerTransaction.objects.filter(kind="capture").count() == 1
    assert_conserved(fake_gopay)


def test_timeouted_is_expired(client, pending, fake_gopay, capture):
    fake_gopay.timeout(gopay_id(pending))
    notify_and_process(client, capture, gopay_id(pending))
    pending.refresh_from_db()
    assert pending.status == PaymentStatus.EXPIRED
    assert LedgerTransaction.objects.count() == 0


def test_authorized_is_authorized(client, payee, fake_gopay, capture):
    order = gopay_order(payee)
    Order.objects.filter(pk=order.pk).update(capture_method="manual")
    order.refresh_from_db()
    payment = start_gopay_payment(order)
    assert fake_gopay.posts(r"/payments/payment")[0].body["preauthorization"] is True
    fake_gopay.pay(gopay_id(payment))
    assert fake_gopay.payment(gopay_id(payment))["state"] == "AUTHORIZED"

    notify_and_process(client, capture, gopay_id(payment))
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.AUTHORIZED


def test_a_late_paid_after_canceled_is_not_lost(client, pending, fake_gopay, capture):
    """States can be re-read in any order: a stale CANCELED processed after PAID never regresses it."""
    fake_gopay.pay(gopay_id(pending))
    notify_and_process(client, capture, gopay_id(pending))
    record = fake_gopay.objects[gopay_id(pending)]
    record["state"] = "CANCELED"  # a stale read
    notify_and_process(client, capture, gopay_id(pending))
    record["state"] = "PAID"
    pending.refresh_from_db()
    assert pending.status == PaymentStatus.SUCCEEDED
    assert pending.order.status == OrderStatus.PAID


# --- refunds made in GoPay's portal ------------------------------------------------------------------------


@pytest.fixture
def paid(client, pending, fake_gopay, capture):
    fake_gopay.pay(gopay_id(pending))
    notify_and_process(client, capture, gopay_id(pending))
    pending.refresh_from_db()
    assert pending.status == PaymentStatus.SUCCEEDED
    return pending


def test_a_partial_refund_made_in_the_portal_is_picked_up_once(client, paid, fake_gopay, capture):
    entry = fake_gopay.portal_refund(gopay_id(paid), 40000)
    assert fake_gopay.payment(gopay_id(paid))["state"] == "PARTIALLY_REFUNDED"
    for _ in range(5):
        assert notify_and_process(client, capture, gopay_id(paid)).status_code == 200

    refund = Refund.objects.get()
    assert (refund.amount_minor, refund.status, refund.reason, refund.provider_ref) == (
        40000,
        RefundStatus.SUCCEEDED,
        RefundReason.MADE_AT_PROVIDER,
        str(entry["id"]),
    )
    paid.refresh_from_db()
    assert paid.refunded_minor == 40000
    assert paid.order.status == OrderStatus.PARTIALLY_REFUNDED
    assert paid.order.refunded_minor == 40000
    assert LedgerTransaction.objects.filter(kind="refund").count() == 1
    assert fake_gopay.posts(r"/payments/payment/\d+/refund") == []  # nothing sent back to GoPay
    assert_conserved(fake_gopay)


def test_a_full_refund_made_in_the_portal_in_two_parts(client, paid, fake_gopay, capture):
    fake_gopay.portal_refund(gopay_id(paid), 50000)
    notify_and_process(client, capture, gopay_id(paid))
    fake_gopay.portal_refund(gopay_id(paid), 100000)
    assert fake_gopay.payment(gopay_id(paid))["state"] == "REFUNDED"
    for _ in range(5):
        notify_and_process(client, capture, gopay_id(paid))

    refunds = list(Refund.objects.order_by("pk").values_list("amount_minor", "status", "reason"))
    assert refunds == [
        (50000, RefundStatus.SUCCEEDED, RefundReason.MADE_AT_PROVIDER),
        (100000, RefundStatus.SUCCEEDED, RefundReason.MADE_AT_PROVIDER),
    ]
    paid.refresh_from_db()
    assert paid.refunded_minor == 150000
    assert paid.order.status == OrderStatus.REFUNDED
    assert LedgerTransaction.objects.filter(kind="refund").count() == 2
    assert_conserved(fake_gopay)


def test_paid_and_refunded_in_the_portal_before_we_heard_of_either(client, pending, fake_gopay, capture):
    """The first notification we process already says REFUNDED: the capture and the refund are both booked."""
    fake_gopay.pay(gopay_id(pending))
    fake_gopay.portal_refund(gopay_id(pending), 150000)
    for _ in range(5):
        notify_and_process(client, capture, gopay_id(pending))

    pending.refresh_from_db()
    assert (pending.status, pending.captured_minor, pending.refunded_minor) == (PaymentStatus.SUCCEEDED, 150000, 150000)
    assert pending.order.status == OrderStatus.REFUNDED
    assert LedgerTransaction.objects.filter(kind="capture").count() == 1
    refund = Refund.objects.get()
    assert (refund.reason, refund.status) == (RefundReason.MADE_AT_PROVIDER, RefundStatus.SUCCEEDED)
    assert_conserved(fake_gopay)


# --- the buyer's return page ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw_id",
    [
        "",
        "3299999999",
        "abc",
        "-1",
        "1 OR 1=1",
        "1;DROP TABLE payments_payment",
        "123\r\nX: y",
        "١٢٣",
        "1" * 10240,
        "0" * 25,
    ],
)
def test_return_page_with_a_garbage_id_never_fails(client, pending, fake_gopay, raw_id):
    order = pending.order
    response = client.get(f"/checkout/{order.token}/return/", {"id": raw_id})

    assert response.status_code == 200
    assert "Processing your payment" in response.content.decode()
    # Only this order's own attempt was looked up (the return page asks GoPay about the latest attempt).
    assert {r.path for r in fake_gopay.calls("GET", STATUS)} <= {f"/payments/payment/{gopay_id(pending)}"}
    pending.refresh_from_db()
    assert pending.status == PaymentStatus.PENDING


def test_return_page_never_syncs_another_orders_payment(client, payee, pending, fake_gopay):
    other_order = gopay_order(payee)
    other = start_gopay_payment(other_order)
    fake_gopay.pay(gopay_id(other))
    fake_gopay.requests.clear()

    response = client.get(f"/checkout/{pending.order.token}/return/", {"id": gopay_id(other)})

    assert response.status_code == 200
    assert "Processing your payment" in response.content.decode()
    assert [r.path for r in fake_gopay.calls("GET", STATUS)] == [f"/payments/payment/{gopay_id(pending)}"]
    other.refresh_from_db()
    assert other.status == PaymentStatus.PENDING
    assert other.order.status == OrderStatus.OPEN
    assert LedgerTransaction.objects.count() == 0


def test_return_page_with_the_right_id_shows_paid(client, pending, fake_gopay, capture):
    fake_gopay.pay(gopay_id(pending))
    with capture(execute=True):
        response = client.get(f"/checkout/{pending.order.token}/return/", {"id": gopay_id(pending)})

    assert response.status_code == 200
    assert "Thank you — payment received" in response.content.decode()
    assert {r.scope for r in fake_gopay.calls("GET", STATUS)} == {"payment-all"}
    pending.refresh_from_db()
    assert pending.status == PaymentStatus.SUCCEEDED
    assert pending.order.status == OrderStatus.PAID

    # ... and the notification that follows changes nothing more.
    notify_and_process(client, capture, gopay_id(pending))
    assert LedgerTransaction.objects.filter(kind="capture").count() == 1
    assert_conserved(fake_gopay)


def test_return_page_names_an_earlier_attempt_of_the_same_order(client, pending, fake_gopay, capture):
    """The buyer canceled, tried again, then came back from the first attempt's tab after paying it there."""
    order = pending.order
    fake_gopay.cancel(gopay_id(pending))
    notify_and_process(client, capture, gopay_id(pending))
    client.post(f"/checkout/{order.token}/", {"method": "gopay"})
    second = order.payments.exclude(pk=pending.pk).get()
    fake_gopay.pay(gopay_id(second))
    fake_gopay.requests.clear()

    with capture(execute=True):
        response = client.get(f"/checkout/{order.token}/return/", {"id": gopay_id(second)})
    assert "Thank you — payment received" in response.content.decode()
    assert {r.path for r in fake_gopay.calls("GET", STATUS)} == {f"/payments/payment/{gopay_id(second)}"}


def test_return_page_while_gopay_is_down_shows_pending(client, pending, fake_gopay):
    fake_gopay.pay(gopay_id(pending))
    fake_gopay.fail(STATUS, "status0")
    response = client.get(f"/checkout/{pending.order.token}/return/", {"id": gopay_id(pending)})

    assert response.status_code == 200
    assert "Processing your payment" in response.content.decode()
    pending.refresh_from_db()
    assert pending.status == PaymentStatus.PENDING


def test_paid_after_our_order_expired_is_booked_once(client, pending, fake_gopay, capture):
    """A PAID read after our order expired is still booked (the buyer paid) — once."""
    Order.objects.filter(pk=pending.order_id).update(expires_at=timezone.now())
    fake_gopay.pay(gopay_id(pending))
    for _ in range(2):
        notify_and_process(client, capture, gopay_id(pending))
    pending.refresh_from_db()
    assert pending.status == PaymentStatus.SUCCEEDED
    assert LedgerTransaction.objects.filter(kind="capture").count() == 1
    assert_conserved(fake_gopay)
