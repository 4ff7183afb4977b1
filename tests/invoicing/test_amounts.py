"""Document arithmetic: VAT per rate group at document level (half-up), credit notes mirroring the
original's rounding. Pure functions, so Hypothesis can throw thousands of carts and refund sequences at them."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from invoicing.amounts import (
    CreditExceedsInvoice,
    GroupKey,
    credit_note_groups,
    group_gross,
    totals,
    vat_groups,
    vat_in_gross,
)

RATES = [0, 500, 700, 1000, 1200, 1900, 2000, 2100, 2300, 2550, 2700]
KEYS = st.builds(
    GroupKey,
    rate_bps=st.sampled_from(RATES),
    scheme=st.sampled_from(["domestic", "oss", "event_admission", "reverse_charge"]),
    tax_country=st.sampled_from(["CZ", "DE", "AT"]),
)
CART = st.lists(st.tuples(KEYS, st.integers(min_value=1, max_value=10**9)), min_size=1, max_size=12)


@pytest.mark.parametrize(
    ("gross", "rate", "vat"),
    [
        (12100, 2100, 2100),  # 121.00 at 21 % -> 21.00
        (100, 2100, 17),  # 1.00 at 21 %: 17.355 -> 17
        (1, 2100, 0),
        (11, 1000, 1),  # 11 × 10/110 = 1.0 exactly
        (105, 500, 5),  # 5.0 exactly
        (21, 2100, 4),  # 3.645 -> 4 (half-up territory: above .5)
        (2, 10000, 1),  # 100 %: 2 × 1/2 = 1 exactly
        (3, 10000, 2),  # 1.5 -> 2: half rounds up
        (1000, 0, 0),
        (-100, 2100, -17),  # negative mirrors positive (away from zero for halves)
    ],
)
def test_vat_in_gross_rounds_half_up(gross, rate, vat):
    assert vat_in_gross(gross, rate) == vat


def test_vat_in_gross_rounds_exact_halves_up():
    # 20 % of a gross of 9 is 9 / 6 = 1.5 exactly: half-up gives 2, and -2 for -9 (away from zero).
    assert vat_in_gross(9, 2000) == 2
    assert vat_in_gross(-9, 2000) == -2
    assert vat_in_gross(3, 10000) == 2  # 1.5


@settings(max_examples=400, deadline=None)
@given(CART)
def test_every_invoice_net_plus_vat_is_gross_and_vat_is_taken_once_per_group(cart):
    groups = vat_groups(cart)
    net, vat, gross = totals(groups)
    assert net + vat == gross == sum(amount for _, amount in cart)
    assert len({group.key for group in groups}) == len(groups)
    for group in groups:
        assert group.net_minor + group.vat_minor == group.gross_minor
        assert 0 <= group.vat_minor <= group.gross_minor
        # Within half a minor unit of the exact VAT of the group's gross (document-level rounding).
        exact2 = 2 * group.gross_minor * group.key.rate_bps
        assert abs(2 * group.vat_minor * (10000 + group.key.rate_bps) - exact2) <= 10000 + group.key.rate_bps


@st.composite
def cart_and_refunds(draw):
    """A cart, then a sequence of partial refunds: each takes a random part of what is still left per line."""
    cart = draw(CART)
    left = [amount for _, amount in cart]
    refunds = []
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        taking = []
        for index, remaining in enumerate(left):
            part = draw(st.integers(min_value=0, max_value=remaining))
            if part:
                taking.append((cart[index][0], part))
                left[index] -= part
        if taking:
            refunds.append(taking)
    if draw(st.booleans()):  # sometimes refund the rest, so the invoice is credited in full
        rest = [(cart[index][0], remaining) for index, remaining in enumerate(left) if remaining]
        if rest:
            refunds.append(rest)
            left = [0] * len(left)
    return cart, refunds, sum(left)


@settings(max_examples=400, deadline=None)
@given(cart_and_refunds())
def test_invoice_minus_credit_notes_is_what_the_buyer_kept(data):
    cart, refunds, kept = data
    invoice = vat_groups(cart)
    credited: dict[GroupKey, int] = {}
    notes = []
    for taking in refunds:
        note = credit_note_groups(original=invoice, credited_before=credited, crediting=group_gross(taking))
        for group in note:
            assert group.net_minor + group.vat_minor == group.gross_minor
            assert 0 <= group.vat_minor <= group.gross_minor
            credited[group.key] = credited.get(group.key, 0) + group.gross_minor
        notes.append(note)
    inv_net, inv_vat, inv_gross = totals(invoice)
    note_totals = [totals(note) for note in notes]
    # Gross: what the buyer paid less what was refunded, to the cent.
    assert inv_gross - sum(gross for _, _, gross in note_totals) == kept
    for group in invoice:
        credited_vat = sum(g.vat_minor for note in notes for g in note if g.key == group.key)
        credited_gross = credited.get(group.key, 0)
        remaining = group.gross_minor - credited_gross
        # What the credit notes took back is the rounding of the cumulative credited gross (never the sum of
        # separately rounded parts), and a group credited in full gives back exactly the invoice's VAT.
        expected = group.vat_minor if remaining == 0 else vat_in_gross(credited_gross, group.key.rate_bps)
        assert credited_vat == expected
    if kept == 0:
        assert inv_net == sum(net for net, _, _ in note_totals)
        assert inv_vat == sum(vat for _, vat, _ in note_totals)


def test_a_credit_note_cannot_take_more_than_the_group_charged():
    key = GroupKey(2100, "domestic", "CZ")
    invoice = vat_groups([(key, 1000)])
    with pytest.raises(CreditExceedsInvoice):
        credit_note_groups(original=invoice, credited_before={key: 600}, crediting={key: 401})
    other = GroupKey(1000, "domestic", "CZ")
    with pytest.raises(CreditExceedsInvoice):
        credit_note_groups(original=invoice, credited_before={}, crediting={other: 1})


def test_three_thirds_of_a_rounded_invoice_credit_its_vat_exactly():
    # 10.00 at 21 %: VAT 1.74 (173.55 -> 174). Three credit notes of 3.33, 3.33, 3.34 on their own would round
    # to 0.58 + 0.58 + 0.58 = 1.74 here, but 1.00 + 1.00 + 8.00 rounded alone gives 0.17 + 0.17 + 1.39 = 1.73:
    # the cumulative rounding gives 1.74 whatever the split.
    key = GroupKey(2100, "domestic", "CZ")
    invoice = vat_groups([(key, 1000)])
    assert invoice[0].vat_minor == 174
    credited: dict[GroupKey, int] = {}
    vats = []
    for part in (100, 100, 800):
        (note,) = credit_note_groups(original=invoice, credited_before=credited, crediting={key: part})
        credited[key] = credited.get(key, 0) + part
        vats.append(note.vat_minor)
    assert sum(vats) == 174
    assert [vat_in_gross(part, 2100) for part in (100, 100, 800)] == [17, 17, 139]  # 173 if rounded alone
