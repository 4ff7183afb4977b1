"""Pre-authorization (manual capture) with GoPay, end to end through the official SDK against the fake: the card
hold in the ledger (posted once, whatever brings the news, and reversed once), full and partial capture (the
uncaptured rest released from each party like a refund), void, the hold's expiry (warning, then the release),
refusals before anything is sent, a capture whose answer is lost, and refunds after a partial capture.

Every scenario ends with the conservation check: the ledger's invariants hold and our GoPay clearing account
equals what GoPay holds for us (captured − refunded)."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from commissions.statements.figures import statement_figures
from core.errors import DomainError
from core.models import AuditEntry
from ledger import accounts
from ledger.models import LedgerTransaction
from ledger.money import allocate
from ledger.selectors import account_balance
from payments.models import Order, OrderStatus, Payment, PaymentStatus, ReviewReason
from payments.providers.base import ProviderPaymentState
from payments.services.authorizations import (
    capture_authorized_payment,
    void_authorized_payment,
    watch_authorizations,
)
from payments.services.checkout import start_payment
from payments.services.fulfilment import apply_payment_state
from payments.services.orders import cancel_order, expire_stale_orders
from refunds.models import Refund, RefundReason, RefundStatus
from refunds.services import refundable_minor, request_refund
from tests.payments.gopay.helpers import (
    assert_conserved,
    gopay_id,
    gopay_order,
    notify_and_process,
    start_gopay_payment,
)

pytestmark = pytest.mark.django_db
START = datetime(2026, 8, 21, 10, 0, tzinfo=UTC)
TOTAL = 150000  # 2 × 750 Kč
CAPTURE = r"/payments/payment/\d+/capture"
VOID = r"/payments/payment/\d+/void-authorization"


@pytest.fixture
def capture(django_capture_on_commit_callbacks):
    return django_capture_on_commit_callbacks


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def hear(client, capture, clock):
    """GoPay's notification about a payment, processed. The clock is frozen, and GoPay's hints are told apart by
    the time they arrive, so each one comes a second after the last."""

    def notify(payment):
        clock.shift(timedelta(seconds=1))
        return notify_and_process(client, capture, gopay_id(payment))

    return notify


@pytest.fixture
def authorized(client, payee, fake_gopay, hear, clock):
    """A manual-capture order whose buyer authorized 1 500 Kč at GoPay, and we heard about it."""
    order = gopay_order(payee, capture_method="manual")
    payment = start_gopay_payment(order)
    fake_gopay.pay(gopay_id(payment))
    hear(payment)
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.AUTHORIZED
    return payment


def kinds(*names: str) -> dict[str, int]:
    return {name: LedgerTransaction.objects.filter(kind=name).count() for name in names}


def balance(spec, currency: str = "CZK") -> int:
    return account_balance(spec, currency).amount_minor


def hold_balances() -> tuple[int, int]:
    return balance(accounts.provider_authorized("gopay")), balance(accounts.BUYERS_AUTHORIZATIONS)


# --- the hold -------------------------------------------------------------------------------------------------


def test_an_authorization_posts_the_hold_once_however_often_it_is_heard(client, payee, fake_gopay, hear):
    order = gopay_order(payee, capture_method="manual")
    payment = start_gopay_payment(order)
    assert fake_gopay.posts(r"/payments/payment")[0].body["preauthorization"] is True
    fake_gopay.pay(gopay_id(payment))

    for _ in range(20):
        assert hear(payment).status_code == 200
    # the buyer's return page and the janitor bring the same news
    page = client.get(f"/checkout/{order.token}/return/", {"id": gopay_id(payment)})

    payment.refresh_from_db()
    order.refresh_from_db()
    assert payment.status == PaymentStatus.AUTHORIZED
    assert payment.authorized_minor == TOTAL
    assert payment.captured_minor == 0
    assert payment.authorization_expires_at == START + timedelta(days=4, seconds=1)  # heard 1 s after START
    assert order.status == OrderStatus.OPEN
    assert kinds("authorization", "authorization_end", "capture") == {
        "authorization": 1,
        "authorization_end": 0,
        "capture": 0,
    }
    hold = LedgerTransaction.objects.get(kind="authorization")
    assert hold.idempotency_key == f"authorization:payment:{payment.pk}"
    assert hold_balances() == (TOTAL, TOTAL)
    assert balance(accounts.provider_clearing("gopay")) == 0
    assert_conserved(fake_gopay)

    text = page.content.decode()
    assert page.status_code == 200
    assert "your payment is authorized" in text
    assert "reserved on your card but not charged yet" in text
    assert "when the seller confirms" in text
    # nothing more to pay: the checkout page sends the buyer to the result, and no second attempt starts
    assert client.get(f"/checkout/{order.token}/").status_code == 302
    with pytest.raises(DomainError) as refused:
        start_payment(order=order, provider_name="gopay", now=timezone.now())
    assert refused.value.code == "payment_authorized"
    assert len(fake_gopay.posts(r"/payments/payment")) == 1


def test_a_late_authorized_after_the_capture_posts_no_hold(authorized, fake_gopay):
    capture_authorized_payment(payment_id=authorized.pk, amount_minor=None, now=timezone.now())
    stale = ProviderPaymentState(provider_ref=authorized.provider_ref, status="authorized")
    assert apply_payment_state(payment_id=authorized.pk, state=stale, now=timezone.now(), source="test") is False
    authorized.refresh_from_db()
    assert authorized.status == PaymentStatus.SUCCEEDED
    assert kinds("authorization", "authorization_end") == {"authorization": 1, "authorization_end": 1}
    assert hold_balances() == (0, 0)
    assert_conserved(fake_gopay)


def test_the_stale_order_janitor_leaves_an_authorized_order_alone(authorized, fake_gopay, clock):
    order = authorized.order
    clock.shift(timedelta(days=2))  # far past the order's own expiry (1 h)
    assert expire_stale_orders(now=timezone.now()) == 0
    order.refresh_from_db()
    authorized.refresh_from_db()
    assert (order.status, authorized.status) == (OrderStatus.OPEN, PaymentStatus.AUTHORIZED)
    with pytest.raises(DomainError) as refused:
        cancel_order(order=order, now=timezone.now())
    assert refused.value.code == "payment_authorized"


# --- capture --------------------------------------------------------------------------------------------------


def test_full_capture(authorized, fake_gopay, capture, hear):
    with capture(execute=True):
        payment = capture_authorized_payment(payment_id=authorized.pk, amount_minor=None, now=timezone.now())

    [sent] = fake_gopay.posts(CAPTURE)
    assert sent.body is None  # a full capture sends no body
    assert fake_gopay.payment(gopay_id(payment))["state"] == "PAID"
    order = Order.objects.get(pk=payment.order_id)
    assert (payment.status, payment.captured_minor, payment.authorized_minor) == (PaymentStatus.SUCCEEDED, TOTAL, 0)
    assert payment.settles_order
    assert (order.status, order.refunded_minor) == (OrderStatus.PAID, 0)
    assert not Refund.objects.exists()
    assert hold_balances() == (0, 0)
    assert balance(accounts.provider_clearing("gopay")) == TOTAL

    for _ in range(5):  # GoPay's notifications about it change nothing more
        hear(payment)
    assert kinds("authorization", "authorization_end", "capture", "authorization_release") == {
        "authorization": 1,
        "authorization_end": 1,
        "capture": 1,
        "authorization_release": 0,
    }
    audit = AuditEntry.objects.get(action="payment.capture")
    assert audit.amount_minor == TOTAL
    assert "full capture" in audit.message
    [confirmation] = mail.outbox
    assert "1,500.00" in confirmation.body
    assert "released" not in confirmation.body
    assert_conserved(fake_gopay)


def test_partial_capture_releases_the_rest_from_every_party(authorized, fake_gopay, capture, hear):
    order = authorized.order
    [line] = order.lines.all()
    captured = 100000
    with capture(execute=True):
        payment = capture_authorized_payment(payment_id=authorized.pk, amount_minor=captured, now=timezone.now())

    [sent] = fake_gopay.posts(CAPTURE)
    assert sent.body == {
        "amount": captured,
        "items": [{"type": "ITEM", "name": "Captured part", "amount": captured, "count": 1}],
    }
    assert fake_gopay.payment(gopay_id(payment))["amount"] == captured
    order.refresh_from_db()
    assert (payment.status, payment.captured_minor, payment.refunded_minor) == (PaymentStatus.SUCCEEDED, captured, 0)
    assert (payment.needs_review, payment.review_reason) == (False, "")  # not an amount mismatch
    assert (order.status, order.refunded_minor) == (OrderStatus.PARTIALLY_REFUNDED, TOTAL - captured)

    [release] = Refund.objects.all()
    assert (release.reason, release.status, release.amount_minor) == (
        RefundReason.AUTHORIZATION_RELEASED,
        RefundStatus.SUCCEEDED,
        TOTAL - captured,
    )
    assert release.get_reason_display() == "Not captured (authorization released)"
    assert (release.provider_attempts, release.provider_ref) == (0, "")  # nothing was sent to GoPay
    assert not fake_gopay.posts(r"/payments/payment/\d+/refund")

    # each party gives back its share of the uncaptured third, exactly
    commission_back, vat_back, share_back = allocate(
        TOTAL - captured, [line.commission_minor, line.commission_vat_minor, line.payee_share_minor]
    )
    [release_line] = release.lines.all()
    assert (release_line.commission_minor, release_line.commission_vat_minor, release_line.payee_share_minor) == (
        commission_back,
        vat_back,
        share_back,
    )
    assert balance(accounts.provider_clearing("gopay")) == captured
    assert balance(accounts.payee_pending(line.payee_id)) == line.payee_share_minor - share_back
    assert balance(accounts.PLATFORM_COMMISSION) == line.commission_minor - commission_back
    assert balance(accounts.PLATFORM_VAT_PAYABLE) == line.commission_vat_minor - vat_back
    # with the default rule (commission 10 %, VAT on it 21 %) in figures:
    assert (line.commission_minor, line.commission_vat_minor, line.payee_share_minor) == (15000, 3150, 131850)
    assert (
        balance(accounts.payee_pending(line.payee_id)),
        balance(accounts.PLATFORM_COMMISSION),
        balance(accounts.PLATFORM_VAT_PAYABLE),
    ) == (87900, 10000, 2100)
    assert hold_balances() == (0, 0)

    for _ in range(5):
        hear(payment)
    assert kinds("authorization", "authorization_end", "capture", "authorization_release", "refund") == {
        "authorization": 1,
        "authorization_end": 1,
        "capture": 1,
        "authorization_release": 1,
        "refund": 0,
    }
    assert LedgerTransaction.objects.filter(idempotency_key=f"authorization-release:payment:{payment.pk}").exists()
    # The payee's statement: the uncaptured rest undoes sales (it was never sold), not a refund.
    stated = statement_figures(
        payee_id=line.payee_id,
        currency=order.currency,
        start=timezone.now() - timedelta(days=1),
        end=timezone.now() + timedelta(days=1),
    ).figures
    assert (stated["sales"], stated["refunds"], stated["commission"], stated["commission_vat"]) == (
        captured,
        0,
        10000,
        2100,
    )
    [confirmation] = mail.outbox
    assert "Paid CZK" in confirmation.body
    assert "1,000.00" in confirmation.body
    assert "rest of the hold has been released" in confirmation.body
    assert_conserved(fake_gopay)


def test_a_refund_after_a_partial_capture_returns_at_most_what_was_captured(authorized, fake_gopay, capture, hear):
    captured = 100000
    payment = capture_authorized_payment(payment_id=authorized.pk, amount_minor=captured, now=timezone.now())
    order = Order.objects.get(pk=payment.order_id)
    assert refundable_minor(payment) == captured

    with pytest.raises(DomainError) as refused:
        request_refund(order=order, amount_minor=captured + 1, reason="requested_by_customer", now=timezone.now())
    assert refused.value.code == "refund_exceeds_captured"

    with capture(execute=True):
        request_refund(order=order, amount_minor=30000, reason="requested_by_customer", now=timezone.now())
    assert_conserved(fake_gopay)
    with capture(execute=True):
        request_refund(order=order, amount_minor=70000, reason="requested_by_customer", now=timezone.now())
    hear(payment)

    payment.refresh_from_db()
    order.refresh_from_db()
    assert fake_gopay.refunded(gopay_id(payment)) == captured
    assert (payment.captured_minor, payment.refunded_minor) == (captured, captured)
    assert (order.status, order.refunded_minor) == (OrderStatus.REFUNDED, TOTAL)
    assert refundable_minor(payment) == 0
    [line] = order.lines.all()
    assert balance(accounts.provider_clearing("gopay")) == 0
    assert balance(accounts.payee_pending(line.payee_id)) == 0
    assert balance(accounts.PLATFORM_COMMISSION) == 0
    assert balance(accounts.PLATFORM_VAT_PAYABLE) == 0
    assert_conserved(fake_gopay)


def test_a_capture_at_gopay_we_only_hear_about_afterwards_is_booked_the_same(payee, fake_gopay, hear):
    """In any order: the notification of the authorization never came, and staff captured part in GoPay's
    portal; the first state we read is PAID with the captured part."""
    order = gopay_order(payee, capture_method="manual")
    payment = start_gopay_payment(order)
    fake_gopay.pay(gopay_id(payment))
    record = fake_gopay.objects[gopay_id(payment)]
    fake_gopay._capture(record, {"amount": 60000, "items": [{"type": "ITEM", "name": "Part", "amount": 60000}]})

    hear(payment)
    payment.refresh_from_db()
    order.refresh_from_db()
    assert (payment.status, payment.captured_minor) == (PaymentStatus.SUCCEEDED, 60000)
    assert (order.status, order.refunded_minor) == (OrderStatus.PARTIALLY_REFUNDED, TOTAL - 60000)
    assert kinds("authorization", "authorization_end", "capture", "authorization_release") == {
        "authorization": 0,
        "authorization_end": 0,
        "capture": 1,
        "authorization_release": 1,
    }
    assert balance(accounts.provider_clearing("gopay")) == 60000
    assert_conserved(fake_gopay)


# --- refusals before anything is sent ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "code"),
    [(TOTAL + 1, "capture_exceeds_authorized"), (0, "amount_must_be_positive"), (-5, "amount_must_be_positive")],
)
def test_a_capture_over_the_authorized_amount_is_refused_and_nothing_is_sent(authorized, fake_gopay, amount, code):
    with pytest.raises(DomainError) as refused:
        capture_authorized_payment(payment_id=authorized.pk, amount_minor=amount, now=timezone.now())
    assert refused.value.code == code
    assert not fake_gopay.posts(CAPTURE)
    authorized.refresh_from_db()
    assert authorized.status == PaymentStatus.AUTHORIZED
    assert hold_balances() == (TOTAL, TOTAL)
    assert_conserved(fake_gopay)


def test_only_an_authorized_payment_can_be_captured_or_voided(payee, fake_gopay, hear):
    order = gopay_order(payee)  # automatic capture: paid at once
    payment = start_gopay_payment(order)
    fake_gopay.pay(gopay_id(payment))
    hear(payment)
    for action in (
        lambda: capture_authorized_payment(payment_id=payment.pk, amount_minor=None, now=timezone.now()),
        lambda: void_authorized_payment(payment_id=payment.pk, now=timezone.now()),
    ):
        with pytest.raises(DomainError) as refused:
            action()
        assert (refused.value.code, refused.value.status) == ("payment_not_authorized", 409)
    assert fake_gopay.posts(CAPTURE) == []
    assert fake_gopay.posts(VOID) == []


def test_a_provider_without_the_capability_is_refused_by_capability(payee):
    """The sandbox cannot capture or void: refused on its capabilities, whatever the payment's state says."""
    order = gopay_order(payee, currency="EUR")
    payment = start_payment(order=order, provider_name="sandbox", now=timezone.now())
    Payment.objects.filter(pk=payment.pk).update(status=PaymentStatus.AUTHORIZED, authorized_minor=TOTAL)
    with pytest.raises(DomainError) as refused:
        capture_authorized_payment(payment_id=payment.pk, amount_minor=None, now=timezone.now())
    assert refused.value.code == "capture_not_supported"
    with pytest.raises(DomainError) as refused:
        void_authorized_payment(payment_id=payment.pk, now=timezone.now())
    assert refused.value.code == "void_not_supported"


