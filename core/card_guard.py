"""Refuse anything that looks like a payment card number, and keep such numbers out of logs.

PCI DSS 3.3.1/ASVS 7.1.1: we never accept, store or log a PAN. A "card number" is a run of 13–19 digits,
optionally grouped by single spaces or dashes, that passes the Luhn check. The check is applied to every
string and integer in a request (keys included), so it also catches a PAN sent as a JSON number.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator

# A run of digit groups joined by single spaces or dashes ("4111 1111-1111 1111", "4111111111111111").
# Not after "<digit>." either: the fraction of a decimal number is never a card number. Not glued to a
# letter or underscore either: digits inside an identifier ("sbx_3f9e…", a hex digest) are part of it.
_DIGIT_RUN = re.compile(r"(?<![0-9A-Za-z_])(?<![0-9]\.)[0-9]+(?:[ \-][0-9]+)*(?![0-9A-Za-z_])")
_GROUP = re.compile(r"[0-9]+")
# UUIDs (order tokens, sandbox sessions) are in our own URLs and payloads; their dash-separated digit
# groups can add up to a Luhn-valid 13–19 digits (about 1 in 400 random UUIDs did), so they are skipped.
_UUID = re.compile(r"(?<![0-9A-Za-z])[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}(?![0-9A-Za-z])")


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def find_card_numbers(text: str) -> list[tuple[int, int]]:
    """Spans of card-like numbers in `text`.

    A single unbroken run counts only when it is 13–19 digits long (a 25-digit reference is not a card
    number). In a run of separated groups, any consecutive groups totalling 13–19 digits count, so
    "4111 1111 1111 1111 12/25" is caught even though an expiry follows. Digits glued to letters and
    UUIDs are parts of identifiers, not card numbers.
    """
    spans: list[tuple[int, int]] = []
    text = _UUID.sub(lambda m: "x" * len(m.group(0)), text)  # same length: spans stay valid for the original
    for run in _DIGIT_RUN.finditer(text):
        groups = [(m.start() + run.start(), m.end() + run.start()) for m in _GROUP.finditer(run.group(0))]
        for first in range(len(groups)):
            digits = ""
            for last in range(first, len(groups)):
                digits += text[groups[last][0] : groups[last][1]]
                if len(digits) > 19:
                    break
                if len(digits) >= 13 and luhn_valid(digits):
                    spans.append((groups[first][0], groups[last][1]))
    return spans


def contains_card_number(text: str) -> bool:
    if len(text) < 13:
        return False
    return bool(find_card_numbers(text))


def iter_scalars(value: object) -> Iterator[str]:
    """Every string/number inside a parsed JSON-like structure, keys included."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from iter_scalars(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from iter_scalars(item)
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int | float | str):
        yield str(value)


def any_contains_card_number(values: Iterable[str]) -> bool:
    return any(contains_card_number(v) for v in values)


def mask_card_numbers(text: str) -> str:
    spans = find_card_numbers(text)
    if not spans:
        return text
    chars = list(text)
    for start, end in spans:
        for i in range(start, end):
            if chars[i].isdigit():
                chars[i] = "*"
    return "".join(chars)


class CardNumberLogFilter(logging.Filter):
    """Masks card-like numbers in every log record that passes through a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not drop the record silently
            message = str(record.msg)
        masked = mask_card_numbers(message)
        if masked != message:
            record.msg = masked
            record.args = None
        if record.exc_text:
            record.exc_text = mask_card_numbers(record.exc_text)
        return True
