"""Commission arithmetic: shares + commission + VAT = gross, exactly (I7; RELIABILITY.md §6 row 18)."""

from __future__ import annotations

import os

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from commissions.rules import LineSplit, split_line_amount
from ledger.money import allocate, percent_of

# TOLLGATE_HYPOTHESIS_PROFILE=ci runs the 10k examples of row 18.
EXAMPLES = 10_000 if os.environ.get("TOLLGATE_HYPOTHESIS_PROFILE") == "ci" else 500

VAT_RATES = st.sampled_from([0, 1000, 1200, 1500, 2100, 2700])
gross_amounts = st.integers(min_value=1, max_value=10**12)
commission_rates = st.integers(min_value=0, max_value=10_000)


@settings(max_examples=EXAMPLES, deadline=None, print_blob=True)
@given(gross=gross_amounts, bps=commission_rates, vat_bps=VAT_RATES)
@example(gross=1, bps=10_000, vat_bps=2700)
@example(gross=1, bps=5000, vat_bps=2100)
@example(gross=10**12, bps=10_000, vat_bps=2100)
@example(gross=3, bps=9999, vat_bps=1000)
def test_split_parts_are_non_negative_and_add_up_to_the_gross(gross, bps, vat_bps):
    split = split_line_amount(amount_minor=gross, commission_bps=bps, commission_vat_bps=vat_bps)

    assert split.commission_minor >= 0
    assert split.commission_vat_minor >= 0
    assert split.payee_share_minor >= 0
    assert split.commission_minor + split.commission_vat_minor + split.payee_share_minor == gross


@settings(max_examples=EXAMPLES, deadline=None, print_blob=True)
@given(gross=gross_amounts, bps=commission_rates, vat_bps=VAT_RATES)
def test_split_rounds_commission_and_vat_half_up_once_when_they_fit(gross, bps, vat_bps):
    split = split_line_amount(amount_minor=gross, commission_bps=bps, commission_vat_bps=vat_bps)

    commission = percent_of(gross, bps)
    if commission + percent_of(commission, vat_bps) <= gross:
        assert split.commission_minor == commission
        assert split.commission_vat_minor == percent_of(commission, vat_bps)
        # each rounding is at most half a minor unit from the exact value
        assert abs(split.commission_minor * 10_000 - gross * bps) <= 5_000
        assert abs(split.commission_vat_minor * 10_000 - split.commission_minor * vat_bps) <= 5_000
    else:
        # capped (only at extreme rates): commission + VAT take the whole gross, the payee gets 0 or 1 unit
        assert split.commission_minor <= commission
        assert split.payee_share_minor <= 1


@settings(max_examples=EXAMPLES // 5, deadline=None, print_blob=True)
@given(
    gross=gross_amounts,
    weights=st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=50).filter(any),
    bps=commission_rates,
    vat_bps=VAT_RATES,
)
def test_an_order_split_over_up_to_50_payees_conserves_the_gross(gross, weights, bps, vat_bps):
    """Order gross -> lines by largest remainder -> each line split: every minor unit lands somewhere once."""
    lines = allocate(gross, weights)
    splits = [split_line_amount(amount_minor=line, commission_bps=bps, commission_vat_bps=vat_bps) for line in lines]

    shares = sum(s.payee_share_minor for s in splits)
    commission = sum(s.commission_minor for s in splits)
    vat = sum(s.commission_vat_minor for s in splits)
    assert shares + commission + vat == gross
    assert all(min(s.payee_share_minor, s.commission_minor, s.commission_vat_minor) >= 0 for s in splits)


@pytest.mark.parametrize(
    ("gross", "bps", "vat_bps", "expected"),
    [
        # 10 % of 258.00 = 25.80; 21 % VAT on it = 5.418 -> 5.42; the payee gets the rest.
        (25800, 1000, 2100, LineSplit(2580, 542, 22678)),
        (12900, 1000, 2100, LineSplit(1290, 271, 11339)),
        (1000, 0, 2100, LineSplit(0, 0, 1000)),
        (1000, 1500, 0, LineSplit(150, 0, 850)),
        (5, 1000, 2100, LineSplit(1, 0, 4)),  # 0.5 -> 1 (half-up); VAT 0.21 -> 0
        # 100 % commission with 21 % VAT cannot fit: capped so commission + VAT = gross
        (12100, 10_000, 2100, LineSplit(10000, 2100, 0)),
        (1, 10_000, 2100, LineSplit(1, 0, 0)),  # VAT 0.21 rounds to 0, so 100 % fits
    ],
)
def test_split_examples(gross, bps, vat_bps, expected):
    assert split_line_amount(amount_minor=gross, commission_bps=bps, commission_vat_bps=vat_bps) == expected


@pytest.mark.parametrize(
    ("gross", "bps", "vat_bps"),
    [(-1, 1000, 2100), (100, -1, 2100), (100, 10_001, 2100), (100, 1000, -1)],
)
def test_split_refuses_negative_amounts_and_rates_out_of_range(gross, bps, vat_bps):
    with pytest.raises(ValueError):
        split_line_amount(amount_minor=gross, commission_bps=bps, commission_vat_bps=vat_bps)