def test_a_manual_capture_order_is_only_offered_providers_that_can_capture(client, payee, fake_gopay):
    order = gopay_order(payee, capture_method="manual")
    page = client.get(f"/checkout/{order.token}/").content.decode()
    assert 'value="gopay"' in page
    assert 'value="sandbox"' not in page
    with pytest.raises(DomainError) as refused:
        start_payment(order=order, provider_name="sandbox", now=timezone.now())
    assert refused.value.code == "capture_not_available"
    assert not order.payments.exists()


# --- GoPay does not answer, or refuses -----------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["lost", "status0", "500"])
def test_a_capture_without_an_answer_is_a_clear_503_and_the_next_notification_applies_the_truth(
    authorized, fake_gopay, hear, fault
):
    fake_gopay.fail(CAPTURE, fault)
    with pytest.raises(DomainError) as unanswered:
        capture_authorized_payment(payment_id=authorized.pk, amount_minor=90000, now=timezone.now())
    assert unanswered.value.status == 503
    assert unanswered.value.code == "provider_unavailable"
    assert "GoPay did not answer; the capture may have happened — the status is checked again" in str(unanswered.value)
    # nothing changed on our side
    authorized.refresh_from_db()
    assert (authorized.status, authorized.authorized_minor) == (PaymentStatus.AUTHORIZED, TOTAL)
    assert kinds("capture", "authorization_end") == {"capture": 0, "authorization_end": 0}
    failure = AuditEntry.objects.get(action="payment.capture")
    assert failure.outcome == AuditEntry.Outcome.FAILURE

    at_gopay = fake_gopay.payment(gopay_id(authorized))
    if fault == "status0":  # never reached GoPay: still authorized there; the capture can simply be made again
        assert at_gopay["state"] == "AUTHORIZED"
        capture_authorized_payment(payment_id=authorized.pk, amount_minor=90000, now=timezone.now())
    else:  # GoPay captured and the answer was lost ("500" here: the fake answers 500 without applying it)
        assert at_gopay["state"] == ("PAID" if fault == "lost" else "AUTHORIZED")
        if fault == "500":
            capture_authorized_payment(payment_id=authorized.pk, amount_minor=90000, now=timezone.now())
    for _ in range(3):
        hear(authorized)

    authorized.refresh_from_db()
    assert (authorized.status, authorized.captured_minor) == (PaymentStatus.SUCCEEDED, 90000)
    assert kinds("authorization", "authorization_end", "capture", "authorization_release") == {
        "authorization": 1,
        "authorization_end": 1,
        "capture": 1,
        "authorization_release": 1,
    }
    assert balance(accounts.provider_clearing("gopay")) == 90000
    assert_conserved(fake_gopay)


