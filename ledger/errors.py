from core.errors import ConflictError, DomainError, ErrorCode


class LedgerError(DomainError):
    """A posting that can never be valid (programming error in the caller): unbalanced, empty, mixed."""

    status = 500


class LedgerConflict(ConflictError):
    code = ErrorCode.LEDGER_CONFLICT
    default_message = "A different ledger transaction was already posted under this idempotency key."


class InsufficientFunds(DomainError):
    code = ErrorCode.INSUFFICIENT_FUNDS
    status = 409

    def __init__(self, account_code: str, currency: str):
        self.account_code = account_code
        self.currency = currency
        super().__init__(f"{account_code} ({currency}) would go below zero.")
