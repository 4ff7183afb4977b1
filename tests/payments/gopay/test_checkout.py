"""Creating a GoPay payment: the body GoPay receives (amount in minor units, currency, items with VAT adding up to
the amount, our payment id as order_number, contact, language, instruments, callbacks), the currencies GoPay takes,
and the buyer's checkout page: 303 to GoPay's gateway, a second click reusing the open attempt, GoPay unreachable."""

import pytest
from django.utils import timezone

from core.errors import DomainError, ErrorCode
from invoicing.vat import VatCategory
from payments.models import OrderStatus, PaymentStatus
from payments.services.orders import LineInput, create_order
from tests.payments.gopay.conftest import GOID
from tests.payments.gopay.helpers import gopay_id, gopay_order, notify_and_process, start_gopay_payment

pytestmark = pytest.mark.django_db
CREATE = r"/payments/payment"
GOPAY_CURRENCIES = ["CZK", "EUR", "PLN", "HUF", "GBP", "USD", "RON", "BGN"]


def order_of(payee, *, currency="CZK", locale="en", country="CZ", lines=None, **kwargs):
    return create_order(
        currency=currency,
        buyer_email="eva.kovacova@example.sk",
        buyer_country=country,
        locale=locale,
        now=timezone.now(),
        lines=lines or [LineInput(payee_id=payee.pk, description="Vstupenka", quantity=1, unit_amount_minor=99900)],
        **kwargs,
    )


def created_body(fake):
    [request] = fake.posts(CREATE)
    assert request.scope == "payment-create"
    return request.body


# --- the body ----------------------------------------------------------------------------------------------


def test_the_create_body(payee, fake_gopay, settings):
    settings.GOPAY_ALLOWED_INSTRUMENTS = ["PAYMENT_CARD", "GPAY"]
    order = order_of(
        payee,
        locale="cs",
        description="Festival Pohoda 2026",
        lines=[
            LineInput(payee_id=payee.pk, description="Vstupenka", quantity=3, unit_amount_minor=123450),
            LineInput(
                payee_id=payee.pk,
                description="Program (kniha)",
                quantity=2,
                unit_amount_minor=19999,
                vat_category=VatCategory.REDUCED,
            ),
            LineInput(
                payee_id=payee.pk,
                description="Dar",
                quantity=1,
                unit_amount_minor=1,
                vat_category=VatCategory.EXEMPT,
            ),
        ],
    )
    payment = start_gopay_payment(order)
    body = created_body(fake_gopay)

    assert body["amount"] == 3 * 123450 + 2 * 19999 + 1 == order.total_minor == payment.amount_minor  # hellers
    assert body["currency"] == "CZK"
    assert body["items"] == [
        {"type": "ITEM", "name": "Vstupenka", "amount": 370350, "count": 3, "vat_rate": 21},
        {"type": "ITEM", "name": "Program (kniha)", "amount": 39998, "count": 2, "vat_rate": 12},  # CZ reduced
        {"type": "ITEM", "name": "Dar", "amount": 1, "count": 1, "vat_rate": 0},
    ]
    assert sum(item["amount"] for item in body["items"]) == body["amount"]
    assert body["order_number"] == str(payment.pk)
    assert body["order_description"] == "Festival Pohoda 2026"
    assert body["payer"] == {
        "allowed_payment_instruments": ["PAYMENT_CARD", "GPAY"],
        "contact": {"email": "eva.kovacova@example.sk"},
    }
    assert body["target"] == {"type": "ACCOUNT", "goid": GOID}
    assert body["lang"] == "CS"
    assert body["callback"] == {
        "return_url": f"http://testserver/checkout/{order.token}/return/",
        "notification_url": "http://testserver/webhooks/gopay/",
    }
    assert body["additional_params"] == [{"name": "order", "value": str(order.token)}]
    assert "preauthorization" not in body
    assert "recurrence" not in body
    assert fake_gopay.spec_errors == []  # no key GoPay does not know

    at_gopay = fake_gopay.payment(gopay_id(payment))
    assert (payment.status, payment.checkout_url) == (PaymentStatus.PENDING, at_gopay["gw_url"])
    assert payment.provider_ref == str(at_gopay["id"])
    assert at_gopay["state"] == "CREATED"