def test_a_capture_gopay_refuses_is_a_409_with_its_message_and_its_state_is_taken(authorized, fake_gopay):
    fake_gopay.expire_authorization(gopay_id(authorized))  # lapsed at GoPay, and no one told us
    with pytest.raises(DomainError) as refused:
        capture_authorized_payment(payment_id=authorized.pk, amount_minor=None, now=timezone.now())
    assert (refused.value.status, refused.value.code) == (409, "provider_rejected")
    assert "The authorization has been voided." in refused.value.message
    authorized.refresh_from_db()
    assert authorized.status == PaymentStatus.CANCELED
    assert hold_balances() == (0, 0)
    assert_conserved(fake_gopay)


# --- void -----------------------------------------------------------------------------------------------------


def test_void_releases_the_hold_and_the_buyer_may_pay_again(authorized, fake_gopay, hear):
    order = authorized.order
    payment = void_authorized_payment(payment_id=authorized.pk, now=timezone.now())

    assert len(fake_gopay.posts(VOID)) == 1
    assert fake_gopay.payment(gopay_id(payment))["state"] == "CANCELED"
    assert (payment.status, payment.authorized_minor, payment.failure_code) == (
        PaymentStatus.CANCELED,
        0,
        "authorization_voided",
    )
    order.refresh_from_db()
    assert order.status == OrderStatus.OPEN  # within its time: the buyer may pay again
    hear(payment)
    assert kinds("authorization", "authorization_end", "capture") == {
        "authorization": 1,
        "authorization_end": 1,
        "capture": 0,
    }
    assert hold_balances() == (0, 0)
    assert balance(accounts.provider_clearing("gopay")) == 0
    assert AuditEntry.objects.filter(action="payment.void", outcome=AuditEntry.Outcome.SUCCESS).count() == 1
    again = start_gopay_payment(order)
    assert again.pk != payment.pk
    assert again.status == PaymentStatus.PENDING
    assert_conserved(fake_gopay)


