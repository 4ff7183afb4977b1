"""Store credit: issued with a code and an expiry, spent at checkout through the `store_credit` provider,
released to breakage when it expires (DESIGN.md §8).

Decisions:
- Codes are bearer instruments, like gift cards: whoever holds the code may spend it, whatever e-mail the
  order carries (a buyer may pay for a friend's ticket). A code is 12 characters from a 31-letter alphabet
  without look-alikes (0/O, 1/I/L), about 59 bits from `secrets`: it cannot be guessed, and the checkout's
  POSTs are rate-limited per IP on top.
- A code that covers the whole order pays it at once (a `store_credit` payment settles the order). A code that
  covers only part is *applied*: a `StoreCreditReservation` (reserved → spent | released) holds what the
  credit can give, under the credit's row lock (what a credit can still give is `remaining_minor` less its
  reserved amounts, so one credit is never applied beyond what is left, whatever number of checkouts). The
  provider payment is then created for the rest (order total − applied credit) and is the one payment that
  settles the order (`payment_one_settling_payment_per_order` stays). When it succeeds, in the fulfilment
  transaction: the capture debits the provider's clearing with what it captured and
  `provider:store_credit:clearing` with the credit part, and the spend posting moves the credit part from
  `buyers:store_credit` to that clearing account; the reservation becomes spent. Expiry of the order or the
  buyer removing it releases it (nothing was posted). One applied code per order.
- Refunds of a split-paid order: first back to the card, up to what the card paid (method original); what
  is beyond that goes back as new store credit (method store_credit: a refund asked "to the original payment"
  once the card part is used up becomes store credit; one that would straddle both is refused with the
  amount the card can still take, so staff refund that first and the rest as store credit).
- Refunding an order paid with credit gives back credit: a new code for the refunded amount (the old one may
  have expired or be spent meanwhile), e-mailed like any other.

Ledger (each one `post_transaction`; `buyers:store_credit` always equals the sum of `remaining_minor`):
- issue from a refund: posted by the refund flow (credit `buyers:store_credit` instead of the provider);
- goodwill `store_credit_goodwill:<credit id>`: debit `platform:goodwill`, credit `buyers:store_credit`;
- spend `store_credit_spend:<spend id>`: debit `buyers:store_credit`, credit `provider:store_credit:clearing`
  (next to the usual capture `capture:payment:<id>`, which debits that clearing account);
- split payment: `store_credit_reservation:<reservation id>` (debit `buyers:store_credit`, credit
  `provider:store_credit:clearing`) in the fulfilment transaction of the provider payment for the rest, next to
  its `capture:payment:<id>` that debits the provider's clearing with the rest and
  `provider:store_credit:clearing` with the credit part; a reservation or its release posts nothing;
- refund of a credit payment `store_credit_refund:<refund id>`: debit `provider:store_credit:clearing`,
  credit `buyers:store_credit` (next to the usual `refund:<id>`, which credits that clearing account);
- expiry `store_credit_expiry:<credit id>`: debit `buyers:store_credit`, credit `platform:store_credit_breakage`.

Lock order: the order row, then the credit row, then the payment row, then ledger accounts by id.
"""

from refunds.store_credit.expiry import LIST_EMAIL_INTERVAL, email_credits_to, expire_store_credits, outstanding_minor
from refunds.store_credit.issuing import (
    CODE_ALPHABET,
    CODE_GROUP,
    CODE_LENGTH,
    DEFAULT_VALIDITY,
    PROVIDER,
    _validity,
    create_store_credit_for_refund,
    generate_code,
    issue_goodwill_credit,
    normalize_code,
    send_store_credit_email,
)
from refunds.store_credit.spending import (
    StoreCreditRefused,
    apply_store_credit,
    available_minor,
    live_reservation,
    pay_with_store_credit,
    release_store_credit,
    remove_store_credit,
    reserve_store_credit,
    reserved_credit_minor,
    return_credit_for_refund,
    spend_reservation,
    spent_credit_minor,
)

__all__ = [
    "CODE_ALPHABET",
    "CODE_GROUP",
    "CODE_LENGTH",
    "DEFAULT_VALIDITY",
    "LIST_EMAIL_INTERVAL",
    "PROVIDER",
    "StoreCreditRefused",
    "_validity",
    "apply_store_credit",
    "available_minor",
    "create_store_credit_for_refund",
    "email_credits_to",
    "expire_store_credits",
    "generate_code",
    "issue_goodwill_credit",
    "live_reservation",
    "normalize_code",
    "outstanding_minor",
    "pay_with_store_credit",
    "release_store_credit",
    "remove_store_credit",
    "reserve_store_credit",
    "reserved_credit_minor",
    "return_credit_for_refund",
    "send_store_credit_email",
    "spend_reservation",
    "spent_credit_minor",
]
