"""Table-driven tests of the pure refund policy engine: each tier boundary exactly at it and one second
either side, force majeure, methods, goods (time since payment), JPY and a three-decimal currency."""

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from refunds.policy import ORIGINAL, STORE_CREDIT, TRANSFER, PolicyTerms, TierTerms, evaluate_refund

EVENT = datetime(2026, 12, 31, 20, 0, tzinfo=UTC)
PAID = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
S = timedelta(seconds=1)

POLICY = PolicyTerms(
    name="Standard",
    full_refund_until=timedelta(days=14),
    tiers=(
        TierTerms(until=timedelta(days=7), fee_bps=1000),  # 10 %
        TierTerms(until=timedelta(days=2), fee_bps=2500, fee_fixed_minor=200, currency="EUR"),  # 25 % + 2 EUR
    ),
    commission_returned=True,
    fee_to="payee",
    methods=(ORIGINAL, STORE_CREDIT),
)


def ticket(amount=10000, commission=1000, vat=210, event_at=EVENT):
    return SimpleNamespace(
        amount_minor=amount,
        commission_minor=commission,
        commission_vat_minor=vat,
        payee_share_minor=amount - commission - vat,
        event_starts_at=event_at,
    )


@pytest.mark.parametrize(
    ("before_event", "allowed", "fee", "back", "tier"),
    [
        (timedelta(days=14) + S, True, 0, 10000, "full"),
        (timedelta(days=14), True, 0, 10000, "full"),  # exactly at the boundary: still full
        (timedelta(days=14) - S, True, 1000, 9000, "tier 1"),
        (timedelta(days=7) + S, True, 1000, 9000, "tier 1"),
        (timedelta(days=7), True, 1000, 9000, "tier 1"),
        (timedelta(days=7) - S, True, 2700, 7300, "tier 2"),  # 25 % of 100.00 + 2.00
        (timedelta(days=2) + S, True, 2700, 7300, "tier 2"),
        (timedelta(days=2), True, 2700, 7300, "tier 2"),
        (timedelta(days=2) - S, False, 0, 0, "none"),
        (timedelta(0), False, 0, 0, "none"),
        (-timedelta(hours=1), False, 0, 0, "none"),  # the event has started
    ],
)
def test_event_tiers_at_each_boundary(before_event, allowed, fee, back, tier):
    quote = evaluate_refund(policy=POLICY, line=ticket(), amount_minor=10000, currency="EUR", now=EVENT - before_event)
    assert (quote.allowed, quote.fee_minor, quote.refundable_minor, quote.tier) == (allowed, fee, back, tier)
    assert quote.reason  # always a plain-language reason
    if allowed:
        assert quote.fee_minor + quote.commission_kept_minor + quote.refundable_minor == 10000


@pytest.mark.parametrize(
    "before_event", [timedelta(days=30), timedelta(days=3), timedelta(hours=1), -timedelta(days=1)]
)
def test_force_majeure_returns_everything_at_any_time(before_event):
    quote = evaluate_refund(
        policy=POLICY, line=ticket(), amount_minor=10000, currency="EUR", now=EVENT - before_event, force_majeure=True
    )
    assert (quote.allowed, quote.fee_minor, quote.refundable_minor, quote.commission_returned) == (True, 0, 10000, True)
    assert quote.tier == "force majeure"


@pytest.mark.parametrize(
    ("fee_bps", "amount", "currency", "fee"),
    [
        (1000, 10005, "EUR", 1001),  # 1000.5 -> half up
        (1000, 10004, "EUR", 1000),
        (333, 1000, "JPY", 33),  # 33.3 yen -> 33, never ×100
        (250, 1000, "JPY", 25),
        (1250, 1004, "JPY", 126),  # 125.5 -> 126
        (1000, 12345, "KWD", 1235),  # three decimals: 1.2345 KWD fils-exact, half up
    ],
)
def test_fee_rounding_half_up_and_zero_or_three_decimal_currencies(fee_bps, amount, currency, fee):
    terms = PolicyTerms(name="t", full_refund_until=timedelta(days=30), tiers=(TierTerms(timedelta(0), fee_bps),))
    line = ticket(amount=amount, commission=0, vat=0)
    quote = evaluate_refund(
        policy=terms, line=line, amount_minor=amount, currency=currency, now=EVENT - timedelta(days=1)
    )
    assert (quote.fee_minor, quote.refundable_minor) == (fee, amount - fee)


