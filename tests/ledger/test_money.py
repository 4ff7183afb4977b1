"""Money arithmetic (DESIGN.md §3): exact splits, half-up percentages, ISO exponents, parsing and formatting."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal

import pytest
from babel.numbers import parse_decimal
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ledger.money import (
    MAX_AMOUNT_MINOR,
    AmountError,
    CurrencyError,
    Money,
    allocate,
    exponent,
    format_money,
    percent_of,
)

MONEY = settings.get_profile("tollgate-money")

totals = st.integers(min_value=0, max_value=10**12)
weight_lists = st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=50).filter(any)


# --- allocate -------------------------------------------------------------------------------------------


@MONEY
@given(total=totals, weights=weight_lists)
@example(total=1, weights=[1, 1])
@example(total=10**12, weights=[10_000] * 50)
@example(total=7, weights=[0, 0, 3, 0])
def test_allocate_parts_add_up_are_non_negative_and_within_one_unit_of_the_exact_share(total, weights):
    parts = allocate(total, weights)

    weight_sum = sum(weights)
    assert len(parts) == len(weights)
    assert sum(parts) == total
    assert all(part >= 0 for part in parts)
    for part, weight in zip(parts, weights, strict=True):
        # |part - total*w/W| < 1, in integers: |part*W - total*w| < W.
        assert abs(part * weight_sum - total * weight) < weight_sum
    assert allocate(total, list(weights)) == parts  # deterministic


@MONEY
@given(total=totals, weights=weight_lists)
def test_allocate_of_a_negative_total_mirrors_the_positive_one(total, weights):
    negative = allocate(-total, weights)

    assert negative == [-part for part in allocate(total, weights)]
    assert sum(negative) == -total
    assert all(part <= 0 for part in negative)


@pytest.mark.parametrize(
    ("total", "weights", "expected"),
    [
        (100, [1, 1, 1], [34, 33, 33]),  # the leftover cent goes to the earliest of equal remainders
        (-100, [1, 1, 1], [-34, -33, -33]),
        (1, [1, 1], [1, 0]),
        (5, [0, 1, 0], [0, 5, 0]),
        (0, [3, 7], [0, 0]),
        (10, [1, 2, 3, 4], [1, 2, 3, 4]),
        (101, [5000, 3000, 2000], [51, 30, 20]),  # remainders .5, .3, .2: the largest takes the unit
    ],
)
def test_allocate_examples(total, weights, expected):
    assert allocate(total, weights) == expected


@pytest.mark.parametrize("weights", [[], [0], [0, 0, 0], [1, -1], [-1]])
def test_allocate_refuses_weights_that_cannot_split(weights):
    with pytest.raises(ValueError):
        allocate(100, weights)


# --- percent_of -----------------------------------------------------------------------------------------


def _half_up_reference(amount: int, bps: int) -> int:
    exact = Decimal(amount * bps) / Decimal(10_000)  # exact: dividing by a power of ten
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@MONEY
@given(amount=st.integers(min_value=-(10**12), max_value=10**12), bps=st.integers(min_value=0, max_value=10_000))
@example(amount=5, bps=1000)
@example(amount=-5, bps=1000)
@example(amount=15, bps=1000)
@example(amount=25, bps=1000)
def test_percent_of_is_half_up_like_decimal(amount, bps):
    assert percent_of(amount, bps) == _half_up_reference(amount, bps)


@pytest.mark.parametrize(
    ("amount", "bps", "expected"),
    [
        (5, 1000, 1),  # 0.5 -> 1 (half-up, not banker's 0)
        (25, 1000, 3),  # 2.5 -> 3 (banker's would give 2)
        (-5, 1000, -1),  # halves round away from zero
        (14, 1000, 1),
        (25800, 1000, 2580),
        (2580, 2100, 542),  # 541.8
        (12345, 0, 0),
        (12345, 10_000, 12345),
    ],
)
def test_percent_of_examples(amount, bps, expected):
    assert percent_of(amount, bps) == expected


# --- Money: exponents, parse, str, format --------------------------------------------------------------


@pytest.mark.parametrize(("currency", "expected"), [("EUR", 2), ("CZK", 2), ("HUF", 2), ("JPY", 0), ("KWD", 3)])
def test_iso_exponents(currency, expected):
    assert exponent(currency) == expected


def _number_in(formatted: str, locale: str) -> Decimal:
    """The number in a babel-formatted amount ('-€1,234.50' -> Decimal('-1234.50'))."""
    return parse_decimal(re.sub(r"[^\d.,\-]", "", formatted), locale=locale)


@MONEY
@given(
    amount=st.integers(min_value=-MAX_AMOUNT_MINOR, max_value=MAX_AMOUNT_MINOR),
    currency=st.sampled_from(["EUR", "JPY", "KWD"]),
)
@example(amount=5, currency="EUR")
@example(amount=-1, currency="KWD")
@example(amount=MAX_AMOUNT_MINOR, currency="JPY")
def test_parse_round_trips_through_str_and_format(amount, currency):
    money = Money(amount, currency)

    number, code = str(money).split(" ")
    assert code == currency
    # str shows exactly the currency's decimals: never JPY x100, always 3 places for KWD.
    assert len(number.partition(".")[2]) == exponent(currency)
    assert Money.parse(number, currency) == money
    assert Money.parse(str(money.as_decimal()), currency) == money
    assert Money.parse(str(_number_in(money.format("en"), "en")), currency) == money


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("12.50", "EUR", 1250),
        ("12.5", "EUR", 1250),
        (" 12.50 ", "EUR", 1250),
        ("0.01", "EUR", 1),
        ("-3.10", "CZK", -310),
        ("12.500", "EUR", 1250),  # trailing zeros are not extra precision
        ("1200", "JPY", 1200),  # zero-decimal: never x100
        ("1200.0", "JPY", 1200),
        ("12.345", "KWD", 12345),
        ("1", "KWD", 1000),
    ],
)
def test_parse_examples(text, currency, minor):
    assert Money.parse(text, currency) == Money(minor, currency)


@pytest.mark.parametrize(
    ("text", "currency"),
    [
        ("12.5", "JPY"),  # JPY has no minor unit
        ("0.5", "JPY"),
        ("12.505", "EUR"),  # more decimals than EUR has: an error, not a rounding
        ("12.3456", "KWD"),
        ("abc", "EUR"),
        ("", "EUR"),
        ("NaN", "EUR"),
        ("Infinity", "EUR"),
        ("12,50", "EUR"),  # a locale's decimal comma is not parsed as a dot
        # beyond Decimal's 28-digit context: must not be silently rounded to a whole amount
        ("0.120000000000000000000000000001", "EUR"),
        ("1234567890123456789012345678.91", "EUR"),
        ("1e999999", "EUR"),  # absurd magnitudes are refused, not turned into a million-digit int
    ],
)
def test_parse_refuses_what_is_not_an_exact_amount(text, currency):
    with pytest.raises(AmountError):
        Money.parse(text, currency)


def test_parse_accepts_the_largest_amount_and_refuses_one_minor_unit_more():
    assert Money.parse("10000000000000.00", "EUR") == Money(MAX_AMOUNT_MINOR, "EUR")
    with pytest.raises(AmountError):
        Money.parse("10000000000000.01", "EUR")


def test_unknown_currency_is_refused():
    with pytest.raises(CurrencyError):
        Money.parse("1.00", "XXX")
    with pytest.raises(CurrencyError):
        Money(100, "EURO")


@pytest.mark.parametrize("amount", [1.5, Decimal("1.50"), "150", True])
def test_money_holds_only_integer_minor_units(amount):
    with pytest.raises(AmountError):
        Money(amount, "EUR")


def test_arithmetic_and_comparison_within_one_currency():
    a, b = Money(1250, "EUR"), Money(75, "EUR")

    assert a + b == Money(1325, "EUR")
    assert a - b == Money(1175, "EUR")
    assert -b == Money(-75, "EUR")
    assert b < a
    assert b <= a
    assert a > b
    assert a >= b
    assert not Money.zero("EUR")
    assert Money(1, "JPY")


@pytest.mark.parametrize(
    "operation",
    [
        lambda a, b: a + b,
        lambda a, b: a - b,
        lambda a, b: a < b,
        lambda a, b: a <= b,
        lambda a, b: a > b,
        lambda a, b: a >= b,
    ],
)
def test_mixing_currencies_raises(operation):
    with pytest.raises(CurrencyError):
        operation(Money(100, "EUR"), Money(100, "CZK"))
    with pytest.raises(CurrencyError):
        operation(Money(100, "JPY"), Money(100, "KWD"))


def test_combining_money_with_a_number_raises():
    with pytest.raises(TypeError):
        Money(100, "EUR") + 1


@pytest.mark.parametrize(
    ("amount", "currency", "locale", "expected"),
    [
        (123450, "EUR", "en", "€1,234.50"),
        (-123450, "EUR", "en", "-€1,234.50"),
        (5, "EUR", "en", "€0.05"),
        (123450, "EUR", "de_DE", "1.234,50\xa0€"),
        (1235, "JPY", "en", "¥1,235"),  # zero-decimal: no ".00", never x100
        (1200, "JPY", "en", "¥1,200"),
        (9900, "CZK", "cs_CZ", "99,00\xa0Kč"),
        (123456789, "CZK", "cs_CZ", "1\xa0234\xa0567,89\xa0Kč"),  # ISO's 2 decimals, not CLDR cash rounding
        (123456, "HUF", "hu_HU", "1\xa0234,56\xa0Ft"),
        (1234500, "KWD", "en", "KWD\xa01,234.500"),
    ],
)
def test_format_money_examples(amount, currency, locale, expected):
    assert format_money(amount, currency, locale=locale) == expected
    assert Money(amount, currency).format(locale) == expected
