"""Reads for the payee portal. Every query here is scoped to one payee: its own order lines (never another
payee's lines of a shared order), its own refund lines, payouts and statements."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from django.db.models import F, Prefetch, QuerySet, Sum
from django.db.models.functions import TruncMonth
from django.utils import timezone

from commissions.models import Payee, Payout, PayoutMethod, PayoutStatement
from payments.models import Order, OrderLine
from refunds.models import RefundLine, RefundStatus

CHART_MONTHS = 12
# Payouts that did not leave, or came back, are not counted in the chart.
PAYOUTS_NOT_COUNTED = [Payout.Status.FAILED, Payout.Status.REVERSED]
# Refunds that reversed (or are reversing) the payee's share; requested/failed/canceled ones did not.
REFUNDS_COUNTED = [RefundStatus.APPROVED, RefundStatus.PROCESSING, RefundStatus.SUCCEEDED]


# --- Monthly sales and payouts (the dashboard's chart) ---------------------------------------------------


@dataclass
class MonthTotals:
    month: date  # the first day of the month
    sales_minor: int = 0
    payouts_minor: int = 0


@dataclass
class CurrencyActivity:
    currency: str
    months: list[MonthTotals] = field(default_factory=list)

    @property
    def sales_minor(self) -> int:
        return sum(month.sales_minor for month in self.months)

    @property
    def payouts_minor(self) -> int:
        return sum(month.payouts_minor for month in self.months)


def last_months(now: datetime, count: int = CHART_MONTHS) -> list[date]:
    """The first days of the `count` months ending with `now`'s month, oldest first."""
    year, month = now.year, now.month
    months = []
    for _ in range(count):
        months.append(date(year, month, 1))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return months[::-1]


def _month_of(value) -> date:
    return date(value.year, value.month, 1)


def monthly_activity(payee: Payee, *, now: datetime | None = None) -> list[CurrencyActivity]:
    """Per currency (those with any activity), the last 12 months of: sales = the payee's share of its lines
    of paid orders, by the month the order was paid (before refunds); payouts = payouts by the month they
    were created (failed and reversed ones left out, partial reversals deducted)."""
    now = timezone.localtime(now or timezone.now())
    months = last_months(now)
    start = datetime(months[0].year, months[0].month, 1, tzinfo=now.tzinfo)
    sales = (
        OrderLine.objects.filter(payee=payee, order__paid_at__gte=start, order__paid_at__isnull=False)
        .annotate(month=TruncMonth("order__paid_at"))
        .values("order__currency", "month")
        .annotate(total=Sum("payee_share_minor"))
    )
    payouts = (
        Payout.objects.filter(payee=payee, created_at__gte=start)
        .exclude(status__in=PAYOUTS_NOT_COUNTED)
        .annotate(month=TruncMonth("created_at"))
        .values("currency", "month")
        .annotate(total=Sum(F("amount_minor") - F("reversed_minor")))
    )
    by_currency: dict[str, dict[date, MonthTotals]] = {}

    def bucket(currency: str, month) -> MonthTotals | None:
        table = by_currency.setdefault(currency, {first: MonthTotals(first) for first in months})
        return table.get(_month_of(month))

    for row in sales:
        if (totals := bucket(row["order__currency"], row["month"])) is not None:
            totals.sales_minor += row["total"] or 0
    for row in payouts:
        if (totals := bucket(row["currency"], row["month"])) is not None:
            totals.payouts_minor += row["total"] or 0
    activity = [CurrencyActivity(currency, list(table.values())) for currency, table in sorted(by_currency.items())]
    return [item for item in activity if item.sales_minor or item.payouts_minor]


# --- Orders ----------------------------------------------------------------------------------------------


