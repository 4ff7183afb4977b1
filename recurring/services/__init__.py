"""On-demand recurring charges (GoPay ON_DEMAND): setting a recurrence up from the provider's state
(`recurrences`), charging it (`charges`), what each outcome does (`outcomes`), retrying failed charges on a
schedule (`hourly`), stopping it. Plain functions, keyword-only arguments; `now` is passed in.

A charge is a normal order of its own (lines, payee split, ledger capture through `apply_payment_state`) with
one `Payment` per attempt; the provider's child payment id is that payment's `provider_ref`, so GoPay's
notification for the child (`GET ?id=<child>`) finds it like any other payment.

Never charging twice. GoPay has no idempotency keys, and `order_number` is our payment id, so every attempt is
a NEW payment row (a new order number). A new attempt is only started once the previous one is KNOWN not to
take money:
- it was never created at the provider: refused before sending (no token: `ProviderUnavailable`), or refused
  with a 4xx (`ProviderRequestRejected`, `PaymentDeclined`): the attempt's payment is failed at once;
- or the provider created the child and says it ended CANCELED/TIMEOUTED (notification, or our own read of
  the child's status before any retry): `apply_payment_state` fails the payment.
While the child is still pending at the provider, the charge waits (`processing`), whatever the schedule says.
If the provider's answer to create-recurrence was lost (5xx, no answer: `ProviderOutcomeUnknown`), a child may
exist and we do not know its id; GoPay cannot be asked by order number. That attempt is *in doubt*: the
charge is flagged `needs_review`, staff are told, and nothing is retried automatically until staff have looked
in GoPay's portal for the order number (= the payment id) and either released the charge (not charged: it is
retried on the schedule) or abandoned it.

Lock order (DESIGN §7 extended): the order row, then the payment row, then the recurrence, then the charge.
"""

from recurring.errors import RecurrenceNotActive, RecurrenceStopped
from recurring.services.charges import (
    abandon_charge,
    charge_recurrence,
    create_recurring_charge,
    release_in_doubt_charge,
    send_charge,
    sync_charge_outcome,
)
from recurring.services.hourly import retry_failed_charges
from recurring.services.recurrences import (
    send_stop,
    set_up_missed_recurrences,
    stop_recurrence,
    sync_recurrence,
)

__all__ = [
    "RecurrenceNotActive",
    "RecurrenceStopped",
    "abandon_charge",
    "charge_recurrence",
    "create_recurring_charge",
    "release_in_doubt_charge",
    "retry_failed_charges",
    "send_charge",
    "send_stop",
    "set_up_missed_recurrences",
    "stop_recurrence",
    "sync_charge_outcome",
    "sync_recurrence",
]
