"""Commission rules (issue 8): the pure arithmetic, which rule wins, validity, and the commission fixed on the
line at order creation (through the service, the API and the capture posting)."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from django.utils import timezone
from hypothesis import example, given, settings
from hypothesis import strategies as st

from commissions.models import CommissionRule
from commissions.rules import (
    FIXED_PER_LINE,
    FIXED_PER_ORDER,
    RuleTerms,
    compute_commission,
    compute_line_commissions,
    order_fixed_shares,
    split_commission,
)
from commissions.selectors import commission_for, commission_rule_for
from ledger.models import Account
from ledger.money import percent_of
from payments.models import LineKind, Order
from payments.providers.registry import get_provider
from payments.providers.sandbox import gateway
from payments.providers.sandbox.models import SandboxEvent
from payments.services.checkout import start_payment
from payments.services.orders import LineInput, create_order
from payments.webhooks.services import process_webhook_event, store_event
from tests.factories import PayeeFactory
from tests.payments.helpers import line, order_payload, post_order

EXAMPLES = 10_000 if os.environ.get("TOLLGATE_HYPOTHESIS_PROFILE") == "ci" else 300

VAT_RATES = st.sampled_from([0, 1000, 2100, 2700])
bounds = st.one_of(st.none(), st.integers(min_value=0, max_value=10**6))


@st.composite
def rule_terms(draw):
    low, high = draw(bounds), draw(bounds)
    if low is not None and high is not None and low > high:
        low, high = high, low
    return RuleTerms(
        percent_bps=draw(st.integers(min_value=0, max_value=10_000)),
        fixed_minor=draw(st.integers(min_value=0, max_value=10**6)),
        fixed_per=draw(st.sampled_from([FIXED_PER_LINE, FIXED_PER_ORDER])),
        min_minor=low,
        max_minor=high,
    )


# --- pure arithmetic -----------------------------------------------------------------------------------


@settings(max_examples=EXAMPLES, deadline=None, print_blob=True)
@given(
    amounts=st.lists(st.integers(min_value=1, max_value=10**10), min_size=1, max_size=20),
    terms=rule_terms(),
    vat_bps=VAT_RATES,
)
@example(amounts=[1], terms=RuleTerms(fixed_minor=500, min_minor=500), vat_bps=2100)
@example(amounts=[1, 1, 1], terms=RuleTerms(fixed_minor=1, fixed_per=FIXED_PER_ORDER), vat_bps=2700)
def test_commission_vat_and_payee_share_add_up_to_the_gross_and_respect_min_and_max(amounts, terms, vat_bps):
    commissions = compute_line_commissions(amounts_minor=amounts, rule=terms)
    for amount, commission in zip(amounts, commissions, strict=True):
        split = split_commission(amount_minor=amount, commission_minor=commission, commission_vat_bps=vat_bps)
        assert split.commission_minor + split.commission_vat_minor + split.payee_share_minor == amount
        assert min(split.commission_minor, split.commission_vat_minor, split.payee_share_minor) >= 0
        if terms.max_minor is not None:
            assert split.commission_minor <= terms.max_minor
        fits = terms.min_minor is None or terms.min_minor + percent_of(terms.min_minor, vat_bps) <= amount
        if terms.min_minor is not None and fits:
            assert split.commission_minor >= terms.min_minor
        if commission + percent_of(commission, vat_bps) <= amount:
            assert split.commission_minor == commission  # not capped when it fits


@settings(max_examples=EXAMPLES, deadline=None, print_blob=True)
@given(
    fixed=st.integers(min_value=0, max_value=10**9),
    amounts=st.lists(st.integers(min_value=0, max_value=10**10), min_size=1, max_size=50),
)
def test_a_per_order_fixed_amount_is_shared_exactly_across_the_lines(fixed, amounts):
    shares = order_fixed_shares(fixed_minor=fixed, amounts_minor=amounts)
    assert sum(shares) == fixed
    assert all(share >= 0 for share in shares)


@settings(max_examples=EXAMPLES, deadline=None, print_blob=True)
@given(
    fixed=st.integers(min_value=1, max_value=10**6),
    bps=st.integers(min_value=0, max_value=10_000),
    amounts=st.lists(st.integers(min_value=1, max_value=10**10), min_size=1, max_size=20),
)
def test_without_min_or_max_the_lines_carry_their_percent_plus_exactly_the_order_fixed_amount(fixed, bps, amounts):
    terms = RuleTerms(percent_bps=bps, fixed_minor=fixed, fixed_per=FIXED_PER_ORDER)
    commissions = compute_line_commissions(amounts_minor=amounts, rule=terms)
    assert sum(commissions) == sum(percent_of(a, bps) for a in amounts) + fixed


@pytest.mark.parametrize(
    ("amount", "terms", "share", "expected"),
    [
        (10000, RuleTerms(percent_bps=500), 0, 500),
        (10000, RuleTerms(percent_bps=500, fixed_minor=30), 0, 530),
        (10000, RuleTerms(percent_bps=500, fixed_minor=30, fixed_per=FIXED_PER_ORDER), 12, 512),
        (1000, RuleTerms(percent_bps=500, min_minor=100), 0, 100),
        (100000, RuleTerms(percent_bps=500, max_minor=2000), 0, 2000),
        (5, RuleTerms(percent_bps=1000), 0, 1),  # 0.5 -> 1, half-up
    ],
)
def test_compute_commission_examples(amount, terms, share, expected):
    assert compute_commission(amount_minor=amount, rule=terms, order_fixed_share_minor=share) == expected


def test_a_minimum_larger_than_the_line_is_capped_so_the_payee_share_is_never_negative():
    commission = compute_commission(amount_minor=100, rule=RuleTerms(min_minor=500))
    split = split_commission(amount_minor=100, commission_minor=commission, commission_vat_bps=2100)
    # The largest commission whose half-up VAT still fits: 83 + 17 (17.43) = 100; 84 + 18 would not.
    assert (split.commission_minor, split.commission_vat_minor, split.payee_share_minor) == (83, 17, 0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"percent_bps": 10_001},
        {"percent_bps": -1},
        {"fixed_minor": -1},
        {"min_minor": 10, "max_minor": 5},
        {"fixed_per": "week"},
    ],
)
def test_rule_terms_refuse_nonsense(kwargs):
    with pytest.raises(ValueError):
        RuleTerms(**kwargs)


# --- which rule wins -----------------------------------------------------------------------------------

YESTERDAY = timedelta(days=1)


def rule(*, payee=None, kind="", bps=1000, currency="", start=None, end=None, **fields) -> CommissionRule:
    now = timezone.now()
    return CommissionRule.objects.create(
        payee=payee,
        line_kind=kind,
        percent_bps=bps,
        currency=currency,
        valid_from=start or now - YESTERDAY,
        valid_to=end,
        **fields,
    )


@pytest.fixture
def seller(db):
    return PayeeFactory(legal_name="Autozvuk Praha s.r.o.", country="CZ")


@pytest.fixture
def all_levels(seller):
    """One rule at each level (and the payee's override), each with its own rate."""
    return {
        "payee+kind": rule(payee=seller, kind=LineKind.GOODS, bps=100),
        "payee": rule(payee=seller, bps=200),
        "kind": rule(kind=LineKind.GOODS, bps=400),
        "default rule": rule(bps=500),
    }


def applied(seller, kind=LineKind.GOODS, currency="EUR", at=None):
    return commission_for(payee=seller, line_kind=kind, currency=currency, at=at or timezone.now())


def test_precedence_1_payee_and_line_kind_rule_wins(seller, all_levels):
    seller.commission_bps = 300
    result = applied(seller)
    assert (result.rule, result.commission_bps, result.level) == (all_levels["payee+kind"], 100, "payee+kind")


def test_precedence_2_payee_rule_when_no_payee_and_kind_rule(seller, all_levels):
    seller.commission_bps = 300
    all_levels["payee+kind"].delete()
    result = applied(seller)
    assert (result.rule, result.commission_bps, result.level) == (all_levels["payee"], 200, "payee")


def test_precedence_2_payee_rule_also_covers_other_kinds(seller, all_levels):
    result = applied(seller, kind=LineKind.SERVICE)
    assert result.rule == all_levels["payee"]


def test_precedence_3_payee_override_before_kind_and_default_rules(seller, all_levels):
    all_levels["payee+kind"].delete()
    all_levels["payee"].delete()
    seller.commission_bps = 300
    result = applied(seller)
    assert (result.rule, result.commission_bps, result.level) == (None, 300, "payee override")


def test_precedence_4_line_kind_rule(seller, all_levels):
    all_levels["payee+kind"].delete()
    all_levels["payee"].delete()
    result = applied(seller)
    assert (result.rule, result.commission_bps, result.level) == (all_levels["kind"], 400, "kind")


def test_precedence_5_default_rule(seller, all_levels):
    for level in ["payee+kind", "payee", "kind"]:
        all_levels[level].delete()
    result = applied(seller)
    assert (result.rule, result.commission_bps, result.level) == (all_levels["default rule"], 500, "default rule")


def test_precedence_5_default_rule_for_a_kind_without_a_kind_rule(seller, all_levels):
    other = PayeeFactory()
    assert applied(other, kind=LineKind.EVENT_TICKET).rule == all_levels["default rule"]


def test_precedence_6_platform_setting_when_no_rule(seller, settings):
    settings.TOLLGATE_DEFAULT_COMMISSION_BPS = 1234
    result = applied(seller)
    assert (result.rule, result.commission_bps, result.level) == (None, 1234, "platform default")


def test_another_payees_rule_never_applies(seller):
    rule(payee=PayeeFactory(), bps=50)
    assert applied(seller).rule is None


def test_same_scope_in_force_twice_takes_the_latest_start(seller):
    now = timezone.now()
    rule(payee=seller, bps=200, start=now - timedelta(days=10))
    latest = rule(payee=seller, bps=250, start=now - timedelta(days=2))
    assert commission_rule_for(payee=seller, line_kind=LineKind.GOODS, currency="EUR", at=now) == latest


def test_same_scope_prefers_the_rule_in_the_orders_currency(seller):
    in_eur = rule(payee=seller, bps=200, currency="EUR", fixed_minor=30, start=timezone.now() - timedelta(days=9))
    rule(payee=seller, bps=250)
    assert applied(seller).rule == in_eur


# --- validity and currency -----------------------------------------------------------------------------


def test_a_rule_starting_tomorrow_is_not_used(seller):
    rule(payee=seller, bps=200, start=timezone.now() + timedelta(days=1))
    assert applied(seller).rule is None


def test_an_expired_rule_is_not_used(seller):
    now = timezone.now()
    rule(payee=seller, bps=200, start=now - timedelta(days=10), end=now - timedelta(days=1))
    assert applied(seller).rule is None


def test_valid_to_is_exclusive_and_valid_from_inclusive(seller):
    now = timezone.now()
    ending = rule(payee=seller, bps=200, start=now - timedelta(days=10), end=now)
    starting = rule(payee=seller, bps=300, start=now)
    assert applied(seller, at=now).rule == starting
    assert applied(seller, at=now - timedelta(microseconds=1)).rule == ending


def test_an_order_in_another_currency_falls_back_to_the_next_level(seller):
    rule(payee=seller, bps=200, currency="CZK", fixed_minor=500)
    kind_rule = rule(kind=LineKind.GOODS, bps=400)
    assert applied(seller, currency="EUR").rule == kind_rule
    assert applied(seller, currency="CZK").commission_bps == 200


# --- fixed on the line at order creation ---------------------------------------------------------------


def make_order(lines, *, currency="EUR", now=None):
    return create_order(currency=currency, lines=lines, buyer_email="buyer@example.com", now=now or timezone.now())


def goods(payee, amount, quantity=1, kind=LineKind.GOODS):
    return LineInput(payee_id=payee.pk, description="Amplifier", quantity=quantity, unit_amount_minor=amount, kind=kind)


def test_the_order_line_records_the_rule_and_its_commission(seller):
    used = rule(payee=seller, bps=500, currency="EUR", fixed_minor=30)
    order_line = make_order([goods(seller, 10000)]).lines.get()
    # 5 % of 100.00 + 0.30 = 5.30; VAT 21 % = 1.11 (half-up)
    assert order_line.commission_rule == used
    assert order_line.commission_bps == 500
    assert (order_line.commission_minor, order_line.commission_vat_minor, order_line.payee_share_minor) == (
        530,
        111,
        9359,
    )


def test_without_rules_the_payee_override_and_the_platform_default_still_apply(seller):
    reduced = PayeeFactory(commission_bps=850)
    order = make_order([goods(seller, 25800), goods(reduced, 999)])
    rows = list(order.lines.order_by("position"))
    assert [(r.commission_rule, r.commission_bps, r.commission_minor) for r in rows] == [
        (None, 1000, 2580),
        (None, 850, 85),
    ]


def test_changing_or_ending_the_rule_later_does_not_change_the_line(seller):
    used = rule(payee=seller, bps=500)
    order_line = make_order([goods(seller, 10000)]).lines.get()
    before = (order_line.commission_bps, order_line.commission_minor, order_line.commission_vat_minor)

    used.percent_bps = 2000
    used.valid_to = timezone.now()
    used.save()

    order_line.refresh_from_db()
    assert (order_line.commission_bps, order_line.commission_minor, order_line.commission_vat_minor) == before
    assert order_line.commission_rule == used
    assert make_order([goods(seller, 10000)]).lines.get().commission_rule is None


def test_a_per_order_fixed_amount_is_shared_across_the_payees_lines_by_amount(seller):
    rule(payee=seller, bps=0, currency="EUR", fixed_minor=100, fixed_per="order")
    other = PayeeFactory()
    order = make_order([goods(seller, 3000), goods(other, 5000), goods(seller, 1000)])
    rows = {r.position: r for r in order.lines.all()}
    assert (rows[1].commission_minor, rows[3].commission_minor) == (75, 25)
    assert rows[2].commission_rule is None
    assert rows[2].commission_minor == 500


def test_min_and_max_clamp_each_line(seller):
    rule(payee=seller, bps=1000, currency="EUR", min_minor=200, max_minor=1000)
    order = make_order([goods(seller, 500), goods(seller, 5000), goods(seller, 50000)])
    assert [r.commission_minor for r in order.lines.order_by("position")] == [200, 500, 1000]


def test_the_rule_in_force_when_the_order_was_created_is_used(seller):
    now = timezone.now()
    rule(payee=seller, bps=500, start=now - timedelta(days=10), end=now)
    rule(payee=seller, bps=700, start=now)
    earlier = make_order([goods(seller, 10000)], now=now - timedelta(hours=1)).lines.get()
    later = make_order([goods(seller, 10000)], now=now).lines.get()
    assert (earlier.commission_bps, later.commission_bps) == (500, 700)


def test_the_order_api_gives_the_rules_commission(api, seller):
    rule(payee=seller, kind=LineKind.SERVICE, bps=500, currency="EUR", fixed_minor=30)
    payload = order_payload(seller, lines=[line(seller, kind="service", unit_amount=10000), line(seller)])
    response = post_order(api, payload)

    assert response.status_code == 201, response.content
    lines = response.json()["lines"]
    assert [(x["commission_bps"], x["commission"], x["commission_vat"], x["payee_share"]) for x in lines] == [
        (500, 530, 111, 9359),
        (1000, 1290, 271, 11339),  # goods: the platform default
    ]


def test_the_order_api_in_a_currency_the_rule_does_not_match_uses_the_next_level(api, seller):
    rule(payee=seller, bps=500, currency="CZK", fixed_minor=1000)
    response = post_order(api, order_payload(seller))
    assert response.status_code == 201, response.content
    assert response.json()["lines"][0]["commission_bps"] == 1000
    assert Order.objects.get().lines.get().commission_rule is None


def test_the_capture_posts_the_lines_fixed_commission(seller):
    rule(payee=seller, bps=500, currency="EUR", fixed_minor=30, min_minor=100)
    order = make_order([goods(seller, 10000), goods(seller, 999, quantity=3)])
    CommissionRule.objects.update(percent_bps=3000)  # a later edit changes nothing already fixed
    now = timezone.now()
    payment = start_payment(order=order, provider_name="sandbox", now=now)
    session = gateway.get_session(payment.provider_ref)
    gateway.buyer_pays(str(session.token), now=now)
    payload = SandboxEvent.objects.filter(session=session).latest("pk").payload
    event = store_event(
        provider_name="sandbox", event=get_provider("sandbox").interpret_event(payload=payload), now=now
    )
    assert process_webhook_event(webhook_event_id=event.pk, now=now) == "processed"

    lines = list(order.lines.all())
    commission = Account.objects.get(code="platform:commission", currency="EUR")
    vat = Account.objects.get(code="platform:vat_payable", currency="EUR")
    assert commission.balance_minor == sum(r.commission_minor for r in lines) == 530 + 180
    assert vat.balance_minor == sum(r.commission_vat_minor for r in lines)
