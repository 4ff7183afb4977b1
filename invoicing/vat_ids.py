"""VAT identification numbers: format and check digits with python-stdnum, VIES only where configured.

`check_vat_id` never needs the network: a number with a valid format and check digits is treated as valid.
When `settings.TOLLGATE_VIES_ENABLED` is true it also asks the EU's VIES service through its REST API
(`GET {TOLLGATE_VIES_URL}/ms/<country>/vat/<number>`, no key needed; Greece is "EL" there as in the number).
When VIES cannot answer (network, timeout, a member state's system unavailable, anything unexpected) the
number stays format-valid and is flagged "not confirmed with VIES": VIES is never required. Only a definite
"invalid" answer from VIES makes it invalid.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import requests
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


# VIES answers these when it could ask the member state; anything else (MS_UNAVAILABLE, TIMEOUT,
# SERVICE_UNAVAILABLE, MS_MAX_CONCURRENT_REQ, ...) means "could not check".
VIES_DEFINITE = {"VALID", "INVALID"}


def vies_lookup(number: str) -> bool | None:
    """True/False from VIES, or None when it cannot answer (network, timeout, member state down)."""
    country, local = number[:2], number[2:]
    url = f"{settings.TOLLGATE_VIES_URL.rstrip('/')}/ms/{country}/vat/{local}"
    try:
        response = requests.get(url, timeout=settings.TOLLGATE_VIES_TIMEOUT_SECONDS)
        body = response.json() if response.status_code == 200 else {}
    except (requests.RequestException, ValueError):
        logger.warning("VIES could not be asked about a VAT id", exc_info=True)
        return None
    answer = body.get("userError") if isinstance(body, dict) else None
    if answer not in VIES_DEFINITE or not isinstance(body.get("isValid"), bool):
        logger.warning("VIES gave no definite answer (%s)", str(answer)[:40])
        return None
    return body["isValid"]


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