def test_a_long_line_name_and_no_description(payee, fake_gopay):
    order = order_of(
        payee, lines=[LineInput(payee_id=payee.pk, description="Ž" * 200, quantity=1, unit_amount_minor=100)]
    )
    start_gopay_payment(order)
    body = created_body(fake_gopay)
    assert body["items"][0]["name"] == "Ž" * 200
    assert body["order_description"] == f"Order {order.short_token}"


@pytest.mark.parametrize(
    ("locale", "country", "lang"),
    [
        ("cs", "CZ", "CS"),
        ("cs-CZ", "", "CS"),
        ("sk", "SK", "SK"),
        ("SK", "CZ", "SK"),
        ("en", "GB", "EN"),
        ("en", "US", "EN"),
        ("en", "CZ", "EN"),  # the buyer's own choice of language wins over the country
        ("", "CZ", "CS"),  # no language given: the country's
        ("", "SK", "SK"),
        ("", "US", "EN"),
        ("", "", "EN"),
        ("fr", "FR", "EN"),
        ("de", "AT", "DE"),
    ],
)
def test_the_gateway_language(payee, fake_gopay, locale, country, lang):
    start_gopay_payment(order_of(payee, locale=locale, country=country))
    assert created_body(fake_gopay)["lang"] == lang


# --- currencies ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("currency", GOPAY_CURRENCIES)
def test_each_gopay_currency_is_accepted(payee, fake_gopay, settings, currency):
    settings.TOLLGATE_ENABLED_CURRENCIES = [*GOPAY_CURRENCIES, "JPY"]
    payment = start_gopay_payment(order_of(payee, currency=currency))
    body = created_body(fake_gopay)
    assert (body["currency"], body["amount"]) == (currency, 99900)
    assert payment.status == PaymentStatus.PENDING
    assert fake_gopay.payment(gopay_id(payment))["currency"] == currency


def test_jpy_is_not_offered_and_refused_before_any_request_or_row(client, payee, fake_gopay, settings):
    settings.TOLLGATE_ENABLED_CURRENCIES = [*GOPAY_CURRENCIES, "JPY"]
    order = order_of(
        payee,
        currency="JPY",
        lines=[LineInput(payee_id=payee.pk, description="Ticket", quantity=1, unit_amount_minor=5000)],
    )
    with pytest.raises(DomainError) as raised:
        start_gopay_payment(order)

    assert fake_gopay.requests == []  # not even a token
    assert not order.payments.exists()
    assert raised.value.code == ErrorCode.PROVIDER_NOT_AVAILABLE
    assert "does not take JPY" in raised.value.message
    order.refresh_from_db()
    assert order.status == OrderStatus.OPEN
    assert 'value="gopay"' not in client.get(f"/checkout/{order.token}/").content.decode()


def test_jpy_directly_at_the_adapter_is_a_clear_rejection(payee, fake_gopay, settings):
    from payments.models import Payment
    from payments.providers.base import ProviderRequestRejected
    from payments.providers.registry import get_provider

    settings.TOLLGATE_ENABLED_CURRENCIES = [*GOPAY_CURRENCIES, "JPY"]
    order = order_of(
        payee,
        currency="JPY",
        lines=[LineInput(payee_id=payee.pk, description="Ticket", quantity=1, unit_amount_minor=5000)],
    )
    payment = Payment.objects.create(
        order=order, provider="gopay", amount_minor=5000, currency="JPY", created_at=timezone.now()
    )
    with pytest.raises(ProviderRequestRejected) as raised:
        get_provider("gopay").create_checkout(payment=payment, return_url="r", cancel_url="c", notification_url="n")
    assert raised.value.code == "currency_not_supported"
    assert "JPY" in str(raised.value)
    assert fake_gopay.requests == []


# --- the buyer's checkout page ----------------------------------------------------------------------------


def test_the_checkout_page_offers_gopay(client, payee, fake_gopay):
    order = gopay_order(payee)
    page = client.get(f"/checkout/{order.token}/")
    assert page.status_code == 200
    assert 'value="gopay"' in page.content.decode()
    assert fake_gopay.requests == []  # nothing is created before the buyer chooses


