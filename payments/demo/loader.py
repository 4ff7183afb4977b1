"""The demo loader: payees, links and the orders' scripts, run in time order through the real services
(see the package docstring)."""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password

from commissions.models import Payee
from commissions.services import create_payee
from core.models import ApiClient, ApiClientKey
from ledger.money import exponent, format_money
from payments.demo.catalog import (
    ADMIN_PASSWORD,
    ADMIN_USERNAME,
    API_CARTS,
    API_CLIENT_NAME,
    API_KEY_NAME,
    BUYERS,
    LABELS,
    LINKS,
    OPEN_ORDER_TTL,
    ORDERS,
    PAYEES,
    PLANS,
    PORTAL_PASSWORD,
    PRAGUE,
    PROVIDER,
    Item,
    LinkSpec,
    PayeeSpec,
)
from payments.demo.payouts import pay_out_demo_payees
from payments.demo.relay import Relay
from payments.demo.results import DemoDataError, DemoResult, Login
from payments.models import Order, Payment, PaymentLink, PaymentLinkLine
from payments.services.checkout import start_payment
from payments.services.orders import LineInput, cancel_order, create_order, expire_order
from refunds.models import RefundReason, RefundStatus
from refunds.services import request_refund


@dataclass
class _OrderRun:
    plan: str
    source: str
    decline_reason: str
    created_at: datetime
    order: Order | None = None
    payments: list[Payment] = field(default_factory=list)


