from __future__ import annotations

from django.conf import settings

from commissions.models import Payee
from invoicing.vat import VatTreatment, commission_vat_treatment
from invoicing.vat_ids import check_vat_id


def commission_bps_for(payee: Payee) -> int:
    """The payee's commission rate: its override, else the platform default. (Rules per line kind, fixed
    amounts and validity dates arrive with CommissionRule.)"""
    if payee.commission_bps is not None:
        return payee.commission_bps
    return settings.TOLLGATE_DEFAULT_COMMISSION_BPS


def commission_vat_bps() -> int:
    """The platform's VAT rate on its commission (domestic)."""
    return settings.TOLLGATE_COMMISSION_VAT_BPS


def commission_vat_treatment_for(payee: Payee) -> VatTreatment:
    """VAT on the commission charged to `payee`: the platform's rate, or reverse charge / out of scope
    (see `invoicing.vat.commission_vat_treatment`)."""
    return commission_vat_treatment(
        platform_country=settings.TOLLGATE_PLATFORM_COUNTRY,
        platform_rate_bps=commission_vat_bps(),
        payee_country=payee.country,
        payee_vat_id_valid=bool(payee.vat_id) and check_vat_id(payee.vat_id).valid,
    )
