"""core.card_guard: what counts as a card number (PCI DSS 3.3.1), and the log filter that masks them."""

import io
import logging
import sys

import pytest

from core.card_guard import (
    CardNumberLogFilter,
    any_contains_card_number,
    contains_card_number,
    find_card_numbers,
    iter_scalars,
    luhn_valid,
    mask_card_numbers,
)


def with_check_digit(prefix: str) -> str:
    """`prefix` plus the digit that makes it Luhn-valid."""
    for digit in "0123456789":
        if luhn_valid(prefix + digit):
            return prefix + digit
    raise AssertionError("unreachable")


PAN_13 = "4222222222222"
PAN_15_AMEX = "378282246310005"
PAN_16 = "4111111111111111"
PAN_19 = with_check_digit("411111111111111111")


def test_luhn_reference_numbers():
    assert luhn_valid("4111111111111111")
    assert luhn_valid("5555555555554444")
    assert luhn_valid("378282246310005")
    assert not luhn_valid("4111111111111112")
    assert not luhn_valid("1234567812345678")


@pytest.mark.parametrize(
    "text",
    [
        PAN_13,
        PAN_15_AMEX,
        PAN_16,
        PAN_19,
        "5555555555554444",
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "4111 1111-1111 1111",
        "3782 822463 10005",  # Amex grouping 4-6-5
        "my card is 4111111111111111, please charge it",
        "card: 4111 1111 1111 1111 exp 12/25 cvc 123",
        "4111 1111 1111 1111 12/25",  # expiry right after the number, same separator
        "4111-1111-1111-1111-1225",  # expiry glued on with a dash: a sub-run still matches
        "Name: Jan Novak\nPAN 4111111111111111\nthanks",
        "(4111111111111111)",
        '{"pan":"4111111111111111"}',
        "first 4111111111111111 then 5555555555554444",
    ],
)
def test_detects_luhn_valid_13_to_19_digit_runs(text):
    assert contains_card_number(text)
    assert find_card_numbers(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "4111111111111112",  # Luhn-invalid
        "1234 5678 1234 5678",  # Luhn-invalid, grouped
        "411111111117",  # 12 digits, Luhn-valid: too short
        "41111111111111111115",  # 20 digits, Luhn-valid as a whole: one unbroken run longer than any PAN
        "411111111111111111111111111111",  # 30 digits containing a valid 16-digit prefix
        "0.4111111111111111",  # the fraction of a decimal
        "12.4111111111111111",
        "amount 0.4111111111111111 EUR",
        "550e8400-e29b-41d4-a716-446655440000",  # UUIDs, including ones whose digit groups are Luhn-valid
        "cf85c916-3f17-411a-a204-359179549849",
        "f4b62878-6324-4114-b689-95df9c67077b",
        "25180da4-1190-41bc-a9f8-501107865239",
        "/checkout/cf85c916-3f17-411a-a204-359179549849/return/",
        "CF85C916-3F17-411A-A204-359179549849",
        "sbx_ab4111111111111111cd0e9f8a7b6c5d",  # a hex id whose digits happen to form a PAN
        "evt_sbx_4111111111111111abcdef01",
        "2025-01-15T10:30:45.123456+00:00",  # timestamps
        "2025-01-15 10:30:45",
        "1736937000",
        "+420 777 123 456",  # phone number
        "order 12345, qty 2",
    ],
)
def test_does_not_flag_things_that_are_not_card_numbers(text):
    assert not contains_card_number(text), find_card_numbers(text)


def test_iter_scalars_walks_keys_values_and_numbers_but_not_booleans_or_null():
    data = {"a": [1, 2.5, "x", {"k": "v"}], "b": None, "c": True, "4111111111111111": 0}
    assert list(iter_scalars(data)) == ["a", "1", "2.5", "x", "k", "v", "b", "c", "4111111111111111", "0"]
    assert any_contains_card_number(iter_scalars({"lines": [{"unit_amount": 4111111111111111}]}))
    assert any_contains_card_number(iter_scalars({"metadata": {"4111 1111 1111 1111": "x"}}))
    assert not any_contains_card_number(iter_scalars({"amount": 0.4111111111111111, "ok": True}))


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("pan 4111111111111111 end", "pan **************** end"),
        ("pan 4111 1111 1111 1111 end", "pan **** **** **** **** end"),
        ("pan 4111-1111-1111-1111 end", "pan ****-****-****-**** end"),
        ("order 12345 and 4111111111111112", "order 12345 and 4111111111111112"),
    ],
)
def test_mask_card_numbers(text, masked):
    assert mask_card_numbers(text) == masked


def _record(msg, args=(), exc_info=None):
    return logging.LogRecord("tollgate.test", logging.WARNING, __file__, 1, msg, args, exc_info)


def test_log_filter_masks_message_args_and_exception_text():
    log_filter = CardNumberLogFilter()

    record = _record("buyer typed %s in %s", ("4111 1111 1111 1111", "description"))
    assert log_filter.filter(record) is True
    assert record.getMessage() == "buyer typed **** **** **** **** in description"
    assert "4111" not in record.getMessage()

    try:
        raise ValueError("bad value 4111-1111-1111-1111")
    except ValueError:
        record = _record("failed", exc_info=sys.exc_info())
    record.exc_text = logging.Formatter().formatException(record.exc_info)
    log_filter.filter(record)
    assert "4111-1111-1111-1111" not in record.exc_text
    assert "****-****-****-****" in record.exc_text

    plain = _record("nothing to hide %s", ("order 42",))
    log_filter.filter(plain)
    assert plain.getMessage() == "nothing to hide order 42"
    assert plain.args == ("order 42",)


def test_log_filter_survives_a_broken_format_string():
    record = _record("%s %s", ("only one 4111111111111111",))
    assert CardNumberLogFilter().filter(record) is True
    assert "4111111111111111" not in str(record.msg)


def test_configured_console_handler_masks_card_numbers():
    """The handler LOGGING installs on the root logger carries the filter: what it writes is masked."""
    handlers = [h for h in logging.getLogger().handlers if any(isinstance(f, CardNumberLogFilter) for f in h.filters)]
    assert handlers, "no root handler carries CardNumberLogFilter"
    handler = handlers[0]
    stream = io.StringIO()
    old_stream = handler.setStream(stream)
    try:
        logging.getLogger("tollgate.test").warning("payload had %s", "4111 1111 1111 1111")
    finally:
        handler.setStream(old_stream)
    output = stream.getvalue()
    assert "payload had **** **** **** ****" in output
    assert "4111" not in output
