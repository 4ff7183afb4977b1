"""Payees and what they are owed: commission rules, payout runs and payouts, SEPA files, statements."""

from commissions.models.payees import DisputeBearer, Payee, PayoutMethod, PayoutSchedule
from commissions.models.payouts import ConnectedAccountPayout, Payout, PayoutRun, SepaFile
from commissions.models.rules import CommissionRule
from commissions.models.statements import PayoutStatement, StatementDelivery

__all__ = [
    "CommissionRule",
    "ConnectedAccountPayout",
    "DisputeBearer",
    "Payee",
    "Payout",
    "PayoutMethod",
    "PayoutRun",
    "PayoutSchedule",
    "PayoutStatement",
    "SepaFile",
    "StatementDelivery",
]
