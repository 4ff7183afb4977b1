"""The recurring app's domain errors (API: 409 with these codes)."""

from core.errors import ConflictError, ErrorCode


class RecurrenceStopped(ConflictError):
    code = ErrorCode.RECURRENCE_STOPPED
    default_message = "The buyer's recurring payment has been stopped; it cannot be charged any more."


class RecurrenceNotActive(ConflictError):
    code = ErrorCode.RECURRENCE_NOT_ACTIVE
    default_message = "The recurring payment is not active."