def payee_orders(payee: Payee) -> QuerySet[Order]:
    """Paid orders (including those refunded since) with at least one of the payee's lines, newest first,
    annotated with the payee's part only: `own_gross_minor`, `own_share_minor`."""
    return (
        Order.objects.filter(lines__payee=payee, paid_at__isnull=False)
        .annotate(own_gross_minor=Sum("lines__amount_minor"), own_share_minor=Sum("lines__payee_share_minor"))
        .order_by("-paid_at", "-pk")
    )


def refunded_share_by_order(payee: Payee, order_ids: list[int]) -> dict[int, int]:
    """Of each order, how much of the payee's share its refunds took back."""
    rows = (
        RefundLine.objects.filter(
            order_line__payee=payee, order_line__order_id__in=order_ids, refund__status__in=REFUNDS_COUNTED
        )
        .values("order_line__order_id")
        .annotate(total=Sum("payee_share_minor"))
    )
    return {row["order_line__order_id"]: row["total"] or 0 for row in rows}


@dataclass
class OrderRefund:
    """One refund as the payee sees it: only the part of it that touched the payee's lines."""

    refund: object
    amount_minor: int
    payee_share_minor: int
    lines: list = field(default_factory=list)


@dataclass
class PayeeOrder:
    order: Order
    lines: list[OrderLine]
    refunds: list[OrderRefund]

    @property
    def gross_minor(self) -> int:
        return sum(line.amount_minor for line in self.lines)

    @property
    def commission_minor(self) -> int:
        return sum(line.commission_minor + line.commission_vat_minor for line in self.lines)

    @property
    def share_minor(self) -> int:
        return sum(line.payee_share_minor for line in self.lines)

    @property
    def refunded_share_minor(self) -> int:
        return sum(refund.payee_share_minor for refund in self.refunds if refund.refund.status in REFUNDS_COUNTED)


def payee_order(payee: Payee, token) -> PayeeOrder | None:
    """The order with this token, as far as it is the payee's: its lines and the refunds of them. None when
    the order does not exist, is not paid, or has none of the payee's lines."""
    order = Order.objects.filter(token=token, paid_at__isnull=False, lines__payee=payee).distinct().first()
    if order is None:
        return None
    own_refund_lines = RefundLine.objects.filter(order_line__payee=payee).select_related("refund")
    lines = list(
        OrderLine.objects.filter(order=order, payee=payee)
        .prefetch_related(Prefetch("refund_lines", queryset=own_refund_lines.order_by("pk")))
        .order_by("position")
    )
    refunds: dict[int, OrderRefund] = {}
    for line in lines:
        for refund_line in line.refund_lines.all():
            item = refunds.setdefault(refund_line.refund_id, OrderRefund(refund_line.refund, 0, 0))
            item.amount_minor += refund_line.amount_minor
            item.payee_share_minor += refund_line.payee_share_minor
            item.lines.append((line, refund_line))
    ordered = sorted(refunds.values(), key=lambda item: (item.refund.created_at, item.refund.pk))
    return PayeeOrder(order=order, lines=lines, refunds=ordered)


# --- Payouts, statements, payout method -----------------------------------------------------------------


def payee_payouts(payee: Payee) -> QuerySet[Payout]:
    return Payout.objects.filter(payee=payee).order_by("-created_at", "-pk")


def payee_statements(payee: Payee) -> QuerySet[PayoutStatement]:
    return PayoutStatement.objects.filter(payee=payee).defer("pdf").order_by("-period_end", "-pk")


def mask_iban(iban: str) -> str:
    """'CZ6508000000192000145399' -> 'CZ65 •••• •••• •••• 5399': country and check digits and the last four,
    never the rest (nor its length)."""
    compact = "".join(iban.split()).upper()
    if not compact:
        return ""
    if len(compact) <= 8:
        return "••••"
    return f"{compact[:4]} •••• •••• •••• {compact[-4:]}"


def stripe_onboarding_needed(payee: Payee) -> bool:
    """Stripe Connect is the payee's payout method and Stripe has not enabled payouts to its account yet."""
    return payee.payout_method == PayoutMethod.STRIPE_TRANSFER and not payee.stripe_payouts_enabled
