from django import template

from ledger.money import CurrencyError, format_money

register = template.Library()


@register.filter
def money(amount_minor, currency):
    """{{ line.amount_minor|money:order.currency }} -> '€12.50' (ISO exponent, never floats)."""
    if amount_minor is None or amount_minor == "":
        return ""
    try:
        return format_money(int(amount_minor), str(currency))
    except (CurrencyError, ValueError, TypeError):
        return f"{amount_minor} {currency}"


@register.filter
def bps_percent(bps):
    """1250 -> '12.5 %'."""
    if bps is None:
        return ""
    whole, rest = divmod(int(bps), 100)
    return f"{whole}.{rest:02d}".rstrip("0").rstrip(".") + " %"
