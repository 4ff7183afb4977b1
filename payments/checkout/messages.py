"""Why a payment did not go through, in words a buyer understands. Codes are the providers' decline codes
(Stripe's documented list, the sandbox's) and a few of ours. Fraud-related codes (lost or stolen card, ...)
get the generic message on purpose: telling a fraudster why would help them."""

GENERIC = "The payment did not go through. No money was taken. You can try again."
DECLINED = "Your bank declined the payment. Try another card or payment method, or contact your bank."
TRY_AGAIN = "Your bank could not process the payment just now. Please try again in a few minutes."

_MESSAGES: dict[str, str] = {
    "insufficient_funds": "There were not enough funds available. Try another card or payment method.",
    "expired_card": "The card has expired. Try another card.",
    "incorrect_cvc": "The security code (CVC) was not correct. Please check it and try again.",
    "invalid_cvc": "The security code (CVC) was not correct. Please check it and try again.",
    "incorrect_number": "The card number was not correct. Please check it and try again.",
    "invalid_number": "The card number was not correct. Please check it and try again.",
    "invalid_expiry_month": "The card's expiry date was not correct. Please check it and try again.",
    "invalid_expiry_year": "The card's expiry date was not correct. Please check it and try again.",
    "incorrect_zip": "The postal code did not match the card. Please check it and try again.",
    "incorrect_pin": "The PIN was not correct. Please try again.",
    "invalid_pin": "The PIN was not correct. Please try again.",
    "pin_try_exceeded": "Too many wrong PIN attempts. Use another card or contact your bank.",
    "card_not_supported": "This card does not support this kind of purchase. Try another card.",
    "currency_not_supported": "This card cannot pay in this currency. Try another card.",
    "card_velocity_exceeded": "The card has reached its spending limit. Try another card or contact your bank.",
    "withdrawal_count_limit_exceeded": "The card has reached its spending limit. Try another card.",
    "authentication_required": "Your bank asks you to confirm the payment. Please try again and complete the check.",
    "authentication_failed": "The 3-D Secure check did not succeed. You can try again.",
    "processing_error": TRY_AGAIN,
    "issuer_not_available": TRY_AGAIN,
    "try_again_later": TRY_AGAIN,
    "reenter_transaction": TRY_AGAIN,
    "duplicate_transaction": "An identical payment was just made. Check your bank statement before trying again.",
    "async_payment_failed": "Your bank did not confirm the transfer. No money was taken; please choose another method.",
    "provider_error": "The payment provider could not be reached. No money was taken; please try again.",
    "outcome_unknown": "The payment provider could not be reached. No money was taken; please try again.",
}
# Declines whose reason is not for the buyer's eyes (fraud signals) or says no more than "declined".
_GENERIC_DECLINES = {
    "card_declined",
    "generic_decline",
    "do_not_honor",
    "do_not_try_again",
    "call_issuer",
    "fraudulent",
    "lost_card",
    "stolen_card",
    "pickup_card",
    "restricted_card",
    "merchant_blacklist",
    "security_violation",
    "not_permitted",
    "service_not_allowed",
    "transaction_not_allowed",
    "stop_payment_order",
    "revocation_of_all_authorizations",
    "revocation_of_authorization",
    "invalid_account",
    "new_account_information_available",
    "no_action_taken",
    "approve_with_id",
    "invalid_amount",
    "testmode_decline",
    "offline_pin_required",
    "online_or_offline_pin_required",
}


def failure_message(code: str) -> str:
    if code in _MESSAGES:
        return _MESSAGES[code]
    if code in _GENERIC_DECLINES:
        return DECLINED
    return GENERIC
