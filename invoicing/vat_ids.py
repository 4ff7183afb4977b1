"""VAT identification numbers: format and check digits with python-stdnum, VIES only where configured.

`check_vat_id` never needs the network: a number with a valid format and check digits is treated as valid.
When `settings.TOLLGATE_VIES_ENABLED` is true it also asks the EU's VIES service
(`stdnum.eu.vat.check_vies`). That needs a SOAP client (zeep or suds), which is not a dependency of this
project; without one, or when VIES does not answer, the number stays format-valid and is flagged
"not confirmed with VIES". Only a definite "invalid" answer from VIES makes it invalid.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from stdnum.eu import vat as eu_vat
from stdnum.exceptions import ValidationError as StdnumValidationError

logger = logging.getLogger(__name__)

NOT_CONFIRMED = "not confirmed with VIES"


@dataclass(frozen=True)
class VatIdCheck:
    number: str  # compact form, e.g. "CZ25596641"; the input as given when invalid
    valid: bool
    vies_confirmed: bool = False
    note: str = ""


def compact_vat_id(value: str) -> str:
    return eu_vat.compact(value or "")


def is_valid_vat_id(value: str) -> bool:
    """Format and check digits of an EU VAT id with its country prefix (offline)."""
    return bool(value) and eu_vat.is_valid(value)


def vies_lookup(number: str) -> bool | None:
    """True/False from VIES, or None when it cannot be asked (no SOAP client, network, service down)."""
    try:
        result = eu_vat.check_vies(number, timeout=settings.TOLLGATE_VIES_TIMEOUT_SECONDS)
    except Exception:  # noqa: BLE001 - VIES is optional; any failure means "not confirmed"
        logger.warning("VIES lookup failed for a VAT id", exc_info=True)
        return None
    return bool(result["valid"])


def check_vat_id(value: str) -> VatIdCheck:
    if not value:
        return VatIdCheck(number="", valid=False, note="no VAT id")
    try:
        number = eu_vat.validate(value)
    except StdnumValidationError as exc:
        return VatIdCheck(number=value, valid=False, note=str(exc))
    if not settings.TOLLGATE_VIES_ENABLED:
        return VatIdCheck(number=number, valid=True, note=NOT_CONFIRMED)
    answer = vies_lookup(number)
    if answer is None:
        return VatIdCheck(number=number, valid=True, note=NOT_CONFIRMED)
    if answer:
        return VatIdCheck(number=number, valid=True, vies_confirmed=True)
    return VatIdCheck(number=number, valid=False, note="rejected by VIES")
