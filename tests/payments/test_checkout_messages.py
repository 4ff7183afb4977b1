"""The buyer sees why a payment failed in plain words, but never a fraud signal."""

import pytest

from payments.checkout.messages import DECLINED, GENERIC, failure_message


@pytest.mark.parametrize("code", ["lost_card", "stolen_card", "fraudulent", "pickup_card", "merchant_blacklist"])
def test_fraud_related_declines_get_the_generic_decline_message(code):
    message = failure_message(code)
    assert message == DECLINED
    assert "stolen" not in message
    assert "lost" not in message


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("insufficient_funds", "not enough funds"),
        ("expired_card", "expired"),
        ("incorrect_cvc", "security code"),
        ("authentication_failed", "3-D Secure"),
        ("processing_error", "try again in a few minutes"),
    ],
)
def test_actionable_declines_say_what_to_do(code, words):
    assert words in failure_message(code)


def test_an_unknown_code_gets_the_generic_message():
    assert failure_message("something_new_from_a_provider") == GENERIC
    assert failure_message("") == GENERIC
