"""Creating, canceling and expiring orders."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from commissions.models import Payee
from commissions.rules import compute_line_commissions, split_commission
from commissions.selectors import AppliedCommission, CommissionBook, commission_vat_treatment_for
from core.audit import record_audit
from core.errors import DomainError, ErrorCode
from core.models import ApiClient
from invoicing.vat import MissingVatRate, VatCategory, VatTreatment, line_vat_treatment
from invoicing.vat_ids import check_vat_id
from ledger.money import MAX_AMOUNT_MINOR, is_enabled
from payments.models import CaptureMethod, LineKind, Order, OrderLine, OrderStatus, Payment, PaymentLink, PaymentStatus
from payments.state import PAYMENT_IN_FLIGHT, transition_order, transition_payment

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LineInput:
    payee_id: int
    description: str
    quantity: int
    unit_amount_minor: int
    kind: str = LineKind.GOODS
    vat_category: str = VatCategory.STANDARD
    event_ref: str = ""
    event_starts_at: datetime | None = None
    event_country: str = ""


@dataclass
class _Problems:
    fields: dict[str, list[dict[str, str]]] = field(default_factory=dict)

    def add(self, path: str, code: ErrorCode, message: str) -> None:
        self.fields.setdefault(path, []).append({"code": str(code), "message": message})

    def raise_if_any(self) -> None:
        if not self.fields:
            return
        codes = sorted({entry["code"] for entries in self.fields.values() for entry in entries})
        code = ErrorCode(codes[0]) if len(codes) == 1 else ErrorCode.VALIDATION_ERROR
        path, entries = next(iter(self.fields.items()))
        raise DomainError(f"{path}: {entries[0]['message']}", code=code, fields=self.fields)


def create_order(
    *,
    currency: str,
    lines: Sequence[LineInput],
    buyer_email: str,
    now: datetime,
    api_client: ApiClient | None = None,
    payment_link: PaymentLink | None = None,
    reference: str | None = None,
    description: str = "",
    buyer_country: str = "",
    buyer_vat_id: str = "",
    buyer_name: str = "",
    buyer_address: str = "",
    locale: str = "en",
    return_url: str = "",
    metadata: dict[str, Any] | None = None,
    expires_at: datetime | None = None,
    actor_label: str = "",
    capture_method: str = CaptureMethod.AUTOMATIC,
    recurring: bool = False,
) -> Order:
    """Validate and create an open order with its lines; VAT rate and commission split are fixed here.

    Raises DomainError (4xx) with a code per problem; nothing is written unless everything is valid.
    """
    problems = _Problems()
    if not is_enabled(currency):
        problems.add(
            "currency",
            ErrorCode.CURRENCY_NOT_ENABLED,
            f"{currency} is not enabled; use one of {', '.join(settings.TOLLGATE_ENABLED_CURRENCIES)}.",
        )
    if not lines:
        problems.add("lines", ErrorCode.NO_LINES, "An order needs at least one line.")
    if capture_method not in CaptureMethod.values:
        problems.add("capture_method", ErrorCode.VALIDATION_ERROR, f"Use one of {', '.join(CaptureMethod.values)}.")
    if recurring and not _recurring_available():
        problems.add(
            "recurring", ErrorCode.RECURRING_NOT_AVAILABLE, "No payment method here can set up recurring payments."
        )
    if len(lines) > settings.TOLLGATE_ORDER_MAX_LINES:
        problems.add(
            "lines", ErrorCode.TOO_MANY_LINES, f"An order may have at most {settings.TOLLGATE_ORDER_MAX_LINES} lines."
        )
    buyer_vat_id_valid = False
    if buyer_vat_id:
        vat_check = check_vat_id(buyer_vat_id)
        if not vat_check.valid:
            problems.add(
                "buyer.vat_id",
                ErrorCode.INVALID_VAT_ID,
                "Not a valid EU VAT id: it needs the country prefix, the right format and check digits.",
            )
        buyer_vat_id_valid = vat_check.valid
    problems.raise_if_any()

    payees = Payee.objects.in_bulk({line.payee_id for line in lines})
    total = 0
    for index, line in enumerate(lines):
        path = f"lines[{index}]"
        payee = payees.get(line.payee_id)
        if payee is None:
            problems.add(f"{path}.payee", ErrorCode.UNKNOWN_PAYEE, f"There is no payee {line.payee_id}.")
        elif not payee.is_active:
            problems.add(f"{path}.payee", ErrorCode.PAYEE_INACTIVE, f"Payee {line.payee_id} is suspended.")
        if line.quantity < 1:
            problems.add(f"{path}.quantity", ErrorCode.QUANTITY_NOT_POSITIVE, "Quantity must be at least 1.")
        if line.unit_amount_minor <= 0:
            problems.add(
                f"{path}.unit_amount", ErrorCode.AMOUNT_NOT_POSITIVE, "The unit amount must be greater than zero."
            )
        elif line.unit_amount_minor * max(line.quantity, 1) > MAX_AMOUNT_MINOR:
            problems.add(f"{path}.unit_amount", ErrorCode.AMOUNT_TOO_LARGE, "The line amount is too large.")
        else:
            total += line.unit_amount_minor * max(line.quantity, 1)
    if total > MAX_AMOUNT_MINOR:
        problems.add("lines", ErrorCode.AMOUNT_TOO_LARGE, "The order total is too large.")
    problems.raise_if_any()

    on = timezone.localdate(now)
    commission_vat = {payee.pk: commission_vat_treatment_for(payee) for payee in payees.values()}
    treatments = [
        _line_treatment(
            category=line.vat_category,
            payee_country=payees[line.payee_id].country,
            line_kind=line.kind,
            event_country=line.event_country,
            buyer_country=buyer_country,
            buyer_vat_id_valid=buyer_vat_id_valid,
            payee_uses_oss=payees[line.payee_id].uses_oss,
            on=on,
        )
        for line in lines
    ]
    book = CommissionBook(payees=payees.values(), currency=currency, at=now)
    applied_rules = [book.for_line(payee=payees[line.payee_id], line_kind=line.kind) for line in lines]
    commissions = _line_commissions(lines=lines, applied=applied_rules)
    try:
        with transaction.atomic():
            order = Order.objects.create(
                api_client=api_client,
                payment_link=payment_link,
                reference=reference or None,
                description=description,
                buyer_email=buyer_email,
                buyer_country=buyer_country,
                buyer_vat_id=buyer_vat_id,
                buyer_vat_id_valid=buyer_vat_id_valid,
                buyer_name=buyer_name,
                buyer_address=buyer_address,
                locale=locale,
                currency=currency,
                total_minor=total,
                return_url=return_url,
                metadata=metadata or {},
                capture_method=capture_method,
                recurring=recurring,
                created_at=now,
                expires_at=expires_at or now + settings.TOLLGATE_ORDER_TTL,
            )
            rows = []
            for position, (line, treatment, applied, commission) in enumerate(
                zip(lines, treatments, applied_rules, commissions, strict=True), start=1
            ):
                payee = payees[line.payee_id]
                amount = line.unit_amount_minor * line.quantity
                on_commission = commission_vat[payee.pk]
                split = split_commission(
                    amount_minor=amount, commission_minor=commission, commission_vat_bps=on_commission.rate_bps
                )
                rows.append(
                    OrderLine(
                        order=order,
                        position=position,
                        payee=payee,
                        description=line.description,
                        kind=line.kind,
                        quantity=line.quantity,
                        unit_amount_minor=line.unit_amount_minor,
                        amount_minor=amount,
                        vat_category=line.vat_category,
                        vat_rate_bps=treatment.rate_bps,
                        vat_scheme=treatment.scheme,
                        vat_country=treatment.country_of_taxation,
                        commission_bps=applied.commission_bps,
                        commission_rule=applied.rule,
                        commission_vat_bps=on_commission.rate_bps,
                        commission_vat_scheme=on_commission.scheme,
                        commission_minor=split.commission_minor,
                        commission_vat_minor=split.commission_vat_minor,
                        payee_share_minor=split.payee_share_minor,
                        event_ref=line.event_ref,
                        event_starts_at=line.event_starts_at,
                        event_country=line.event_country,
                    )
                )
            OrderLine.objects.bulk_create(rows)
            record_audit(
                action="order.create",
                actor_label=actor_label or _actor(api_client),
                obj=order,
                amount_minor=total,
                currency=currency,
                now=now,
            )
    except IntegrityError as exc:
        if reference and Order.objects.filter(api_client=api_client, reference=reference).exists():
            raise DomainError(
                f"An order with reference {reference!r} already exists.", code=ErrorCode.DUPLICATE_REFERENCE, status=409
            ) from exc
        raise
    return order


def _line_commissions(*, lines: Sequence[LineInput], applied: Sequence[AppliedCommission]) -> list[int]:
    """Each line's commission before the VAT cap (`split_commission`). Lines decided by the same rule for
    the same payee are computed together: a per-order fixed amount is shared between them by amount."""
    groups: dict[tuple[int, object], list[int]] = {}
    for index, (line, choice) in enumerate(zip(lines, applied, strict=True)):
        key = (line.payee_id, choice.rule.pk if choice.rule else ("no rule", choice.terms))
        groups.setdefault(key, []).append(index)
    commissions = [0] * len(lines)
    for indexes in groups.values():
        amounts = [lines[i].unit_amount_minor * lines[i].quantity for i in indexes]
        for i, commission in zip(
            indexes, compute_line_commissions(amounts_minor=amounts, rule=applied[indexes[0]].terms), strict=True
        ):
            commissions[i] = commission
    return commissions


def _line_treatment(**facts) -> VatTreatment:
    """The line's VAT treatment; a country with no rate configured for the date is refused plainly (staff
    add the rate in the admin), never a server error, and nothing is written."""
    try:
        return line_vat_treatment(**facts)
    except MissingVatRate as exc:
        raise DomainError(
            f"{exc} Ask the platform's staff to add the rate (admin: VAT rates).",
            code=ErrorCode.VAT_RATE_MISSING,
            status=422,
        ) from exc


def _recurring_available() -> bool:
    from payments.providers.base import RECURRING
    from payments.providers.registry import checkout_providers

    return any(RECURRING in provider.capabilities for provider in checkout_providers())


def _actor(api_client: ApiClient | None) -> str:
    return f"api:{api_client.name}" if api_client else "system"


def cancel_order(*, order: Order, now: datetime, actor=None, actor_label: str = "", request=None) -> Order:
    """Cancel an open order. A payment already under way at the provider is expired there (best effort);
    if it succeeds anyway it is refunded automatically as a payment for a canceled order."""
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        if locked.status == OrderStatus.OPEN and has_authorized_payment(locked):
            raise DomainError(
                "The buyer's card is authorized (held) for this order: void the authorization first.",
                code=ErrorCode.PAYMENT_AUTHORIZED,
                status=409,
            )
        if not transition_order(order=locked, to=OrderStatus.CANCELED, now=now, canceled_at=now):
            raise DomainError(
                f"Only open orders can be canceled; this one is {locked.status}.",
                code=ErrorCode.ORDER_NOT_CANCELABLE,
                status=409,
            )
        in_flight = _close_in_flight_payments(order=locked, to="canceled", now=now)
        from refunds.store_credit import release_store_credit

        release_store_credit(order=locked, now=now, reason="the order was canceled")
        record_audit(
            action="order.cancel",
            actor=actor,
            actor_label=actor_label,
            obj=locked,
            request=request,
            amount_minor=locked.total_minor,
            currency=locked.currency,
            now=now,
        )
    _expire_at_providers(in_flight)
    return locked


def has_authorized_payment(order: Order) -> bool:
    return Payment.objects.filter(order=order, status=PaymentStatus.AUTHORIZED).exists()


def expire_order(*, order: Order, now: datetime) -> bool:
    """Expire one open order whose time is up. True if this call expired it. An order whose payment is
    authorized (the buyer's card is held, staff capture it later) is not expired: the hold is captured, voided
    or lapses first (`payments.services.authorizations`), and only then can the order expire."""
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        if locked.status != OrderStatus.OPEN or locked.expires_at > now:
            return False
        if has_authorized_payment(locked):
            return False
        transition_order(order=locked, to=OrderStatus.EXPIRED, now=now)
        in_flight = _close_in_flight_payments(order=locked, to="expired", now=now)
        from refunds.store_credit import release_store_credit

        release_store_credit(order=locked, now=now, reason="the order expired")
    _expire_at_providers(in_flight)
    return True


def expire_stale_orders(*, now: datetime, limit: int = 500) -> int:
    stale = (
        Order.objects.filter(status=OrderStatus.OPEN, expires_at__lte=now)
        .exclude(payments__status=PaymentStatus.AUTHORIZED)
        .order_by("expires_at", "pk")
    )
    return sum(expire_order(order=order, now=now) for order in stale[:limit])


def _close_in_flight_payments(*, order: Order, to: str, now: datetime) -> list[int]:
    closed = []
    for payment in Payment.objects.select_for_update().filter(order=order, status__in=PAYMENT_IN_FLIGHT):
        if transition_payment(payment=payment, to=to, now=now):
            closed.append(payment.pk)
    return closed


def _expire_at_providers(payment_ids: list[int]) -> None:
    if not payment_ids:
        return
    from payments.tasks import expire_provider_checkout

    for payment_id in payment_ids:
        transaction.on_commit(lambda pk=payment_id: expire_provider_checkout.delay(payment_id=pk))
