from django.conf import settings

from commissions.models import Payee


def commission_bps_for(payee: Payee) -> int:
    """The payee's commission rate: its override, else the platform default. (Rules per line kind, fixed
    amounts and validity dates arrive with CommissionRule.)"""
    if payee.commission_bps is not None:
        return payee.commission_bps
    return settings.TOLLGATE_DEFAULT_COMMISSION_BPS


def commission_vat_bps() -> int:
    return settings.TOLLGATE_COMMISSION_VAT_BPS
