"""The VAT rate fixed on order lines at creation, through the orders API."""

from datetime import date

import pytest

from invoicing.models import VatRate
from payments.models import Order
from tests.factories import PayeeFactory
from tests.payments.helpers import line, order_payload, post_order

pytestmark = pytest.mark.django_db


def create(api, payee, buyer, **line_overrides):
    payload = order_payload(payee, lines=[line(payee, **line_overrides)])
    payload["buyer"].update(buyer)
    response = post_order(api, payload)
    assert response.status_code == 201, response.content
    return Order.objects.get(token=response.json()["id"]).lines.get()


def test_b2b_buyer_in_another_member_state_gets_zero_percent(api):
    payee = PayeeFactory(country="CZ", vat_id="CZ25596641")
    order_line = create(api, payee, {"country": "DE", "vat_id": "DE136695976", "name": "Käufer GmbH"})
    assert order_line.vat_rate_bps == 0
    assert (order_line.vat_scheme, order_line.vat_country) == ("reverse_charge", "DE")
    assert order_line.order.buyer_vat_id_valid
    assert order_line.order.buyer_name == "Käufer GmbH"


def test_b2c_buyer_with_an_oss_payee_gets_the_buyer_country_rate(api):
    payee = PayeeFactory(country="CZ", uses_oss=True)
    order_line = create(api, payee, {"country": "DE"})
    assert (order_line.vat_rate_bps, order_line.vat_scheme, order_line.vat_country) == (1900, "oss", "DE")
    assert create(api, payee, {"country": "FR"}, vat_category="reduced").vat_rate_bps == 550


def test_b2c_buyer_with_a_payee_outside_oss_gets_the_payee_country_rate(api):
    payee = PayeeFactory(country="CZ")
    assert create(api, payee, {"country": "DE"}).vat_rate_bps == 2100


def test_event_ticket_for_a_b2b_buyer_gets_the_event_country_rate(api):
    payee = PayeeFactory(country="CZ", kind="organizer")
    order_line = create(api, payee, {"country": "DE", "vat_id": "DE136695976"}, kind="event_ticket", event_country="AT")
    assert order_line.vat_rate_bps == 2000


def test_non_eu_buyer_gets_zero(api):
    assert create(api, PayeeFactory(country="CZ"), {"country": "US"}).vat_rate_bps == 0


def test_the_rate_stays_fixed_on_the_line_when_the_table_changes(api, payee):
    order_line = create(api, payee, {"country": "CZ"})
    assert order_line.vat_rate_bps == 2100
    VatRate.objects.filter(country="CZ", category="standard").update(rate_bps=2300, valid_from=date(2020, 1, 1))
    order_line.refresh_from_db()
    assert order_line.vat_rate_bps == 2100
    assert create(api, payee, {"country": "CZ"}).vat_rate_bps == 2300


def test_a_country_with_no_rate_configured_is_a_plain_422_and_no_order(api):
    VatRate.objects.filter(country="CZ").delete()
    payee = PayeeFactory(country="CZ")
    response = post_order(api, order_payload(payee, lines=[line(payee)]))
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "vat_rate_missing"
    assert "VAT rates" in response.json()["error"]["message"]
    assert not Order.objects.exists()


def test_the_commission_vat_follows_the_payee(api):
    """The platform's VAT on its commission is fixed on the line too: its rate at home, reverse charge for
    an EU payee with a valid VAT id abroad, nothing outside the EU; the split still adds up to the line."""
    cases = [
        (PayeeFactory(country="CZ"), 2100, "domestic"),
        (PayeeFactory(country="DE", vat_id="DE136695976"), 0, "reverse_charge"),
        (PayeeFactory(country="AT"), 2100, "domestic"),  # no VAT id: taxed as a consumer
        (PayeeFactory(country="US"), 0, "out_of_scope"),
    ]
    for payee, rate, scheme in cases:
        order_line = create(api, payee, {"country": "CZ"})
        assert (order_line.commission_vat_bps, order_line.commission_vat_scheme) == (rate, scheme)
        assert order_line.commission_vat_minor == (0 if rate == 0 else round(order_line.commission_minor * 0.21))
        assert order_line.commission_minor + order_line.commission_vat_minor + order_line.payee_share_minor == (
            order_line.amount_minor
        )
