"""A payee's statement figures, read from the ledger only.

The statement covers the payee's whole balance in one currency (pending + available + reserved): moves between
those accounts (a release, a dispute hold) are not movements of it. Each ledger transaction that changes the
balance is one statement item; its net change on the payee's accounts is what the entries say, and it is split
into the statement's figures by the transaction's kind and, for captures and refunds, by the per-payee breakdown
the posting stored in its metadata (`payees`: sales, commission and VAT on it, refunds) — used only when it adds
up to the entries' net, so the statement can never disagree with the ledger.

Periods are half-open `[start, end)` on the time the ledger posted a transaction (`posted_at`, never backdated),
so consecutive statements chain exactly: one period's closing balance is the next one's opening balance."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from ledger.models import Account, Direction, Entry, LedgerTransaction
from ledger.selectors import payee_account_roles

FIGURES = ("sales", "refunds", "disputes", "commission", "commission_vat", "adjustments", "payouts")
# How each figure counts towards the closing balance (the PayoutStatement constraint says the same).
SIGN = {
    "sales": 1,
    "refunds": -1,
    "disputes": -1,
    "commission": -1,
    "commission_vat": -1,
    "adjustments": 1,
    "payouts": -1,
}
LABELS = {
    "sales": "Sales",
    "refunds": "Refunds",
    "disputes": "Disputes",
    "commission": "Commission",
    "commission_vat": "VAT on commission",
    "adjustments": "Adjustments",
    "payouts": "Payouts",
}
# A transaction without a breakdown counts whole under its kind's figure; anything else is an adjustment.
KIND_FIGURE = {
    "capture": "sales",
    "authorization_release": "sales",
    "refund": "refunds",
    "dispute_loss": "disputes",
    "dispute_fee": "disputes",
    "payout": "payouts",
    "payout_reversal": "payouts",
    "payee_adjustment": "adjustments",
}
KIND_LABELS = {
    "capture": "Sale",
    "authorization_release": "Part of a sale not captured",
    "refund": "Refund",
    "dispute_loss": "Dispute lost",
    "dispute_fee": "Dispute fee",
    "payout": "Payout",
    "payout_reversal": "Payout returned",
    "payee_adjustment": "Adjustment",
}


@dataclass
class StatementItem:
    transaction_id: str
    posted_at: datetime
    kind: str
    label: str
    memo: str
    figures: dict[str, int]
    net: int


@dataclass
class StatementFigures:
    payee_id: int
    currency: str
    start: datetime
    end: datetime
    opening: int
    figures: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FIGURES, 0))
    items: list[StatementItem] = field(default_factory=list)
    closing_by_account: dict[str, int] = field(default_factory=dict)

    @property
    def closing(self) -> int:
        return self.opening + sum(SIGN[name] * amount for name, amount in self.figures.items())

    @property
    def has_activity(self) -> bool:
        return bool(self.items) or self.opening != 0


def payee_accounts(payee_id: int, currency: str) -> dict[int, str]:
    """The payee's balance accounts in the currency: {account id: 'pending' | 'available' | 'reserved'}."""
    codes = payee_account_roles(payee_id)
    rows = Account.objects.filter(code__in=codes, currency=currency).values_list("pk", "code")
    return {pk: codes[code] for pk, code in rows}


def _payee_entries(account_ids: dict[int, str]) -> list[tuple[int, str, str, int, datetime]]:
    """Every entry on the payee's balance accounts with its posting time: (account id, transaction id,
    direction, amount, posted at). Read by the accounts' index and joined to each entry's transaction by its
    key; filtering on the posting time in SQL let the planner hash-join all the ledger's transactions."""
    return list(
        Entry.objects.filter(account_id__in=account_ids).values_list(
            "account_id", "transaction_id", "direction", "amount_minor", "transaction__posted_at"
        )
    )


def _signed(direction: str, amount: int) -> int:
    return amount if direction == Direction.CREDIT else -amount  # the payee accounts are credit-positive


def _balances(account_ids: dict[int, str], entries, moment: datetime) -> dict[str, int]:
    totals: dict[int, int] = defaultdict(int)
    for account_id, _, direction, amount, posted_at in entries:
        if posted_at < moment:
            totals[account_id] += _signed(direction, amount)
    return {name: totals.get(pk, 0) for pk, name in sorted(account_ids.items(), key=lambda kv: kv[1])}


def first_activity(payee_id: int, currency: str) -> datetime | None:
    """When the payee's first balance movement in the currency was posted (None: never)."""
    entries = _payee_entries(payee_accounts(payee_id, currency))
    return min((posted_at for *_, posted_at in entries), default=None)


def item_figures(*, kind: str, net: int, breakdown: dict | None, reversed_kind: str | None = None) -> dict[str, int]:
    """Split a transaction's net change of the payee's balance into statement figures. A reversal counts under
    the figure of what it reverses (a failed payout given back is a negative payout)."""
    if breakdown:
        parts = {name: int(breakdown.get(name, 0)) for name in FIGURES if breakdown.get(name)}
        if sum(SIGN[name] * amount for name, amount in parts.items()) == net:
            return parts
    figure = KIND_FIGURE.get(reversed_kind or kind, "adjustments")
    return {figure: SIGN[figure] * net}


def statement_figures(*, payee_id: int, currency: str, start: datetime, end: datetime) -> StatementFigures:
    account_ids = payee_accounts(payee_id, currency)
    entries = _payee_entries(account_ids)
    opening = sum(_balances(account_ids, entries, start).values())
    result = StatementFigures(payee_id=payee_id, currency=currency, start=start, end=end, opening=opening)
    nets: dict[str, int] = defaultdict(int)
    for _, tx_id, direction, amount, posted_at in entries:
        if start <= posted_at < end:
            nets[tx_id] += _signed(direction, amount)
    moving = [tx_id for tx_id, net in nets.items() if net]
    headers = (
        LedgerTransaction.objects.filter(pk__in=moving)
        .select_related("reverses")
        .only("id", "kind", "memo", "metadata", "posted_at", "reverses__kind")
        .order_by("posted_at", "id")
    )
    for tx in headers:
        net = nets[tx.pk]
        breakdown = (tx.metadata or {}).get("payees", {}).get(str(payee_id))
        reversed_kind = tx.reverses.kind if tx.reverses_id else None
        parts = item_figures(kind=tx.kind, net=net, breakdown=breakdown, reversed_kind=reversed_kind)
        for name, amount in parts.items():
            result.figures[name] += amount
        label = KIND_LABELS.get(reversed_kind or tx.kind, tx.kind.replace("_", " ").capitalize())
        if reversed_kind:
            label = f"{label} reversed"
        result.items.append(
            StatementItem(
                transaction_id=str(tx.pk),
                posted_at=tx.posted_at,
                kind=tx.kind,
                label=label,
                memo=tx.memo,
                figures=parts,
                net=net,
            )
        )
    result.closing_by_account = _balances(account_ids, entries, end)
    return result
