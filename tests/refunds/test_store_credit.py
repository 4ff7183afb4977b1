"""Store credit: issued from a refund (with its e-mail) or as goodwill, spent at checkout with its code,
refused in plain language when it cannot pay, returned when a credit-paid order is refunded, released to
breakage when it expires. The ledger is checked after each, and `buyers:store_credit` always equals what
buyers can still spend."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from core.errors import DomainError, ErrorCode
from ledger import accounts
from ledger.models import LedgerTransaction
from ledger.money import Money
from ledger.selectors import account_balance
from payments.models import OrderStatus, PaymentStatus
from refunds.models import Refund, RefundStatus, StoreCredit, StoreCreditSpend, StoreCreditStatus
from refunds.services import complete_refund, execute_refund
from refunds.store_credit import (
    CODE_ALPHABET,
    expire_store_credits,
    issue_goodwill_credit,
    normalize_code,
    pay_with_store_credit,
)
from tests.payments.helpers import make_order
from tests.refunds.store_credit_helpers import assert_conserved, paid_order, refund_as_store_credit

pytestmark = pytest.mark.django_db


def _credit(payee, django_capture_on_commit_callbacks, *, unit_amount_minor=10000) -> StoreCredit:
    with django_capture_on_commit_callbacks(execute=True):
        return refund_as_store_credit(paid_order(payee, unit_amount_minor=unit_amount_minor))


def _checkout_url(order) -> str:
    return reverse("checkout:page", args=[order.token])


def test_codes_are_human_friendly_and_typed_loosely():
    from refunds.store_credit import generate_code

    codes = {generate_code() for _ in range(200)}
    assert len(codes) == 200
    for code in codes:
        groups = code.split("-")
        assert [len(g) for g in groups] == [4, 4, 4]
        assert set("".join(groups)) <= set(CODE_ALPHABET)
    assert not set("01OIL") & set(CODE_ALPHABET)
    assert normalize_code(" abcd efgh-jkmn ") == "ABCD-EFGH-JKMN"


def test_a_refund_as_store_credit_issues_a_credit_once_and_emails_the_code(payee, django_capture_on_commit_callbacks):
    now = timezone.now()
    order = paid_order(payee, unit_amount_minor=12900)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        credit = refund_as_store_credit(order, now=now)

    assert (credit.amount_minor, credit.remaining_minor, credit.currency) == (12900, 12900, "EUR")
    assert credit.status == StoreCreditStatus.ACTIVE
    assert credit.buyer_email == order.buyer_email
    assert credit.expires_at == now + timedelta(days=365)
    # Idempotent per refund.
    from refunds.store_credit import create_store_credit_for_refund

    assert create_store_credit_for_refund(refund=credit.source_refund, now=now).pk == credit.pk
    assert StoreCredit.objects.count() == 1

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [order.buyer_email]
    assert credit.code in message.body
    assert "€129.00" in message.body
    assert "€129.00" in message.subject
    assert f"{credit.expires_at:%-d %b %Y}" in message.body
    assert "Have store credit?" in message.body  # how to use it
    assert_conserved()


def test_the_policy_validity_sets_the_expiry(payee, settings):
    from refunds.store_credit import _validity

    class Policy:
        store_credit_validity_days = 30

    class WithPolicy:
        policy = Policy()

    assert _validity(WithPolicy()) == timedelta(days=30)
    settings.TOLLGATE_STORE_CREDIT_VALIDITY = timedelta(days=90)
    assert _validity(None) == timedelta(days=90)


def test_paying_a_whole_order_with_a_code_on_the_checkout_page(client, payee, django_capture_on_commit_callbacks):
    credit = _credit(payee, django_capture_on_commit_callbacks)
    order = make_order(payee, unit_amount_minor=10000, buyer_email="friend@example.com")  # bearer code

    page = client.get(_checkout_url(order))
    assert page.status_code == 200
    assert "Have store credit?" in page.content.decode()
    assert 'value="store_credit"' not in page.content.decode()  # not one of the provider choices

    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(_checkout_url(order), {"store_credit_code": credit.code.lower().replace("-", " ")})
    assert response.status_code == 303
    assert response["Location"] == reverse("checkout:return", args=[order.token])

    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    payment = order.payments.get(settles_order=True)
    assert (payment.provider, payment.status, payment.captured_minor) == (
        "store_credit",
        PaymentStatus.SUCCEEDED,
        10000,
    )
    spend = StoreCreditSpend.objects.get(payment=payment)
    credit.refresh_from_db()
    assert (credit.remaining_minor, credit.status) == (0, StoreCreditStatus.SPENT)

    capture = LedgerTransaction.objects.get(idempotency_key=f"capture:payment:{payment.pk}")
    assert ("provider:store_credit:clearing", "debit", 10000) in {
        (e.account.code, e.direction, e.amount_minor) for e in capture.entries.select_related("account")
    }
    spend_tx = LedgerTransaction.objects.get(idempotency_key=f"store_credit_spend:{spend.pk}")
    assert {(e.account.code, e.direction, e.amount_minor) for e in spend_tx.entries.select_related("account")} == {
        ("buyers:store_credit", "debit", 10000),
        ("provider:store_credit:clearing", "credit", 10000),
    }
    assert account_balance(accounts.provider_clearing("store_credit"), "EUR").amount_minor == 0
    assert [m.to for m in mail.outbox] == [["friend@example.com"]]  # the usual payment confirmation
    assert client.get(response["Location"]).status_code == 200
    assert_conserved()


def test_a_code_larger_than_the_order_keeps_the_rest(payee, django_capture_on_commit_callbacks):
    credit = _credit(payee, django_capture_on_commit_callbacks, unit_amount_minor=10000)
    first = make_order(payee, unit_amount_minor=3000)
    pay_with_store_credit(order=first, code=credit.code, now=timezone.now())
    credit.refresh_from_db()
    assert (credit.remaining_minor, credit.status) == (7000, StoreCreditStatus.ACTIVE)
    assert_conserved()
    second = make_order(payee, unit_amount_minor=7000)
    pay_with_store_credit(order=second, code=credit.code, now=timezone.now())
    credit.refresh_from_db()
    assert (credit.remaining_minor, credit.status) == (0, StoreCreditStatus.SPENT)
    assert credit.spends.count() == 2
    assert_conserved()


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("unknown", "We do not know this code"),
        ("other_currency", "This code is in CZK and this order is in EUR"),
        ("expired", "This code expired on"),
        ("spent", "This code has already been used up"),
    ],
)
def test_a_code_that_cannot_pay_is_refused_in_plain_language_and_nothing_is_paid(
    client, payee, django_capture_on_commit_callbacks, case, expected
):
    now = timezone.now()
    code = "ABCD-EFGH-JKMN"
    if case != "unknown":
        amount = Money(10000, "CZK" if case == "other_currency" else "EUR")
        with django_capture_on_commit_callbacks(execute=True):
            credit = issue_goodwill_credit(
                buyer_email="buyer@example.com",
                amount=amount,
                expires_at=now + timedelta(days=10),
                actor=None,
                reason="Sorry for the delay",
                now=now,
            )
        code = credit.code
        if case == "expired":
            expire_store_credits(now=now + timedelta(days=11))
        if case == "spent":
            pay_with_store_credit(order=make_order(payee, unit_amount_minor=10000), code=code, now=now)
    order = make_order(payee, unit_amount_minor=10000)
    before = LedgerTransaction.objects.count()

    response = client.post(_checkout_url(order), {"store_credit_code": code})

    assert response.status_code == 400
    assert expected in response.content.decode().replace("&#x27;", "'")
    order.refresh_from_db()
    assert order.status == OrderStatus.OPEN
    assert not order.payments.exists()
    assert LedgerTransaction.objects.count() == before
    assert_conserved("EUR", "CZK")


def test_an_expired_but_not_yet_swept_code_is_refused(payee):
    now = timezone.now()
    credit = issue_goodwill_credit(
        buyer_email="b@example.com",
        amount=Money(10000, "EUR"),
        expires_at=now + timedelta(minutes=10),
        actor=None,
        reason="goodwill",
        now=now,
    )
    order = make_order(payee, unit_amount_minor=100)
    with pytest.raises(DomainError) as refused:
        pay_with_store_credit(order=order, code=credit.code, now=now + timedelta(minutes=20))
    assert refused.value.code == ErrorCode.STORE_CREDIT_INVALID


def test_goodwill_credit_is_an_expense_and_audited(payee, admin_user):
    now = timezone.now()
    credit = issue_goodwill_credit(
        buyer_email="b@example.com",
        amount=Money(2500, "EUR"),
        expires_at=now + timedelta(days=30),
        actor=admin_user,
        reason="Event started late",
        now=now,
    )
    assert account_balance(accounts.PLATFORM_GOODWILL, "EUR").amount_minor == 2500
    assert credit.issued_by == admin_user
    from core.models import AuditEntry

    entry = AuditEntry.objects.get(action="store_credit.goodwill")
    assert (entry.actor, entry.amount_minor, entry.message) == (admin_user, 2500, "Event started late")
    assert_conserved()


def test_expiry_releases_the_liability_to_breakage_once(payee, django_capture_on_commit_callbacks):
    now = timezone.now()
    credit = _credit(payee, django_capture_on_commit_callbacks, unit_amount_minor=10000)
    pay_with_store_credit(order=make_order(payee, unit_amount_minor=4000), code=credit.code, now=now)
    assert expire_store_credits(now=now) == 0  # not due yet

    later = credit.expires_at + timedelta(minutes=1)
    assert expire_store_credits(now=later) == 1
    assert expire_store_credits(now=later) == 0  # idempotent
    credit.refresh_from_db()
    assert (credit.status, credit.remaining_minor, credit.expired_minor) == (StoreCreditStatus.EXPIRED, 0, 6000)
    assert account_balance(accounts.PLATFORM_STORE_CREDIT_BREAKAGE, "EUR").amount_minor == 6000
    assert account_balance(accounts.BUYERS_STORE_CREDIT, "EUR").amount_minor == 0
    assert LedgerTransaction.objects.filter(idempotency_key=f"store_credit_expiry:{credit.pk}").count() == 1
    assert_conserved()


def test_the_beat_task_expires_credits(payee):
    from config.celery import app
    from refunds.tasks import expire_store_credits as task

    assert any(e["task"] == "refunds.tasks.expire_store_credits" for e in app.conf.beat_schedule.values())
    credit = issue_goodwill_credit(
        buyer_email="b@example.com",
        amount=Money(100, "EUR"),
        expires_at=timezone.now() - timedelta(seconds=1),  # issued a while ago, just expired
        actor=None,
        reason="x",
        now=timezone.now() - timedelta(days=1),
    )
    assert task.delay().get() == 1
    credit.refresh_from_db()
    assert credit.status == StoreCreditStatus.EXPIRED
    assert_conserved()


def test_refunding_a_credit_paid_order_returns_credit(payee, django_capture_on_commit_callbacks):
    now = timezone.now()
    credit = _credit(payee, django_capture_on_commit_callbacks, unit_amount_minor=10000)
    order = make_order(payee, unit_amount_minor=10000)
    payment = pay_with_store_credit(order=order, code=credit.code, now=now)
    refund = Refund.objects.create(
        order=order,
        payment=payment,
        amount_minor=4000,
        currency="EUR",
        reason="requested_by_customer",
        status=RefundStatus.APPROVED,
        created_at=now,
    )
    from refunds.services.core import _allocate_over_lines

    for row in _allocate_over_lines(order, 4000):
        row.refund = refund
        row.save()
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        refund = execute_refund(refund_id=refund.pk, now=now)
    assert refund.status == RefundStatus.SUCCEEDED
    assert complete_refund(refund_id=refund.pk, provider_ref="", now=now).status == RefundStatus.SUCCEEDED  # twice

    returned = StoreCredit.objects.get(source_refund=refund)
    assert returned.code != credit.code
    assert (returned.amount_minor, returned.remaining_minor, returned.status) == (4000, 4000, "active")
    assert refund.provider_ref == f"store_credit_{returned.pk}"
    assert [m.to for m in mail.outbox] == [[order.buyer_email]]
    assert returned.code in mail.outbox[0].body
    moved = LedgerTransaction.objects.get(idempotency_key=f"store_credit_refund:{refund.pk}")
    assert {(e.account.code, e.direction, e.amount_minor) for e in moved.entries.select_related("account")} == {
        ("provider:store_credit:clearing", "debit", 4000),
        ("buyers:store_credit", "credit", 4000),
    }
    assert account_balance(accounts.provider_clearing("store_credit"), "EUR").amount_minor == 0
    order.refresh_from_db()
    assert (order.status, order.refunded_minor) == (OrderStatus.PARTIALLY_REFUNDED, 4000)
    assert_conserved()

    # The returned credit pays again.
    pay_with_store_credit(order=make_order(payee, unit_amount_minor=4000), code=returned.code, now=now)
    assert_conserved()


def test_the_sandbox_checkout_still_works_and_store_credit_is_not_a_hosted_method(payee):
    from payments.services.checkout import start_payment

    order = make_order(payee)
    with pytest.raises(DomainError) as refused:
        start_payment(order=order, provider_name="store_credit", now=timezone.now())
    assert "store credit code" in refused.value.message
    assert not order.payments.exists()


def test_a_buyer_sees_their_credits_by_email_only(client, payee):
    now = timezone.now()
    mine = issue_goodwill_credit(
        buyer_email="Buyer@Example.com",
        amount=Money(2500, "EUR"),
        expires_at=now + timedelta(days=30),
        actor=None,
        reason="x",
        now=now,
    )
    issue_goodwill_credit(
        buyer_email="someone@example.com",
        amount=Money(900, "EUR"),
        expires_at=now + timedelta(days=30),
        actor=None,
        reason="x",
        now=now,
    )
    url = reverse("checkout:store_credit")
    assert client.get(url).status_code == 200
    mail.outbox.clear()

    page = client.post(url, {"email": "buyer@example.com"}).content.decode()
    assert mine.code not in page  # never shown on the page
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["Buyer@Example.com"]
    assert mine.code in mail.outbox[0].body
    assert "€25.00" in mail.outbox[0].body
    assert "€9.00" not in mail.outbox[0].body

    # The same answer for an address with no credit, and no second e-mail within the interval.
    assert client.post(url, {"email": "nobody@example.com"}).content.decode() == page.replace(
        "buyer@example.com", "nobody@example.com"
    )
    client.post(url, {"email": "buyer@example.com"})
    assert len(mail.outbox) == 1


def test_the_refund_flow_gives_store_credit_and_the_ledger_agrees(payee, django_capture_on_commit_callbacks):
    """Through the refund service (method store credit): the refund credits `buyers:store_credit` and the
    credit row (with its code e-mailed) matches it; a second refund of the rest adds another credit."""
    from refunds.services import request_policy_refund

    order = paid_order(payee, unit_amount_minor=10000)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        refund = request_policy_refund(
            order=order, amount_minor=4000, method="store_credit", override_reason="test", now=timezone.now()
        )
    refund.refresh_from_db()
    assert refund.status == RefundStatus.SUCCEEDED
    credit = StoreCredit.objects.get(source_refund=refund)
    assert credit.amount_minor == refund.amount_minor
    assert [m.to for m in mail.outbox] == [[order.buyer_email]]
    assert credit.code in mail.outbox[0].body
    assert_conserved()
    # The credit pays a new order.
    pay_with_store_credit(
        order=make_order(payee, unit_amount_minor=credit.amount_minor), code=credit.code, now=timezone.now()
    )
    assert_conserved()
