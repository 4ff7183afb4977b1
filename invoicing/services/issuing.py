"""Issuing the buyer's documents: one invoice per payee of a paid order (in the payee's name, issued by the
platform), one credit note per payee of each succeeded refund. Both are idempotent (a unique constraint and a
re-check under the series lock) and written whole in one transaction with their number."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from commissions.models import Payee
from invoicing.amounts import GroupKey, VatGroup, credit_note_groups, group_gross, totals, vat_groups
from invoicing.models import DocumentKind, Invoice, InvoiceLine, InvoiceVatGroup
from invoicing.services.numbering import take_number
from invoicing.vat import LEGENDS
from payments.models import Order, OrderLine, OrderStatus, Payment, PaymentStatus
from refunds.models import Refund, RefundStatus

INVOICED_STATUSES = (OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED, OrderStatus.REFUNDED)


class _AlreadyIssued(Exception):
    """Raised inside the issuing transaction to give the number back when another worker won."""

    def __init__(self, document: Invoice):
        self.document = document


def line_group(line: OrderLine) -> GroupKey:
    return GroupKey(line.vat_rate_bps, line.vat_scheme, line.vat_country or line.payee.country)


def issue_order_invoices(*, order_id: int, now: datetime) -> list[Invoice]:
    """The invoices of a paid order, one per payee (those already issued are returned as they are)."""
    order = Order.objects.get(pk=order_id)
    if order.status not in INVOICED_STATUSES or order.paid_at is None:
        return []
    payee_ids = sorted(set(order.lines.values_list("payee_id", flat=True)))
    return [issue_invoice(order=order, payee_id=payee_id, now=now) for payee_id in payee_ids]


def issue_invoice(*, order: Order, payee_id: int, now: datetime) -> Invoice:
    existing = Invoice.objects.filter(kind=DocumentKind.INVOICE, order=order, payee_id=payee_id).first()
    if existing is not None:
        return existing
    payee = Payee.objects.get(pk=payee_id)
    lines = list(order.lines.filter(payee_id=payee_id).select_related("payee").order_by("position"))
    groups = vat_groups((line_group(line), line.amount_minor) for line in lines)
    try:
        with transaction.atomic():
            series, sequence, number = take_number(payee=payee, kind=DocumentKind.INVOICE, year=_year(now))
            _raise_if_issued(kind=DocumentKind.INVOICE, order=order, payee_id=payee_id)
            invoice = _create_document(
                kind=DocumentKind.INVOICE,
                series=series,
                sequence=sequence,
                number=number,
                payee=payee,
                order=order,
                groups=groups,
                lines=[
                    InvoiceLine(
                        position=position,
                        description=line.description,
                        quantity=line.quantity,
                        unit_gross_minor=line.unit_amount_minor,
                        gross_minor=line.amount_minor,
                        vat_rate_bps=line.vat_rate_bps,
                        scheme=line.vat_scheme,
                        tax_country=line_group(line).tax_country,
                        order_line=line,
                    )
                    for position, line in enumerate(lines, start=1)
                ],
                supply_date=timezone.localdate(order.paid_at),
                now=now,
            )
    except _AlreadyIssued as won:
        return won.document
    except IntegrityError:
        return Invoice.objects.get(kind=DocumentKind.INVOICE, order=order, payee_id=payee_id)
    return invoice


def credited_gross(refund: Refund) -> dict[int, int]:
    """What the buyer got back per order line: the refunded part less the fee kept and, when the policy does
    not return it, the commission with its VAT. Adds up to `refund.amount_minor`."""
    credited: dict[int, int] = {}
    for row in refund.lines.all():
        kept = row.fee_minor + (0 if refund.commission_returned else row.commission_minor + row.commission_vat_minor)
        credited[row.order_line_id] = row.amount_minor - kept
    return credited


def issue_refund_credit_notes(*, refund_id: int, now: datetime) -> list[Invoice]:
    """One credit note per payee whose lines a succeeded refund gave money back on. An overpayment refund
    returns money no invoice charged: no credit note."""
    refund = Refund.objects.select_related("order").get(pk=refund_id)
    if refund.status != RefundStatus.SUCCEEDED or refund.is_overpayment:
        return []
    credited = {line_id: gross for line_id, gross in credited_gross(refund).items() if gross > 0}
    lines = OrderLine.objects.filter(pk__in=credited).select_related("payee").order_by("position")
    by_payee: dict[int, list[OrderLine]] = defaultdict(list)
    for line in lines:
        by_payee[line.payee_id].append(line)
    return [
        issue_credit_note(refund=refund, payee_id=payee_id, lines=payee_lines, credited=credited, now=now)
        for payee_id, payee_lines in sorted(by_payee.items())
    ]


def issue_credit_note(
    *, refund: Refund, payee_id: int, lines: list[OrderLine], credited: dict[int, int], now: datetime
) -> Invoice:
    existing = Invoice.objects.filter(kind=DocumentKind.CREDIT_NOTE, refund=refund, payee_id=payee_id).first()
    if existing is not None:
        return existing
    order = refund.order
    original = issue_invoice(order=order, payee_id=payee_id, now=now)
    payee = original.payee
    crediting = group_gross((line_group(line), credited[line.pk]) for line in lines)
    try:
        with transaction.atomic():
            # The payee's credit-note series lock also serializes every credit note against `original`, so
            # what earlier credit notes took back is read consistently.
            series, sequence, number = take_number(payee=payee, kind=DocumentKind.CREDIT_NOTE, year=_year(now))
            _raise_if_issued(kind=DocumentKind.CREDIT_NOTE, refund=refund, payee_id=payee_id)
            groups = credit_note_groups(
                original=[_as_group(group) for group in original.vat_groups.all()],
                credited_before=_credited_before(original),
                crediting=crediting,
            )
            credit_note = _create_document(
                kind=DocumentKind.CREDIT_NOTE,
                series=series,
                sequence=sequence,
                number=number,
                payee=payee,
                order=order,
                refund=refund,
                original=original,
                groups=groups,
                lines=[
                    InvoiceLine(
                        position=position,
                        description=f"Refund: {line.description}",
                        quantity=1,
                        unit_gross_minor=credited[line.pk],
                        gross_minor=credited[line.pk],
                        vat_rate_bps=line.vat_rate_bps,
                        scheme=line.vat_scheme,
                        tax_country=line_group(line).tax_country,
                        order_line=line,
                    )
                    for position, line in enumerate(lines, start=1)
                ],
                supply_date=timezone.localdate(refund.succeeded_at or now),
                now=now,
            )
    except _AlreadyIssued as won:
        return won.document
    except IntegrityError:
        return Invoice.objects.get(kind=DocumentKind.CREDIT_NOTE, refund=refund, payee_id=payee_id)
    return credit_note


def _raise_if_issued(**lookup) -> None:
    document = Invoice.objects.filter(**lookup).first()
    if document is not None:
        raise _AlreadyIssued(document)


def _as_group(row: InvoiceVatGroup) -> VatGroup:
    return VatGroup(GroupKey(row.rate_bps, row.scheme, row.tax_country), row.gross_minor, row.vat_minor)


def _credited_before(original: Invoice) -> dict[GroupKey, int]:
    credited: dict[GroupKey, int] = defaultdict(int)
    for row in InvoiceVatGroup.objects.filter(invoice__original=original, invoice__kind=DocumentKind.CREDIT_NOTE):
        credited[GroupKey(row.rate_bps, row.scheme, row.tax_country)] += row.gross_minor
    return dict(credited)


def _create_document(
    *,
    kind: str,
    series,
    sequence: int,
    number: str,
    payee: Payee,
    order: Order,
    groups: list[VatGroup],
    lines: list[InvoiceLine],
    supply_date,
    now: datetime,
    refund: Refund | None = None,
    original: Invoice | None = None,
) -> Invoice:
    net, vat, gross = totals(groups)
    main = max(groups, key=lambda group: group.gross_minor).key
    payment = _payment_summary(order)
    invoice = Invoice.objects.create(
        kind=kind,
        series=series,
        sequence=sequence,
        number=number,
        payee=payee,
        order=order,
        refund=refund,
        original=original,
        issuer_name=payee.legal_name,
        issuer_address=payee.address,
        issuer_country=payee.country,
        issuer_vat_id=payee.vat_id,
        recipient_name=order.buyer_name,
        recipient_address=order.buyer_address,
        recipient_email=order.buyer_email,
        recipient_country=order.buyer_country,
        recipient_vat_id=order.buyer_vat_id,
        recipient_vat_id_valid=order.buyer_vat_id_valid,
        currency=order.currency,
        net_minor=net,
        vat_minor=vat,
        gross_minor=gross,
        scheme=main.scheme,
        tax_country=main.tax_country,
        legends=legends_for(group.key.scheme for group in groups),
        payment_method=payment[0],
        paid_at=payment[1],
        supply_date=supply_date,
        issued_at=now,
        locale=order.locale or "en",
    )
    write_parts(invoice, lines=lines, groups=groups)
    return invoice


def write_parts(invoice: Invoice, *, lines: list[InvoiceLine], groups: list[VatGroup]) -> None:
    """A new document's lines and VAT breakdown, in the transaction that wrote its header."""
    for line in lines:
        line.invoice = invoice
    InvoiceLine.objects.bulk_create(lines)
    InvoiceVatGroup.objects.bulk_create(
        [
            InvoiceVatGroup(
                invoice=invoice,
                rate_bps=group.key.rate_bps,
                scheme=group.key.scheme,
                tax_country=group.key.tax_country,
                net_minor=group.net_minor,
                vat_minor=group.vat_minor,
                gross_minor=group.gross_minor,
            )
            for group in groups
        ]
    )


