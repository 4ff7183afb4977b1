"""The platform's monthly commission invoice to each payee (one per payee, month and currency).

It lists each order paid in the month with the commission taken on the payee's lines, and each refund that
returned commission in the month as a negative line. Net and VAT are the amounts booked in the ledger when
the order was paid (`platform:commission`, `platform:vat_payable`), VAT computed per order and rounded
half-up then: the invoice therefore matches the ledger to the cent, and its VAT groups are the sums of the
booked amounts per rate and scheme (platform rate, or reverse charge for an EU payee with a valid VAT id, or
outside the scope for a payee outside the EU). A month with more commission returned than earned gives a
negative total: a commission credit; one where it nets to zero (earned and returned within the month) gets
no document.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from commissions.models import Payee
from invoicing.amounts import GroupKey, VatGroup
from invoicing.models import DocumentKind, Invoice, InvoiceLine
from invoicing.services.issuing import legends_for, write_parts
from invoicing.services.numbering import take_number
from invoicing.vat import VatScheme
from payments.models import Order, OrderLine
from refunds.models import Refund, RefundLine, RefundStatus


@dataclass(frozen=True)
class CommissionItem:
    description: str
    order_id: int
    key: GroupKey
    net_minor: int
    vat_minor: int

    @property
    def gross_minor(self) -> int:
        return self.net_minor + self.vat_minor


def month_bounds(year: int, month: int) -> tuple[date, date]:
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


def previous_month(today: date) -> tuple[int, int]:
    first = today.replace(day=1) - timedelta(days=1)
    return first.year, first.month


def _window(start: date, end: date) -> tuple[datetime, datetime]:
    tz = timezone.get_current_timezone()
    return (
        datetime.combine(start, time.min, tzinfo=tz),
        datetime.combine(end + timedelta(days=1), time.min, tzinfo=tz),
    )


def _tax_country(scheme: str, payee: Payee) -> str:
    return settings.TOLLGATE_PLATFORM_COUNTRY if scheme == VatScheme.DOMESTIC else payee.country


def commission_items(*, payee: Payee, currency: str, start: date, end: date) -> list[CommissionItem]:
    """What the invoice lists: commission on orders paid in [start, end], less commission returned by refunds
    that succeeded in it (the same amounts the ledger booked)."""
    since, until = _window(start, end)
    items: list[CommissionItem] = []
    paid = (
        OrderLine.objects.filter(
            payee=payee, order__currency=currency, order__paid_at__gte=since, order__paid_at__lt=until
        )
        .values(
            "order_id",
            "order__reference",
            "order__token",
            "order__paid_at",
            "commission_vat_bps",
            "commission_vat_scheme",
        )
        .annotate(net=Sum("commission_minor"), vat=Sum("commission_vat_minor"))
        .order_by("order__paid_at", "order_id")
    )
    for row in paid:
        if not row["net"] and not row["vat"]:
            continue
        key = GroupKey(
            row["commission_vat_bps"], row["commission_vat_scheme"], _tax_country(row["commission_vat_scheme"], payee)
        )
        label = row["order__reference"] or str(row["order__token"])[:8]
        day = timezone.localdate(row["order__paid_at"]).isoformat()
        items.append(
            CommissionItem(f"Commission on order {label} ({day})", row["order_id"], key, row["net"], row["vat"])
        )
    returned = (
        RefundLine.objects.filter(
            order_line__payee=payee,
            refund__currency=currency,
            refund__status=RefundStatus.SUCCEEDED,
            refund__commission_returned=True,
            refund__is_overpayment=False,
            refund__succeeded_at__gte=since,
            refund__succeeded_at__lt=until,
        )
        .values(
            "refund_id",
            "refund__order_id",
            "refund__order__reference",
            "refund__order__token",
            "refund__succeeded_at",
            "order_line__commission_vat_bps",
            "order_line__commission_vat_scheme",
        )
        .annotate(net=Sum("commission_minor"), vat=Sum("commission_vat_minor"))
        .order_by("refund__succeeded_at", "refund_id")
    )
    for row in returned:
        if not row["net"] and not row["vat"]:
            continue
        scheme = row["order_line__commission_vat_scheme"]
        key = GroupKey(row["order_line__commission_vat_bps"], scheme, _tax_country(scheme, payee))
        label = row["refund__order__reference"] or str(row["refund__order__token"])[:8]
        day = timezone.localdate(row["refund__succeeded_at"]).isoformat()
        items.append(
            CommissionItem(
                f"Commission returned: refund {row['refund_id']} of order {label} ({day})",
                row["refund__order_id"],
                key,
                -row["net"],
                -row["vat"],
            )
        )
    return items


def payees_to_invoice(*, start: date, end: date) -> list[tuple[int, str]]:
    """(payee id, currency) pairs with commission activity in the period."""
    since, until = _window(start, end)
    pairs = set(
        OrderLine.objects.filter(order__paid_at__gte=since, order__paid_at__lt=until, commission_minor__gt=0)
        .values_list("payee_id", "order__currency")
        .distinct()
    )
    pairs |= set(
        Refund.objects.filter(
            status=RefundStatus.SUCCEEDED,
            commission_returned=True,
            succeeded_at__gte=since,
            succeeded_at__lt=until,
            lines__commission_minor__gt=0,
        )
        .values_list("lines__order_line__payee_id", "currency")
        .distinct()
    )
    return sorted(pairs)


def issue_monthly_commission_invoices(*, year: int, month: int, now: datetime, progress=None) -> list[Invoice]:
    start, end = month_bounds(year, month)
    pairs = payees_to_invoice(start=start, end=end)
    issued = []
    for index, (payee_id, currency) in enumerate(pairs, start=1):
        document = issue_commission_invoice(payee_id=payee_id, currency=currency, year=year, month=month, now=now)
        if document is not None:
            issued.append(document)
        if progress:
            progress(index, len(pairs))
    return issued


def issue_commission_invoice(*, payee_id: int, currency: str, year: int, month: int, now: datetime) -> Invoice | None:
    start, end = month_bounds(year, month)
    lookup = {
        "kind": DocumentKind.COMMISSION_INVOICE,
        "payee_id": payee_id,
        "period_start": start,
        "currency": currency,
    }
    existing = Invoice.objects.filter(**lookup).first()
    if existing is not None:
        return existing
    payee = Payee.objects.get(pk=payee_id)
    items = commission_items(payee=payee, currency=currency, start=start, end=end)
    if sum(item.net_minor for item in items) == 0 and sum(item.vat_minor for item in items) == 0:
        return None  # commission earned and returned within the month: nothing to invoice
    groups: dict[GroupKey, list[int]] = defaultdict(lambda: [0, 0])
    for item in items:
        groups[item.key][0] += item.net_minor
        groups[item.key][1] += item.vat_minor
    net = sum(item.net_minor for item in items)
    vat = sum(item.vat_minor for item in items)
    main = max(groups, key=lambda key: abs(groups[key][0] + groups[key][1]))
    try:
        with transaction.atomic():
            series, sequence, number = take_number(
                payee=None, kind=DocumentKind.COMMISSION_INVOICE, year=timezone.localdate(now).year
            )
            if Invoice.objects.filter(**lookup).exists():
                raise IntegrityError("issued meanwhile")
            invoice = Invoice.objects.create(
                kind=DocumentKind.COMMISSION_INVOICE,
                series=series,
                sequence=sequence,
                number=number,
                payee=payee,
                period_start=start,
                period_end=end,
                issuer_name=settings.TOLLGATE_PLATFORM_LEGAL_NAME,
                issuer_address=settings.TOLLGATE_PLATFORM_ADDRESS,
                issuer_country=settings.TOLLGATE_PLATFORM_COUNTRY,
                issuer_vat_id=settings.TOLLGATE_PLATFORM_VAT_ID,
                recipient_name=payee.legal_name,
                recipient_address=payee.address,
                recipient_email=payee.email,
                recipient_country=payee.country,
                recipient_vat_id=payee.vat_id,
                recipient_vat_id_valid=any(key.scheme == VatScheme.REVERSE_CHARGE for key in groups),
                currency=currency,
                net_minor=net,
                vat_minor=vat,
                gross_minor=net + vat,
                scheme=main.scheme,
                tax_country=main.tax_country,
                legends=legends_for(key.scheme for key in groups),
                payment_method="Deducted from your payouts",
                supply_date=end,
                issued_at=now,
            )
            write_parts(
                invoice,
                lines=[
                    InvoiceLine(
                        position=position,
                        description=item.description[:300],
                        quantity=1,
                        unit_gross_minor=item.gross_minor,
                        gross_minor=item.gross_minor,
                        net_minor=item.net_minor,
                        vat_minor=item.vat_minor,
                        vat_rate_bps=item.key.rate_bps,
                        scheme=item.key.scheme,
                        tax_country=item.key.tax_country,
                        order=Order(pk=item.order_id),
                    )
                    for position, item in enumerate(items, start=1)
                ],
                # Net and VAT as booked per order (summed, not re-rounded): see the module's docstring.
                groups=[
                    VatGroup(key, net + vat, vat)
                    for key, (net, vat) in sorted(groups.items(), key=lambda item: (-item[0].rate_bps, item[0].scheme))
                ],
            )
    except IntegrityError:
        return Invoice.objects.get(**lookup)
    return invoice
