"""Credit notes through the real refund paths: per refund and payee, mirroring the invoice's rounding, so
that invoice − credit notes = what the buyer paid − what was refunded, to the cent, in every currency."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db.models import Sum
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from invoicing.models import DocumentKind, Invoice
from invoicing.services.issuing import issue_order_invoices, issue_refund_credit_notes
from payments.models import LineKind
from refunds.models import Refund, RefundStatus
from refunds.services import request_policy_refund, request_refund
from tests.factories import PayeeFactory
from tests.invoicing.helpers import line, pay, run_on_commit
from tests.refunds.policy_helpers import make_policy

pytestmark = pytest.mark.django_db


def documents(order, kind):
    return Invoice.objects.filter(order=order, kind=kind)


def signed_totals(order) -> tuple[int, int, int]:
    """(net, VAT, gross) of the order's invoices less its credit notes."""
    result = [0, 0, 0]
    for document in Invoice.objects.filter(order=order):
        for index, amount in enumerate((document.net_minor, document.vat_minor, document.gross_minor)):
            result[index] += document.sign * amount
    return tuple(result)


def refunded_to_buyer(order) -> int:
    return (
        Refund.objects.filter(order=order, status=RefundStatus.SUCCEEDED).aggregate(total=Sum("amount_minor"))["total"]
        or 0
    )


def assert_documents_add_up(order):
    for document in Invoice.objects.filter(order=order):
        assert document.net_minor + document.vat_minor == document.gross_minor
        groups = list(document.vat_groups.all())
        assert sum(group.gross_minor for group in groups) == document.gross_minor
        assert sum(group.vat_minor for group in groups) == document.vat_minor
        assert sum(row.gross_minor for row in document.lines.all()) == document.gross_minor
    assert signed_totals(order)[2] == order.total_minor - refunded_to_buyer(order)


def test_a_paid_order_is_invoiced_per_payee_with_vat_per_rate_group():
    seller, organizer = PayeeFactory(country="CZ"), PayeeFactory(country="CZ", kind="organizer")
    order = pay(
        lines=[
            line(seller, 1000, quantity=3, description="Cable"),
            line(seller, 999, description="Book", vat_category="reduced"),
            line(
                organizer,
                50000,
                description="Ticket",
                kind=LineKind.EVENT_TICKET,
                event_country="AT",
                event_ref="gig",
                event_starts_at=timezone.now() + timedelta(days=40),
            ),
        ]
    )
    seller_invoice = documents(order, DocumentKind.INVOICE).get(payee=seller)
    organizer_invoice = documents(order, DocumentKind.INVOICE).get(payee=organizer)
    groups = seller_invoice.vat_groups.all()
    assert [(g.rate_bps, g.scheme, g.tax_country, g.net_minor, g.vat_minor) for g in groups] == [
        (2100, "domestic", "CZ", 2479, 521),  # 30.00 at 21 %: 5.2066 -> 5.21
        (1200, "domestic", "CZ", 892, 107),  # 9.99 at 12 %: 1.0704 -> 1.07
    ]
    assert (seller_invoice.net_minor, seller_invoice.vat_minor, seller_invoice.gross_minor) == (3371, 628, 3999)
    # Admission to an event in Austria: Austrian VAT (20 %), whoever the organizer is.
    ((rate, scheme, country, vat),) = organizer_invoice.vat_groups.values_list(
        "rate_bps", "scheme", "tax_country", "vat_minor"
    )
    assert (rate, scheme, country, vat) == (2000, "event_admission", "AT", 8333)
    assert seller_invoice.series != organizer_invoice.series
    assert seller_invoice.issuer_name == seller.legal_name
    assert organizer_invoice.issuer_name == organizer.legal_name
    assert_documents_add_up(order)


def test_issuing_twice_gives_the_same_documents_and_numbers():
    payee = PayeeFactory()
    order = pay(lines=[line(payee, 12100)])
    first = issue_order_invoices(order_id=order.pk, now=timezone.now())
    again = issue_order_invoices(order_id=order.pk, now=timezone.now())
    assert [d.number for d in first] == [d.number for d in again]
    assert Invoice.objects.filter(payee=payee).count() == 1
    assert first[0].series.last_number == 1


