"""What the demo data is made of: payees, payment links, carts, and what happens to each order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo

from commissions.models import Payee
from invoicing.vat import VatCategory
from payments.models import LineKind

SEED = 20260115
PROVIDER = "sandbox"
API_CLIENT_NAME = "Demo marketplace"
API_KEY_NAME = "Demo key (printed once)"
# Development-only passwords, documented in the README and printed by the command. The command refuses
# to run with DEBUG off unless --force.
ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "tollgate-admin-demo"  # noqa: S105 - published dev password
PORTAL_PASSWORD = "tollgate-portal-demo"  # noqa: S105 - published dev password
OPEN_ORDER_TTL = timedelta(days=3)  # open demo orders stay payable for a while after loading
PRAGUE = ZoneInfo("Europe/Prague")

# --- What gets created --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PayeeSpec:
    key: str
    username: str
    kind: str
    legal_name: str
    country: str
    email: str
    vat_id: str = ""
    commission_bps: int | None = None
    address: str = ""


PAYEES = [
    PayeeSpec("autozvuk", "autozvuk", Payee.Kind.SELLER, "Autozvuk Praha s.r.o.", "CZ",
              "obchod@autozvuk.example.com", vat_id="CZ17452333",
              address="Vinohradská 1511/230\n100 00 Praha 10"),
    PayeeSpec("basslab", "basslab", Payee.Kind.SELLER, "Bass Lab GmbH", "DE", "shop@basslab.example.com",
              vat_id="DE281234569", commission_bps=800, address="Oranienstraße 183\n10999 Berlin"),
    PayeeSpec("jazz", "jazznights", Payee.Kind.ORGANIZER, "Prague Jazz Nights z.s.", "CZ",
              "vstupenky@jazznights.example.com", address="Karlova 183/9\n110 00 Praha 1"),
]  # fmt: skip


@dataclass(frozen=True)
class Item:
    payee: str
    description: str
    unit_minor: int
    kind: str = LineKind.GOODS
    vat_category: str = VatCategory.STANDARD
    event: bool = False  # an event ticket for the demo concert


@dataclass(frozen=True)
class LinkSpec:
    slug: str
    title: str
    description: str
    currency: str
    items: tuple[Item, ...]
    allow_quantity: bool = True
    max_quantity: int = 10


CONCERT = "Blue Note Evening"
LINKS = [
    LinkSpec("car-amplifier", "Autozvuk AMP-4100 car amplifier",
             "Four-channel class-D amplifier, 4 × 100 W RMS. Shipped from Prague within two working days.", "EUR",
             (Item("autozvuk", "Amplifier AMP-4100, 4 × 100 W", 12900),), max_quantity=4),
    LinkSpec("subwoofer-sw12", "Bass Lab SW-12 subwoofer", "30 cm subwoofer, 500 W RMS, sealed enclosure.", "EUR",
             (Item("basslab", "Subwoofer SW-12, 30 cm, 500 W RMS", 24900),), max_quantity=4),
    LinkSpec("jazz-night-tickets", f"Prague Jazz Nights: {CONCERT}",
             "Admission ticket, Jazz Dock Prague. Reduced VAT rate for cultural events.", "CZK",
             (Item("jazz", f"Admission: {CONCERT}", 65000, LineKind.EVENT_TICKET, VatCategory.REDUCED, True),),
             max_quantity=8),
    LinkSpec("amp-install-bundle", "Amplifier wiring kit with installation",
             "Installation at Autozvuk Praha plus a Bass Lab 8 AWG wiring kit: one payment, two sellers.", "CZK",
             (Item("autozvuk", "Installation at Autozvuk Praha (2 h)", 180000, LineKind.SERVICE),
              Item("basslab", "Amplifier wiring kit, 8 AWG", 149000)), allow_quantity=False),
    LinkSpec("rca-cables-jpy", "Bass Lab RCA interconnects (JPY)",
             "RCA interconnect set, 5 m, priced in yen (a zero-decimal currency).", "JPY",
             (Item("basslab", "RCA interconnect set, 5 m", 4800),), max_quantity=5),
]  # fmt: skip

# Orders the marketplace sends through the API (the rest come from payment links).
API_CARTS: dict[str, tuple[str, tuple[Item, ...]]] = {
    "speakers-eur": ("EUR", (Item("autozvuk", "Component speakers 165 mm, pair", 8900),
                             Item("basslab", "RCA interconnect set, 5 m", 2490))),
    "amplifier-czk": ("CZK", (Item("autozvuk", "Amplifier AMP-4100, 4 × 100 W", 329000),)),
    "dsp-tuning-eur": ("EUR", (Item("basslab", "DSP tuning session (1 h)", 9900, LineKind.SERVICE),)),
    "subwoofer-usd": ("USD", (Item("basslab", "Subwoofer SW-12, 30 cm, 500 W RMS", 27900),)),
    "head-unit-czk": ("CZK", (Item("autozvuk", "Head unit HU-7, Apple CarPlay", 749000),
                              Item("autozvuk", "Installation at Autozvuk Praha (1 h)", 90000, LineKind.SERVICE))),
    "vip-table-czk": ("CZK", (Item("jazz", f"VIP table for four: {CONCERT}", 320000, LineKind.EVENT_TICKET,
                                   VatCategory.REDUCED, True),)),
}  # fmt: skip

# What happens to each order, step by step (see `_Loader._step`).
PLANS: dict[str, tuple] = {
    "paid": ("start", "pay"),
    "paid_3ds": ("start", "3ds", "pay"),
    "paid_after_decline": ("start", "decline", "start", "pay"),
    "paid_after_abandon": ("start", "abandon", "start", "pay"),
    "partially_refunded": ("start", "pay", "refund_part"),
    "refunded": ("start", "pay", "refund_all"),
    "refunded_in_two": ("start", "pay", "refund_part", "refund_rest"),
    "double_payment": ("double_click", "pay_second", "pay_first"),
    "canceled": ("cancel",),
    "canceled_pending": ("start", "cancel"),
    "canceled_late_payment": ("start", "cancel_while_paying"),
    "expired": ("expire",),
    "expired_pending": ("start", "expire"),
    "expired_after_decline": ("start", "decline", "expire"),
    "expired_3ds": ("start", "3ds", "expire"),
    "open": (),
    "open_pending": ("start",),
    "open_3ds": ("start", "3ds"),
    "open_declined": ("start", "3ds", "decline"),
}
LABELS = {
    "paid": "paid",
    "paid_3ds": "paid after 3-D Secure",
    "paid_after_decline": "paid after a declined card",
    "paid_after_abandon": "paid after leaving the payment page once",
    "partially_refunded": "paid, partly refunded",
    "refunded": "paid, refunded in full",
    "refunded_in_two": "paid, refunded in two steps",
    "double_payment": "paid twice (two tabs): second payment refunded automatically",
    "canceled": "canceled before payment",
    "canceled_pending": "canceled while a payment was open",
    "canceled_late_payment": "canceled, then paid anyway: refunded automatically",
    "expired": "expired unpaid",
    "expired_pending": "expired with an unfinished payment",
    "expired_after_decline": "expired after a declined card",
    "expired_3ds": "expired during 3-D Secure",
    "open": "open, not started",
    "open_pending": "open, buyer on the payment page",
    "open_3ds": "open, waiting for 3-D Secure",
    "open_declined": "open, 3-D Secure failed (buyer may retry)",
}

# (plan, source, decline reason): a source is a payment-link slug or "api:<cart>".
ORDERS: list[tuple[str, str, str]] = [
    ("paid", "car-amplifier", ""),
    ("paid", "subwoofer-sw12", ""),
    ("paid", "jazz-night-tickets", ""),
    ("paid", "jazz-night-tickets", ""),
    ("paid", "amp-install-bundle", ""),
    ("paid", "rca-cables-jpy", ""),
    ("paid", "api:subwoofer-usd", ""),
    ("paid", "api:speakers-eur", ""),
    ("paid_3ds", "api:head-unit-czk", ""),
    ("paid_3ds", "subwoofer-sw12", ""),
    ("paid_after_decline", "car-amplifier", "insufficient_funds"),
    ("paid_after_decline", "jazz-night-tickets", "expired_card"),
    ("paid_after_decline", "api:amplifier-czk", "do_not_honor"),
    ("paid_after_abandon", "api:dsp-tuning-eur", ""),
    ("paid_after_abandon", "api:vip-table-czk", ""),
    ("partially_refunded", "car-amplifier", ""),
    ("partially_refunded", "api:speakers-eur", ""),
    ("partially_refunded", "jazz-night-tickets", ""),
    ("partially_refunded", "rca-cables-jpy", ""),
    ("refunded", "subwoofer-sw12", ""),
    ("refunded", "api:subwoofer-usd", ""),
    ("refunded_in_two", "amp-install-bundle", ""),
    ("double_payment", "car-amplifier", ""),
    ("canceled", "api:head-unit-czk", ""),
    ("canceled", "api:subwoofer-usd", ""),
    ("canceled_pending", "api:speakers-eur", ""),
    ("canceled_late_payment", "api:dsp-tuning-eur", ""),
    ("expired", "jazz-night-tickets", ""),
    ("expired", "car-amplifier", ""),
    ("expired_pending", "subwoofer-sw12", ""),
    ("expired_pending", "rca-cables-jpy", ""),
    ("expired_after_decline", "amp-install-bundle", "card_declined"),
    ("expired_3ds", "jazz-night-tickets", ""),
    ("open", "api:amplifier-czk", ""),
    ("open", "api:speakers-eur", ""),
    ("open_pending", "api:subwoofer-usd", ""),
    ("open_pending", "api:vip-table-czk", ""),
    ("open_3ds", "api:dsp-tuning-eur", ""),
    ("open_declined", "api:head-unit-czk", "authentication_failed"),
]

BUYERS = {
    "CZK": [("jana.novakova", "CZ"), ("petr.svoboda", "CZ"), ("lukas.dvorak", "CZ"), ("tereza.horakova", "CZ"),
            ("marek.kovac", "SK")],
    "EUR": [("max.mueller", "DE"), ("lena.schmidt", "DE"), ("anna.gruber", "AT"), ("katarina.hudakova", "SK"),
            ("zofia.nowak", "PL"), ("ondrej.cerny", "CZ")],
    "USD": [("emily.carter", "US"), ("james.miller", "US")],
    "JPY": [("yuki.tanaka", "JP"), ("haruto.sato", "JP")],
}  # fmt: skip