def test_void_after_the_orders_time_expires_the_order(authorized, fake_gopay, clock):
    clock.shift(timedelta(hours=5))
    payment = void_authorized_payment(payment_id=authorized.pk, now=timezone.now())
    assert payment.status == PaymentStatus.CANCELED
    assert Order.objects.get(pk=payment.order_id).status == OrderStatus.EXPIRED
    assert_conserved(fake_gopay)


# --- expiry ---------------------------------------------------------------------------------------------------


def test_staff_are_warned_before_the_hold_lapses_then_the_release_is_recorded(
    authorized, fake_gopay, capture, hear, clock, settings
):
    settings.ADMINS = [("Finance", "finance@example.com")]
    expires = authorized.authorization_expires_at
    assert expires == START + timedelta(days=4, seconds=1)

    clock.move_to(START + timedelta(days=2))
    assert watch_authorizations(now=timezone.now()).warned == 0
    assert mail.outbox == []

    clock.move_to(expires - timedelta(hours=23))  # within a day of the lapse
    for _ in range(3):  # hourly runs: warned once
        with capture(execute=True):
            watch_authorizations(now=timezone.now())
    authorized.refresh_from_db()
    assert authorized.authorization_warned_at == expires - timedelta(hours=23)
    assert (authorized.needs_review, authorized.review_reason) == (True, ReviewReason.AUTHORIZATION_EXPIRING)
    [warning] = mail.outbox
    assert warning.to == ["finance@example.com"]
    assert f"Authorization of order {authorized.order.short_token} expires" in warning.subject
    assert "capture or void it" in warning.body
    assert "2026-08-25 10:00" in warning.body
    assert AuditEntry.objects.filter(action="payment.authorization_expiring").count() == 1
    assert authorized.status == PaymentStatus.AUTHORIZED

    clock.move_to(expires + timedelta(hours=1))  # past the expiry; GoPay has not said so yet: leave it
    watch_authorizations(now=timezone.now())
    authorized.refresh_from_db()
    assert authorized.status == PaymentStatus.AUTHORIZED

    fake_gopay.expire_authorization(gopay_id(authorized))  # GoPay releases the hold
    clock.move_to(expires + timedelta(hours=2))
    result = watch_authorizations(now=timezone.now())
    assert (result.lapsed, result.ended) == (0, 1)
    authorized.refresh_from_db()
    assert (authorized.status, authorized.failure_code, authorized.authorized_minor) == (
        PaymentStatus.CANCELED,
        "authorization_expired",
        0,
    )
    assert not authorized.needs_review  # the review was "capture or void it": nothing is left to do
    assert Order.objects.get(pk=authorized.order_id).status == OrderStatus.EXPIRED
    for _ in range(2):
        watch_authorizations(now=timezone.now())
        hear(authorized)
    assert kinds("authorization", "authorization_end") == {"authorization": 1, "authorization_end": 1}
    assert hold_balances() == (0, 0)
    assert len(mail.outbox) == 1
    assert_conserved(fake_gopay)


