"""The geometry of the portal's sales-and-payouts bar chart, drawn as inline SVG by `portal/_chart.html`
(server-rendered, no JavaScript; presentation attributes only, so the CSP needs no inline styles)."""

from __future__ import annotations

from dataclasses import dataclass

from commissions.portal.selectors import CurrencyActivity
from ledger.money import format_money

WIDTH, HEIGHT = 760, 320
LEFT, RIGHT, TOP, BOTTOM = 110, 16, 96, 56
PLOT_WIDTH = WIDTH - LEFT - RIGHT
PLOT_HEIGHT = HEIGHT - TOP - BOTTOM
BAR_WIDTH, BAR_GAP = 18, 4


@dataclass
class Bar:
    series: str  # "sales" | "payouts"
    label: str  # "Sales" | "Payouts"
    amount_minor: int
    text: str  # the formatted amount
    x: float
    y: float
    height: float

    @property
    def label_x(self) -> float:
        return round(self.x + BAR_WIDTH / 2 + 3.5, 1)

    @property
    def label_y(self) -> float:
        return round(self.y - 4, 1)


@dataclass
class MonthGroup:
    key: str  # "2026-03"
    name: str  # "Mar 2026"
    short: str  # "Mar"
    year: str  # "2026" on the first month and each January, else ""
    center: float
    bars: list[Bar]


@dataclass
class Tick:
    y: float
    text: str


@dataclass
class Chart:
    currency: str
    slug: str
    months: list[MonthGroup]
    ticks: list[Tick]
    sales_text: str
    payouts_text: str
    period: str
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right_edge: int = WIDTH - RIGHT
    top: int = TOP
    baseline: int = TOP + PLOT_HEIGHT
    axis_title_y: int = HEIGHT - 6


def nice_ceiling(value: int) -> int:
    """The smallest 1, 2 or 5 × 10^k (in minor units) at or above `value`, so the axis reads in round steps."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= value:
                return step * factor
        step *= 10


def _y(amount: int, top_value: int) -> float:
    return round(TOP + PLOT_HEIGHT - PLOT_HEIGHT * amount / top_value, 1)


def build_chart(activity: CurrencyActivity) -> Chart:
    currency = activity.currency
    largest = max([m.sales_minor for m in activity.months] + [m.payouts_minor for m in activity.months] + [1])
    top_value = nice_ceiling(largest)
    values = sorted({0, top_value // 2, top_value})
    ticks = [Tick(_y(value, top_value), format_money(value, currency)) for value in values]
    slot = PLOT_WIDTH / len(activity.months)
    groups = []
    for index, month in enumerate(activity.months):
        center = LEFT + slot * index + slot / 2
        bars = []
        for offset, series, label, amount in (
            (-(BAR_WIDTH + BAR_GAP / 2), "sales", "Sales", month.sales_minor),
            (BAR_GAP / 2, "payouts", "Payouts", month.payouts_minor),
        ):
            shown = max(amount, 0)
            y = _y(shown, top_value)
            bars.append(
                Bar(
                    series=series,
                    label=label,
                    amount_minor=amount,
                    text=format_money(amount, currency),
                    x=round(center + offset, 1),
                    y=y,
                    height=round(TOP + PLOT_HEIGHT - y, 1),
                )
            )
        first = index == 0 or month.month.month == 1
        groups.append(
            MonthGroup(
                key=month.month.strftime("%Y-%m"),
                name=month.month.strftime("%b %Y"),
                short=month.month.strftime("%b"),
                year=month.month.strftime("%Y") if first else "",
                center=round(center, 1),
                bars=bars,
            )
        )
    return Chart(
        currency=currency,
        slug=currency.lower(),
        months=groups,
        ticks=ticks,
        sales_text=format_money(activity.sales_minor, currency),
        payouts_text=format_money(activity.payouts_minor, currency),
        period=f"{groups[0].name} – {groups[-1].name}",
    )
