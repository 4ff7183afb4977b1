"""Every POST we send to Stripe carries an Idempotency-Key derived from one of our rows, and a retry reuses
it (RELIABILITY §6 row 14), checked at the fake over a run that touches every kind of POST: onboarding
(account, links), checkout, expiring a checkout, a refund, a payout's transfer and its reversal."""

import re

import pytest
from django.utils import timezone

from commissions.payouts import create_payout, reverse_payout, send_payout
from commissions.services import start_stripe_onboarding
from ledger import accounts
from ledger.money import Money
from ledger.services import credit, debit, post_transaction
from payments.models import PaymentStatus
from payments.services.orders import cancel_order
from refunds.services import request_refund
from tests.payments.stripe.helpers import assert_conserved, pay_and_return, start_stripe_payment, stripe_order

pytestmark = pytest.mark.django_db

POST_PATHS = [
    r"/v1/accounts",
    r"/v1/account_links",
    r"/v1/checkout/sessions",
    r"/v1/checkout/sessions/[^/]+/expire",
    r"/v1/refunds",
    r"/v1/transfers",
    r"/v1/transfers/[^/]+/reversals",
]


@pytest.mark.parametrize("with_faults", [False, True], ids=["clean", "every_post_fails_once_with_500"])
def test_every_post_carries_a_key_derived_from_its_row_and_retries_reuse_it(
    client, payee, fake_stripe, django_capture_on_commit_callbacks, with_faults
):
    if with_faults:
        for path in POST_PATHS:
            fake_stripe.fail(path, "500", times=1)
    capture = django_capture_on_commit_callbacks
    now = timezone.now()

    for _ in range(2):
        start_stripe_onboarding(
            payee=payee, return_url="http://testserver/r/", refresh_url="http://testserver/f/", now=now
        )
    payee.refresh_from_db()

    paid = stripe_order(payee)
    payment = start_stripe_payment(paid)
    with capture(execute=True):
        pay_and_return(client, fake_stripe, payment)
    paid.refresh_from_db()
    with capture(execute=True):
        refund = request_refund(order=paid, amount_minor=4000, reason="requested_by_customer", now=now)

    canceled = stripe_order(payee)
    abandoned = start_stripe_payment(canceled)
    with capture(execute=True):
        cancel_order(order=canceled, now=now)
    abandoned.refresh_from_db()
    assert abandoned.status == PaymentStatus.CANCELED
    assert fake_stripe.objects[abandoned.provider_ref]["status"] == "expired"

    share = Money(5000, "EUR")
    post_transaction(
        idempotency_key="release:test",
        kind="release",
        entries=[debit(accounts.payee_pending(payee.pk), share), credit(accounts.payee_available(payee.pk), share)],
        occurred_at=now,
        memo="released for the test",
    )
    payout = create_payout(payee=payee, amount=share, now=now)
    payout = send_payout(payout_id=payout.pk, now=now)
    reverse_payout(payout_id=payout.pk, amount=Money(1000, "EUR"), now=now)

    expected = {
        f"tollgate-payee-{payee.pk}-account",
        f"tollgate-payee-{payee.pk}-link-1",
        f"tollgate-payee-{payee.pk}-link-2",
        f"tollgate-payment-{payment.pk}",
        f"tollgate-refund-{refund.pk}",
        f"tollgate-payment-{abandoned.pk}",
        f"tollgate-payment-{abandoned.pk}-expire",
        f"tollgate-payout-{payout.pk}",
        f"tollgate-payout-{payout.pk}-reversal-0",
    }
    posts = fake_stripe.posts()
    assert all(r.idempotency_key for r in posts), [r.path for r in posts if not r.idempotency_key]
    assert {r.idempotency_key for r in posts} == expected
    assert all(len(key) <= 255 for key in expected)
    # Every kind of POST was made, each key used by one request only unless it was a retry of a failure.
    assert {next(p for p in POST_PATHS if re.fullmatch(p, r.path)) for r in posts} == set(POST_PATHS)
    for key in expected:
        same = [r for r in posts if r.idempotency_key == key]
        assert [r.status for r in same][-1] == 200, (key, same)
        assert all(r.status == 500 for r in same[:-1]), (key, same)
        assert len({r.path for r in same}) == 1
    if with_faults:
        retried = {r.idempotency_key for r in posts if r.status == 500}
        assert len(retried) == len(POST_PATHS)  # one failure per endpoint, each retried with its own key
    # Each object exists once at Stripe, however many requests it took.
    assert len(fake_stripe.of_type("account")) == 1
    assert len(fake_stripe.of_type("checkout.session")) == 2
    assert len(fake_stripe.of_type("refund")) == 1
    assert len(fake_stripe.of_type("transfer")) == 1
    assert_conserved(fake_stripe)