def test_refunds_give_credit_notes_that_take_back_the_invoice_exactly():
    payee = PayeeFactory()
    order = pay(lines=[line(payee, 1000)])  # 10.00 at 21 %: VAT 1.74 on the invoice
    for amount in (100, 100, 800):  # alone these would round to 0.17 + 0.17 + 1.39 = 1.73
        run_on_commit(
            request_refund, order=order, amount_minor=amount, reason="requested_by_customer", now=timezone.now()
        )
        order.refresh_from_db()
    credit_notes = list(documents(order, DocumentKind.CREDIT_NOTE).order_by("sequence"))
    assert [note.gross_minor for note in credit_notes] == [100, 100, 800]
    assert [note.vat_minor for note in credit_notes] == [17, 18, 139]
    assert [note.number[-6:] for note in credit_notes] == ["000001", "000002", "000003"]
    assert all(note.original == documents(order, DocumentKind.INVOICE).get() for note in credit_notes)
    assert signed_totals(order) == (0, 0, 0)
    assert_documents_add_up(order)


def test_a_kept_cancellation_fee_stays_invoiced():
    payee = PayeeFactory()
    policy = make_policy(
        payee=payee, scope="payee", full_refund_until=timedelta(days=14), tiers=((timedelta(days=1), 2000, 0, ""),)
    )
    assert policy.pk
    order = pay(
        lines=[
            line(
                payee,
                10000,
                kind=LineKind.EVENT_TICKET,
                event_ref="gig",
                event_country="CZ",
                event_starts_at=timezone.now() + timedelta(days=5),
            )
        ]
    )
    refund = run_on_commit(request_policy_refund, order=order, now=timezone.now())
    refund.refresh_from_db()
    assert refund.status == RefundStatus.SUCCEEDED
    assert refund.fee_minor == 2000
    (note,) = documents(order, DocumentKind.CREDIT_NOTE)
    assert note.gross_minor == refund.amount_minor
    net, vat, gross = signed_totals(order)
    assert gross == 10000 - refund.amount_minor  # the fee (and any commission kept) stays invoiced
    assert net + vat == gross
    assert_documents_add_up(order)


def test_an_overpayment_refund_has_no_credit_note():
    payee = PayeeFactory()
    order = pay(lines=[line(payee, 5000)])
    assert issue_refund_credit_notes(refund_id=_overpayment(order).pk, now=timezone.now()) == []
    assert not documents(order, DocumentKind.CREDIT_NOTE).exists()


def _overpayment(order):
    from ledger.money import Money
    from refunds.services import create_overpayment_refund

    payment = order.payments.get(settles_order=True)
    return create_overpayment_refund(
        payment=payment, amount=Money(100, order.currency), reason="test", now=timezone.now()
    )


CURRENCIES = st.sampled_from(["EUR", "CZK", "JPY", "HUF"])
LINES = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=500_000),  # unit amount
        st.integers(min_value=1, max_value=4),  # quantity
        st.sampled_from(["standard", "reduced", "super_reduced"]),
        st.integers(min_value=0, max_value=1),  # payee
    ),
    min_size=1,
    max_size=5,
)
REFUNDS = st.lists(st.integers(min_value=1, max_value=100), min_size=0, max_size=4)  # percent of what is left


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(currency=CURRENCIES, cart=LINES, refunds=REFUNDS, buyer=st.sampled_from(["CZ", "DE", "SK"]))
def test_random_carts_and_partial_refunds_reconcile_to_the_cent(currency, cart, refunds, buyer):
    payees = [PayeeFactory(country="CZ", uses_oss=True), PayeeFactory(country="DE")]
    order = pay(
        currency=currency,
        buyer_country=buyer,
        lines=[line(payees[p], unit, quantity=qty, vat_category=category) for unit, qty, category, p in cart],
    )
    for percent in refunds:
        order.refresh_from_db()
        left = order.total_minor - order.refunded_minor
        amount = max(1, left * percent // 100)
        if left <= 0:
            break
        run_on_commit(
            request_refund,
            order=order,
            amount_minor=min(amount, left),
            reason="requested_by_customer",
            now=timezone.now(),
        )
    order.refresh_from_db()
    assert_documents_add_up(order)
    if order.refunded_minor == order.total_minor:
        assert signed_totals(order) == (0, 0, 0)
    # One invoice per payee with lines on the order; one credit note per refund and payee it touched.
    assert documents(order, DocumentKind.INVOICE).count() == len({p for *_, p in cart})