def legends_for(schemes: Iterable[str]) -> str:
    """The legal notes of the schemes on a document, one per line, in a stable order."""
    return "\n".join(sorted({LEGENDS[scheme] for scheme in schemes if scheme in LEGENDS}))


def _payment_summary(order: Order) -> tuple[str, datetime | None]:
    from payments.providers.base import ProviderConfigurationError
    from payments.providers.registry import get_provider

    payments = list(
        Payment.objects.filter(order=order, status=PaymentStatus.SUCCEEDED, captured_minor__gt=0).order_by("pk")
    )
    names = []
    for payment in payments:
        try:
            name = get_provider(payment.provider).display_name
        except ProviderConfigurationError:  # a provider no longer configured: its name will do
            name = payment.provider
        if name not in names:
            names.append(name)
    return ", ".join(names)[:100], order.paid_at


def _year(now: datetime) -> int:
    return timezone.localdate(now).year


def issue_missing_documents(
    *, now: datetime, grace: timedelta = timedelta(minutes=10), window: timedelta = timedelta(days=7)
) -> list[Invoice]:
    """The safety net behind the on-commit tasks (a broker that was down, a worker killed mid-task): invoices
    of orders paid in the last `window` (but more than `grace` ago) that some payee still lacks, and credit
    notes of refunds that succeeded then. Issuing is idempotent, so anything done meanwhile is left alone."""
    since, until = now - window, now - grace
    issued: list[Invoice] = []
    orders = (
        Order.objects.filter(status__in=INVOICED_STATUSES, paid_at__gte=since, paid_at__lt=until)
        .annotate(
            payees=Count("lines__payee", distinct=True),
            invoiced=Count("invoices", filter=Q(invoices__kind=DocumentKind.INVOICE), distinct=True),
        )
        .filter(invoiced__lt=F("payees"))
        .values_list("pk", flat=True)
    )
    for order_id in orders:
        issued += issue_order_invoices(order_id=order_id, now=now)
    refunds = Refund.objects.filter(
        status=RefundStatus.SUCCEEDED,
        is_overpayment=False,
        succeeded_at__gte=since,
        succeeded_at__lt=until,
        credit_notes__isnull=True,
    ).values_list("pk", flat=True)
    for refund_id in refunds:
        issued += issue_refund_credit_notes(refund_id=refund_id, now=now)
    return issued
