"""What the demo loader reports back."""

from __future__ import annotations

from dataclasses import dataclass, field

from ledger.selectors import LedgerCheckReport


class DemoDataError(Exception):
    pass


@dataclass(frozen=True)
class Login:
    username: str
    password: str | None  # None: the user existed before and its password was left alone
    label: str


@dataclass
class DemoResult:
    already_loaded: bool
    admin: Login | None = None
    portal_logins: list[Login] = field(default_factory=list)
    api_key: str | None = None  # only when created by this run: it cannot be shown again
    link_urls: list[tuple[str, str]] = field(default_factory=list)
    order_counts: dict[str, int] = field(default_factory=dict)
    payment_counts: dict[str, int] = field(default_factory=dict)
    refunds: int = 0
    webhook_events: int = 0
    ledger: LedgerCheckReport | None = None
    open_checkout_url: str = ""
    api_order_token: str = ""
    example_payee_id: int | None = None
