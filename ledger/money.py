"""Money: integer minor units plus an ISO 4217 code. No floats anywhere.

`Decimal` appears only here, to parse input ("12.50") and to format output (babel).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from babel import Locale
from django.conf import settings

# ISO 4217 minor-unit exponents for every currency we may see. A zero-decimal amount is never x100.
CURRENCY_EXPONENTS: dict[str, int] = {
    "EUR": 2,
    "CZK": 2,
    "USD": 2,
    "GBP": 2,
    "PLN": 2,
    "HUF": 2,
    "CHF": 2,
    "SEK": 2,
    "NOK": 2,
    "DKK": 2,
    "RON": 2,
    "BGN": 2,
    "CAD": 2,
    "AUD": 2,
    "NZD": 2,
    "HKD": 2,
    "SGD": 2,
    "MXN": 2,
    "BRL": 2,
    "INR": 2,
    "TWD": 2,
    "ISK": 0,
    "JPY": 0,
    "KRW": 0,
    "CLP": 0,
    "VND": 0,
    "XOF": 0,
    "KWD": 3,
    "BHD": 3,
    "JOD": 3,
    "OMR": 3,
    "TND": 3,
}

# Largest amount we accept in one place, in minor units (10^15 ≈ a quadrillion cents): far above any real
# order, far below 2^63 so sums of many never overflow a BIGINT.
MAX_AMOUNT_MINOR = 10**15


class CurrencyError(ValueError):
    pass


class AmountError(ValueError):
    pass


def exponent(currency: str) -> int:
    try:
        return CURRENCY_EXPONENTS[currency]
    except KeyError:
        raise CurrencyError(f"Unknown currency {currency!r}") from None


def enabled_currencies() -> list[str]:
    return list(settings.TOLLGATE_ENABLED_CURRENCIES)


def is_enabled(currency: str) -> bool:
    return currency in settings.TOLLGATE_ENABLED_CURRENCIES


@dataclass(frozen=True, slots=True)
class Money:
    amount_minor: int
    currency: str

    def __post_init__(self) -> None:
        if type(self.amount_minor) is not int:
            raise AmountError(f"amount_minor must be an int, not {type(self.amount_minor).__name__}")
        exponent(self.currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    @classmethod
    def parse(cls, text: str, currency: str) -> Money:
        """'12.50' EUR -> 1250. More decimals than the currency has is an error, not a rounding."""
        exp = exponent(currency)
        try:
            value = Decimal(str(text).strip())
        except InvalidOperation:
            raise AmountError(f"{text!r} is not an amount") from None
        if not value.is_finite():
            raise AmountError(f"{text!r} is not an amount")
        # Bound first (comparisons are exact): below the bound every step here fits Decimal's 28-digit
        # context, so nothing is rounded; above it `scaleb` would round or overflow.
        if abs(value) > Decimal(MAX_AMOUNT_MINOR).scaleb(-exp):
            raise AmountError(f"{text!r} is too large")
        quantized = value.quantize(Decimal(1).scaleb(-exp))
        if quantized != value:
            raise AmountError(f"{currency} amounts have at most {exp} decimal places")
        return cls(int(quantized.scaleb(exp)), currency)

    def _check(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise CurrencyError(f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._check(other)
        return Money(self.amount_minor + other.amount_minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._check(other)
        return Money(self.amount_minor - other.amount_minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount_minor, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._check(other)
        return self.amount_minor < other.amount_minor

    def __le__(self, other: Money) -> bool:
        self._check(other)
        return self.amount_minor <= other.amount_minor

    def __gt__(self, other: Money) -> bool:
        self._check(other)
        return self.amount_minor > other.amount_minor

    def __ge__(self, other: Money) -> bool:
        self._check(other)
        return self.amount_minor >= other.amount_minor

    def __bool__(self) -> bool:
        return self.amount_minor != 0

    def as_decimal(self) -> Decimal:
        return Decimal(self.amount_minor).scaleb(-exponent(self.currency))

    def format(self, locale: str = "en") -> str:
        return format_money(self.amount_minor, self.currency, locale=locale)

    def __str__(self) -> str:
        return f"{self.as_decimal():.{exponent(self.currency)}f} {self.currency}"


def format_money(amount_minor: int, currency: str, *, locale: str = "en") -> str:
    """'€1,234.50', '¥1,235', '99,00 Kč': the locale's pattern with the currency's ISO exponent (babel's
    CLDR digits differ for some currencies, e.g. HUF and CZK cash rounding)."""
    exp = exponent(currency)
    value = Decimal(amount_minor).scaleb(-exp)
    pattern = copy.copy(Locale.parse(locale).currency_formats["standard"])
    pattern.frac_prec = (exp, exp)
    text = pattern.apply(value, locale, currency=currency, currency_digits=False)
    # Where the symbol is a code ("CZK99.00"), keep it apart from the digits with a no-break space.
    return re.sub(r"(?<=[A-Z]{3})(?=[-\d])|(?<=\d)(?=[A-Z]{3})", "\u00a0", text)


def allocate(total: int, weights: Sequence[int]) -> list[int]:
    """Split `total` minor units in proportion to non-negative integer `weights` (largest remainder).

    Parts add up to `total` exactly, each is >= 0 (for total >= 0), and each differs from its exact
    share by less than one minor unit. Ties in the remainder go to the earlier weight, so the result
    is deterministic.
    """
    if total < 0:
        return [-part for part in allocate(-total, weights)]
    if not weights:
        raise ValueError("allocate needs at least one weight")
    if any(w < 0 for w in weights):
        raise ValueError("weights must be >= 0")
    weight_sum = sum(weights)
    if weight_sum == 0:
        raise ValueError("weights must not all be zero")
    parts = [total * w // weight_sum for w in weights]
    remainders = [total * w % weight_sum for w in weights]
    leftover = total - sum(parts)
    order = sorted(range(len(weights)), key=lambda i: (-remainders[i], i))
    for i in order[:leftover]:
        parts[i] += 1
    return parts


def percent_of(amount_minor: int, basis_points: int) -> int:
    """`amount` x bps / 10000, rounded half-up (away from zero for halves), in integer arithmetic."""
    if amount_minor < 0:
        return -percent_of(-amount_minor, basis_points)
    numerator = amount_minor * basis_points
    quotient, remainder = divmod(numerator, 10000)
    if remainder * 2 >= 10000:
        quotient += 1
    return quotient


def round_half_up(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))