def test_a_hold_gopay_still_reports_a_day_after_its_expiry_is_recorded_as_released(
    authorized, fake_gopay, clock, caplog
):
    expires = authorized.authorization_expires_at
    clock.move_to(expires + timedelta(hours=23))
    watch_authorizations(now=timezone.now())
    authorized.refresh_from_db()
    assert authorized.status == PaymentStatus.AUTHORIZED  # the warning, but no release yet
    assert authorized.authorization_warned_at is not None

    clock.move_to(expires + timedelta(days=1, hours=1))
    fake_gopay.fail(r"/payments/payment/\d+", "500")  # and GoPay cannot even be asked
    result = watch_authorizations(now=timezone.now())
    assert result.lapsed == 1
    authorized.refresh_from_db()
    assert (authorized.status, authorized.failure_code) == (PaymentStatus.CANCELED, "authorization_expired")
    assert kinds("authorization", "authorization_end") == {"authorization": 1, "authorization_end": 1}
    assert hold_balances() == (0, 0)
    assert "recorded as released" in caplog.text
    assert watch_authorizations(now=timezone.now()).lapsed == 0
    assert_conserved(fake_gopay)


def test_a_warning_without_any_staff_address_is_logged(authorized, clock, settings, caplog):
    settings.ADMINS = []
    clock.move_to(authorized.authorization_expires_at - timedelta(hours=2))
    assert watch_authorizations(now=timezone.now()).warned == 1
    assert mail.outbox == []
    assert "no staff e-mail configured" in caplog.text