def test_choosing_gopay_redirects_to_the_gateway_and_a_second_click_reuses_it(client, payee, fake_gopay):
    order = gopay_order(payee)
    first = client.post(f"/checkout/{order.token}/", {"method": "gopay"})

    assert first.status_code == 303
    payment = order.payments.get()
    assert first["Location"] == payment.checkout_url == fake_gopay.payment(gopay_id(payment))["gw_url"]
    assert first["Location"].startswith("https://gw.sandbox.gopay.com/gw/v3/")

    second = client.post(f"/checkout/{order.token}/", {"method": "gopay"})
    assert second.status_code == 303
    assert second["Location"] == first["Location"]
    assert order.payments.count() == 1
    assert len(fake_gopay.posts(CREATE)) == 1


def test_after_paying_the_checkout_page_sends_the_buyer_to_the_result(
    client, payee, fake_gopay, django_capture_on_commit_callbacks
):
    order = gopay_order(payee)
    client.post(f"/checkout/{order.token}/", {"method": "gopay"})
    payment = order.payments.get()
    fake_gopay.pay(gopay_id(payment))
    notify_and_process(client, django_capture_on_commit_callbacks, gopay_id(payment))

    again = client.post(f"/checkout/{order.token}/", {"method": "gopay"})
    assert again.status_code == 302
    assert again["Location"] == f"/checkout/{order.token}/return/"
    assert len(fake_gopay.posts(CREATE)) == 1


@pytest.mark.parametrize("kind", ["status0", "500", "lost"])
def test_gopay_unreachable_on_create_is_a_polite_page_and_a_failed_attempt(client, payee, fake_gopay, kind):
    order = gopay_order(payee)
    fake_gopay.fail(CREATE, kind)
    response = client.post(f"/checkout/{order.token}/", {"method": "gopay"})

    assert response.status_code == 400  # the checkout page again, with the error (never a 5xx)
    html = response.content.decode()
    assert "not reachable right now" in html
    assert "Traceback" not in html
    payment = order.payments.get()
    assert (payment.status, payment.failure_code) == (PaymentStatus.FAILED, "outcome_unknown")
    assert payment.checkout_url == ""
    assert len(fake_gopay.posts(CREATE)) == 1  # never re-sent blind

    # A moment later the buyer tries again: a new attempt with its own order_number.
    retry = client.post(f"/checkout/{order.token}/", {"method": "gopay"})
    assert retry.status_code == 303
    second = order.payments.exclude(pk=payment.pk).get()
    assert retry["Location"] == second.checkout_url
    assert [r.body["order_number"] for r in fake_gopay.posts(CREATE)] == [str(payment.pk), str(second.pk)]


def test_gopay_unreachable_on_create_as_a_domain_error(payee, fake_gopay):
    order = gopay_order(payee)
    fake_gopay.fail(CREATE, "status0")
    with pytest.raises(DomainError) as raised:
        start_gopay_payment(order)
    assert raised.value.status == 503
    assert raised.value.code == ErrorCode.PROVIDER_UNAVAILABLE


def test_gopay_refusing_the_body_fails_the_attempt(client, payee, fake_gopay, settings):
    settings.GOPAY_GOID = 1  # GoPay does not know this goid: a 409 with a field error
    order = gopay_order(payee)
    response = client.post(f"/checkout/{order.token}/", {"method": "gopay"})
    assert response.status_code == 400
    payment = order.payments.get()
    assert (payment.status, payment.failure_code) == (PaymentStatus.FAILED, "WRONG_FORMAT")
    assert fake_gopay.posts(CREATE)[0].status == 409


def test_an_answer_for_another_order_number_is_not_used(payee, fake_gopay, monkeypatch):
    real = fake_gopay._create

    def other_order_number(body):
        status, answer = real(body)
        return status, {**answer, "order_number": "999999"}

    monkeypatch.setattr(fake_gopay, "_create", other_order_number)
    order = gopay_order(payee)
    with pytest.raises(DomainError):
        start_gopay_payment(order)
    payment = order.payments.get()
    assert (payment.status, payment.failure_code, payment.checkout_url) == (
        PaymentStatus.FAILED,
        "unexpected_answer",
        "",
    )