def test_fixed_fee_in_another_currency_does_not_apply():
    quote = evaluate_refund(
        policy=POLICY, line=ticket(), amount_minor=10000, currency="CZK", now=EVENT - timedelta(days=3)
    )
    assert quote.fee_minor == 2500


def test_fee_never_exceeds_the_amount():
    terms = PolicyTerms(
        name="t", full_refund_until=timedelta(days=30), tiers=(TierTerms(timedelta(0), 0, 5000, "EUR"),)
    )
    quote = evaluate_refund(
        policy=terms,
        line=ticket(amount=3000, commission=0, vat=0),
        amount_minor=3000,
        currency="EUR",
        now=EVENT - timedelta(days=1),
    )
    assert (quote.fee_minor, quote.refundable_minor) == (3000, 0)


def test_commission_not_returned_keeps_the_commission_part():
    terms = PolicyTerms(name="t", full_refund_until=timedelta(days=14), commission_returned=False)
    quote = evaluate_refund(
        policy=terms, line=ticket(), amount_minor=10000, currency="EUR", now=EVENT - timedelta(days=20)
    )
    assert (quote.commission_kept_minor, quote.refundable_minor, quote.commission_returned) == (1210, 8790, False)
    half = evaluate_refund(
        policy=terms, line=ticket(), amount_minor=5000, currency="EUR", now=EVENT - timedelta(days=20)
    )
    assert half.commission_kept_minor + half.refundable_minor == 5000
    assert half.commission_kept_minor == 605


@pytest.mark.parametrize(
    ("methods", "expected"),
    [
        ((ORIGINAL,), (ORIGINAL,)),
        ((STORE_CREDIT,), (STORE_CREDIT,)),
        ((ORIGINAL, STORE_CREDIT, TRANSFER), (ORIGINAL, STORE_CREDIT, TRANSFER)),
    ],
)
def test_each_method_is_reported(methods, expected):
    terms = PolicyTerms(name="t", full_refund_until=timedelta(days=14), methods=methods)
    quote = evaluate_refund(
        policy=terms, line=ticket(), amount_minor=100, currency="EUR", now=EVENT - timedelta(days=20)
    )
    assert quote.methods == expected


GOODS_POLICY = PolicyTerms(
    name="Goods",
    full_refund_until=timedelta(days=14),
    tiers=(TierTerms(until=timedelta(days=30), fee_bps=2000),),
)


@pytest.mark.parametrize(
    ("since_payment", "allowed", "fee"),
    [
        (timedelta(days=14) - S, True, 0),
        (timedelta(days=14), True, 0),
        (timedelta(days=14) + S, True, 2000),
        (timedelta(days=30), True, 2000),
        (timedelta(days=30) + S, False, 0),
    ],
)
def test_goods_count_time_since_payment(since_payment, allowed, fee):
    goods = ticket(event_at=None)
    quote = evaluate_refund(
        policy=GOODS_POLICY, line=goods, amount_minor=10000, currency="EUR", now=PAID + since_payment, paid_at=PAID
    )
    assert (quote.allowed, quote.fee_minor) == (allowed, fee)


def test_goods_not_paid_cannot_be_refunded():
    goods = ticket(event_at=None)
    quote = evaluate_refund(policy=GOODS_POLICY, line=goods, amount_minor=100, currency="EUR", now=PAID)
    assert not quote.allowed


def test_no_policy_means_a_full_refund():
    quote = evaluate_refund(policy=None, line=ticket(), amount_minor=10000, currency="EUR", now=EVENT)
    assert (quote.allowed, quote.fee_minor, quote.refundable_minor) == (True, 0, 10000)