class Loader:
    def __init__(self, *, now: datetime, seed: int, say: Callable[[str], None]):
        self.now = now
        self.rng = random.Random(seed)  # noqa: S311 - reproducible demo data, not security
        self.say = say
        self.relay = Relay()
        self.payees: dict[str, Payee] = {}
        self.links: dict[str, PaymentLink] = {}
        self.admin = None
        self.api_client: ApiClient | None = None
        self.references = 0
        self.portal_password_hash = make_password(PORTAL_PASSWORD)

    # -- phases ----------------------------------------------------------------------------------------

    def run(self) -> DemoResult:
        onboarded = self.now - timedelta(days=75)
        self.say("Admin login and API client")
        admin = self._admin()
        self.api_client = ApiClient.objects.create(name=API_CLIENT_NAME)
        ApiClient.objects.filter(pk=self.api_client.pk).update(created_at=onboarded)
        _, api_key = ApiClientKey.objects.create_key(name=API_KEY_NAME, client=self.api_client)

        self.say(f"Payees and portal logins ({len(PAYEES)})")
        logins = [self._payee(spec, onboarded) for spec in PAYEES]

        self.say(f"Payment links ({len(LINKS)})")
        for spec in LINKS:
            self._link(spec, onboarded + timedelta(days=1))

        self.say(f"Orders ({len(ORDERS)}), paid and refunded through the sandbox gateway and the webhook inbox")
        self._orders()
        self.relay.assert_nothing_left_over()
        pay_out_demo_payees(payees=self.payees, admin=self.admin, now=self.now, say=self.say)
        return DemoResult(already_loaded=False, admin=admin, portal_logins=logins, api_key=api_key)

    def _admin(self) -> Login:
        users = get_user_model()
        self.admin = users.objects.filter(username=ADMIN_USERNAME).first()
        if self.admin is not None:
            return Login(ADMIN_USERNAME, None, "admin (existing user, password unchanged)")
        self.admin = users.objects.create_superuser(ADMIN_USERNAME, "admin@tollgate.example.com", ADMIN_PASSWORD)
        return Login(ADMIN_USERNAME, ADMIN_PASSWORD, "admin")

    def _payee(self, spec: PayeeSpec, at: datetime) -> Login:
        users = get_user_model()
        if users.objects.filter(username=spec.username).exists():
            raise DemoDataError(f"a user named {spec.username!r} already exists; load the demo into a fresh database")
        payee = create_payee(
            kind=spec.kind,
            legal_name=spec.legal_name,
            country=spec.country,
            email=spec.email,
            vat_id=spec.vat_id,
            address=spec.address,
            commission_bps=spec.commission_bps,
            now=at,
            actor=self._staff(),
            actor_label="demo",
        )
        user = users.objects.create_user(spec.username, spec.email, password=None)
        user.password = self.portal_password_hash  # hashed once: the same published password for every payee
        user.save(update_fields=["password"])
        Payee.objects.filter(pk=payee.pk).update(portal_user=user, created_at=at)
        payee.refresh_from_db()
        self.payees[spec.key] = payee
        return Login(spec.username, PORTAL_PASSWORD, spec.legal_name)

    def _link(self, spec: LinkSpec, at: datetime) -> None:
        link = PaymentLink.objects.create(
            slug=spec.slug,
            title=spec.title,
            description=spec.description,
            currency=spec.currency,
            allow_quantity=spec.allow_quantity,
            max_quantity=spec.max_quantity,
            created_by=self._staff(),
        )
        PaymentLink.objects.filter(pk=link.pk).update(created_at=at)
        for item in spec.items:
            PaymentLinkLine.objects.create(
                link=link,
                payee=self.payees[item.payee],
                description=item.description,
                kind=item.kind,
                unit_amount_minor=item.unit_minor,
                vat_category=item.vat_category,
                **self._event_fields(item),
            )
        self.links[spec.slug] = link

    def _staff(self):
        return self.admin if self.admin is not None and self.admin.is_staff else None

    def _event_fields(self, item: Item) -> dict:
        if not item.event:
            return {}
        starts = (self.now + timedelta(days=24)).astimezone(PRAGUE).replace(hour=20, minute=0)
        return {"event_ref": f"PJN-{starts:%Y%m%d}", "event_starts_at": starts, "event_country": "CZ"}

    # -- orders: each is a script of timed steps; all steps of all orders run in time order ---------------

    def _orders(self) -> None:
        runs = [_OrderRun(plan, source, reason, self._created_at(plan)) for plan, source, reason in ORDERS]
        scripts: list[tuple[datetime, int, Iterator[datetime]]] = []
        for index, run in enumerate(runs):
            script = self._script(run)
            heapq.heappush(scripts, (next(script), index, script))
        done = 0
        while scripts:
            _, index, script = heapq.heappop(scripts)
            try:
                at = next(script)
            except StopIteration:
                done += 1
                run = runs[index]
                order = run.order
                order.refresh_from_db()
                self.say(
                    f"  orders {done}/{len(runs)}  {order.created_at:%Y-%m-%d}  "
                    f"{format_money(order.total_minor, order.currency):>12}  {LABELS[run.plan]}"
                )
                continue
            if at > self.now:
                raise DemoDataError(f"a step of {runs[index].plan!r} would happen in the future")
            heapq.heappush(scripts, (at, index, script))

    def _created_at(self, plan: str) -> datetime:
        rng = self.rng
        if plan.startswith("open"):
            return self.now - timedelta(minutes=rng.randint(20, 300))
        if plan.startswith("refunded") or plan == "partially_refunded":
            days = rng.randint(16, 58)
        else:
            days = rng.randint(1, 60)
        local = (self.now - timedelta(days=days)).astimezone(PRAGUE)
        return local.replace(hour=rng.randint(8, 21), minute=rng.randint(0, 59))

    def _script(self, run: _OrderRun) -> Iterator[datetime]:
        """Yields the time of each next step, then performs it when the scheduler gets back to it."""
        at = run.created_at
        yield at
        run.order = self._create_order(run, at)
        for step in PLANS[run.plan]:
            at = self._next_time(step, at, run)
            yield at
            self._step(step, run, at)

    def _next_time(self, step: str, at: datetime, run: _OrderRun) -> datetime:
        rng = self.rng
        if step in ("start", "double_click"):
            return at + timedelta(seconds=rng.randint(40, 240))
        if step in ("pay", "decline", "3ds", "abandon", "pay_second"):
            return at + timedelta(seconds=rng.randint(30, 200))
        if step == "pay_first":
            return at + timedelta(seconds=rng.randint(20, 90))
        if step in ("refund_part", "refund_all"):
            return at + timedelta(days=rng.randint(1, 10), minutes=rng.randint(0, 600))
        if step == "refund_rest":
            return at + timedelta(days=rng.randint(1, 3), minutes=rng.randint(0, 600))
        if step.startswith("cancel"):
            return at + timedelta(minutes=rng.randint(8, 50))
        if step == "expire":  # the beat task runs every minute
            return max(at, run.order.expires_at) + timedelta(seconds=rng.randint(5, 60))
        raise ValueError(step)

    def _create_order(self, run: _OrderRun, at: datetime) -> Order:
        rng = self.rng
        if run.source.startswith("api:"):
            currency, items = API_CARTS[run.source.removeprefix("api:")]
            link = None
            lines = [self._line(item, 1) for item in items]
        else:
            link = self.links[run.source]
            spec = next(s for s in LINKS if s.slug == run.source)
            currency = link.currency
            quantity = rng.choice([1, 1, 1, 2, 2, 3]) if link.allow_quantity else 1
            quantity = min(quantity, link.max_quantity)
            lines = [self._line(item, quantity) for item in spec.items]
        name, country = rng.choice(BUYERS[currency])
        common = {
            "currency": currency,
            "lines": lines,
            "buyer_email": f"{name}@example.com",
            "buyer_name": name.replace(".", " ").title(),
            "buyer_country": country,
            "now": at,
        }
        if link is not None:  # as the payment-link page does it
            return create_order(
                **common, payment_link=link, description=link.title, actor_label=f"payment_link:{link.slug}"
            )
        self.references += 1
        reference = f"MKT-{at:%y%m}-{1000 + self.references}"
        return create_order(
            **common,
            api_client=self.api_client,
            reference=reference,
            description=f"Marketplace order {reference}",
            locale={"CZ": "cs", "SK": "sk", "DE": "de", "AT": "de", "PL": "pl"}.get(country, "en"),
            return_url=f"https://marketplace.example.com/orders/{reference}",
            metadata={"cart": run.source.removeprefix("api:")},
            expires_at=at + OPEN_ORDER_TTL if run.plan.startswith("open") else None,
        )

    def _line(self, item: Item, quantity: int) -> LineInput:
        return LineInput(
            payee_id=self.payees[item.payee].pk,
            description=item.description,
            quantity=quantity,
            unit_amount_minor=item.unit_minor,
            kind=item.kind,
            vat_category=item.vat_category,
            **self._event_fields(item),
        )

    def _step(self, step: str, run: _OrderRun, at: datetime) -> None:
        order = run.order
        if step == "start":
            run.payments.append(start_payment(order=order, provider_name=PROVIDER, now=at))
        elif step == "double_click":
            run.payments.extend(self.relay.double_click(order, at))
        elif step == "pay":
            self.relay.buyer(run.payments[-1], "pay", at)
        elif step == "pay_second":  # the buyer pays in the second tab...
            self.relay.buyer(run.payments[1], "pay", at)
        elif step == "pay_first":  # ...and then in the first one too
            self.relay.buyer(run.payments[0], "pay", at)
        elif step == "decline":
            self.relay.buyer(run.payments[-1], "decline", at, reason=run.decline_reason)
        elif step == "3ds":
            self.relay.buyer(run.payments[-1], "3ds", at)
        elif step == "abandon":
            self.relay.buyer(run.payments[-1], "abandon", at)
        elif step == "cancel":
            self._cancel(order, at)
            self.relay.close_at_gateway(run.payments, at + timedelta(seconds=2))
        elif step == "cancel_while_paying":
            # The order is canceled while the buyer is on the gateway's page; the buyer pays before the
            # gateway session is closed, so money arrives for a canceled order and goes back automatically.
            self._cancel(order, at)
            self.relay.buyer(run.payments[-1], "pay", at + timedelta(seconds=1))
            self.relay.close_at_gateway(run.payments, at + timedelta(seconds=4))
        elif step == "expire":
            if not expire_order(order=order, now=at):
                raise DemoDataError(f"order {order.token} did not expire")
            self.relay.close_at_gateway(run.payments, at + timedelta(seconds=2))
        elif step in ("refund_part", "refund_all", "refund_rest"):
            self._refund(order, step, at)
        else:
            raise ValueError(step)
        order.refresh_from_db()

    def _cancel(self, order: Order, at: datetime) -> None:
        if order.api_client_id:
            cancel_order(order=order, now=at, actor_label=f"api:{API_CLIENT_NAME}")
        else:
            cancel_order(order=order, now=at, actor=self._staff(), actor_label="demo")

    def _refund(self, order: Order, step: str, at: datetime) -> None:
        order.refresh_from_db()
        left = order.total_minor - order.refunded_minor
        if step == "refund_part":
            lines = list(order.lines.order_by("position"))
            several = next((line for line in lines if line.quantity > 1), None)
            if several is not None:
                amount, note = several.unit_amount_minor, f"One {several.description} returned"
            else:
                unit = 10 ** exponent(order.currency)  # whole euros, crowns, yen
                share = self.rng.choice([20, 25, 30, 40])
                amount, note = max(unit, order.total_minor * share // 100 // unit * unit), "Goodwill discount"
            amount = min(amount, left - 1)
        else:
            amount, note = left, "Returned within 14 days" if step == "refund_all" else "Rest of the order returned"
        if order.api_client_id:
            actor, label = None, f"api:{API_CLIENT_NAME}"
        else:
            actor, label = self._staff(), "demo"
        refund = request_refund(
            order=order,
            amount_minor=amount,
            reason=RefundReason.REQUESTED_BY_CUSTOMER,
            now=at,
            actor=actor,
            actor_label=label,
            note=note,
        )
        # What the eager execute_refund task would do after commit, on the demo clock.
        self.relay.execute_refunds(at + timedelta(seconds=3))
        refund.refresh_from_db()
        if refund.status != RefundStatus.SUCCEEDED:
            raise DemoDataError(f"refund {refund.pk} ended {refund.status}: {refund.failure_message}")
