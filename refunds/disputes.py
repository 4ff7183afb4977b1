"""Disputes (chargebacks), reconciled with the provider's view of them.

Ledger, per dispute:
- opened: the payees' share of the disputed amount moves `available` -> `reserved` (may drive available
  negative), `dispute_hold:<id>`;
- money the provider withholds or gives back, one transaction per provider balance move
  (`dispute_balance:<move id>`): withheld amount `provider:<p>:clearing` -> `provider:<p>:disputed`, its fee
  to `platform:provider_fees`; given back the other way;
- won (or an inquiry closed): the hold goes back, `reserved` -> `available` (`dispute_release:<id>`);
- lost (`dispute_loss:<id>`), per payee by `Payee.dispute_loss_bearer`:
    "payee" (default): the payee's held share is the payee's loss: debit `payee:<id>:reserved` (the hold
      already came out of their `available`, which may be negative);
    "platform": the hold goes back to the payee (debit `reserved`, credit `available`) and the platform
      bears that share too;
  the platform bears the rest (debit `platform:dispute_losses` = disputed amount - payee-borne shares:
  commission and VAT on it, and any share no payee was holding); the disputed amount leaves the provider:
  credit `provider:<p>:disputed` for what it withheld, `provider:<p>:clearing` for the rest;
- the dispute fee on a lost dispute (`dispute_fee:<id>`), per payee by `Payee.dispute_fee_bearer`: the fee
  the provider charged (already an expense in `platform:provider_fees` from its balance move) is split over
  the payees in proportion to the hold; the parts of payees who bear it are charged to them: debit
  `payee:<id>:available` (may go negative), credit `platform:provider_fees` (the platform recovers it).
  "platform" (default): nothing is posted, the platform keeps the expense. A won dispute's fee stays with the
  platform.
Bearers are read when the dispute is settled; both settlements are posted once (later events change nothing).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from django.db import transaction
from django.db.models import Sum

from core.audit import record_audit
from ledger import accounts
from ledger.accounts import AccountSpec
from ledger.models import AccountKind, BalanceRule, LedgerTransaction
from ledger.money import Money, allocate
from ledger.services import Posting, credit, debit, post_transaction
from payments.models import Order, Payment
from payments.providers.base import DisputeBalanceMove, ProviderDisputeState
from refunds.models import Dispute, DisputeStatus, RefundLine, RefundStatus

FINAL = {DisputeStatus.WON, DisputeStatus.LOST, DisputeStatus.WARNING_CLOSED}


def provider_disputed(provider: str) -> AccountSpec:
    """Money the provider holds back against open disputes (it can never go below zero)."""
    return AccountSpec(
        f"provider:{provider}:disputed",
        AccountKind.ASSET,
        BalanceRule.CREDITS_MUST_NOT_EXCEED_DEBITS,
        name=f"Withheld by {provider} for disputes",
    )


def _unrefunded_payee_shares(order: Order) -> dict[int, int]:
    shares: dict[int, int] = defaultdict(int)
    for line in order.lines.all():
        shares[line.payee_id] += line.payee_share_minor
    refunded = (
        RefundLine.objects.filter(order_line__order=order, refund__status=RefundStatus.SUCCEEDED)
        .values("order_line__payee_id")
        .annotate(total=Sum("payee_share_minor"))
    )
    for row in refunded:
        shares[row["order_line__payee_id"]] -= row["total"] or 0
    return {payee_id: amount for payee_id, amount in shares.items() if amount > 0}


def _hold_per_payee(order: Order, payment: Payment, amount: int) -> dict[int, int]:
    """The payees' part of the disputed amount: their unrefunded share in proportion to what is unrefunded."""
    shares = _unrefunded_payee_shares(order)
    unrefunded = payment.captured_minor - payment.refunded_minor
    if not shares or unrefunded <= 0:
        return {}
    total = min(sum(shares.values()), amount * sum(shares.values()) // unrefunded)
    if total <= 0:
        return {}
    payee_ids = sorted(shares)
    return dict(zip(payee_ids, allocate(total, [shares[p] for p in payee_ids]), strict=True))


def _hold_split(dispute: Dispute) -> dict[int, int]:
    """Per payee, what the hold transaction moved into reserved."""
    split: dict[int, int] = {}
    hold = LedgerTransaction.objects.filter(idempotency_key=f"dispute_hold:{dispute.pk}").first()
    if hold is not None:
        for entry in hold.entries.select_related("account").filter(account__code__endswith=":reserved"):
            split[entry.account.payee_id] = entry.amount_minor
    return split


def apply_provider_dispute(*, payment: Payment, state: ProviderDisputeState, now: datetime) -> Dispute:
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=payment.order_id)
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        dispute = Dispute.objects.select_for_update().filter(provider_ref=state.provider_ref).first()
        if dispute is None:
            dispute = _open(order=order, payment=payment, state=state, now=now)
        if dispute.status not in FINAL:
            Dispute.objects.filter(pk=dispute.pk).update(
                status=state.status,
                provider_status=state.provider_status,
                reason=state.reason or dispute.reason,
                evidence_due_by=state.evidence_due_by or dispute.evidence_due_by,
                closed_at=now if state.status in FINAL else None,
            )
        for move in state.balance_moves:
            _post_balance_move(dispute=dispute, provider=payment.provider, move=move, now=now)
        dispute.refresh_from_db()
        if dispute.status in (DisputeStatus.WON, DisputeStatus.WARNING_CLOSED):
            _release(dispute=dispute, now=now)
        elif dispute.status == DisputeStatus.LOST:
            _settle_loss(dispute=dispute, provider=payment.provider, now=now)
    return dispute


def _open(*, order: Order, payment: Payment, state: ProviderDisputeState, now: datetime) -> Dispute:
    dispute = Dispute.objects.create(
        order=order,
        payment=payment,
        provider_ref=state.provider_ref,
        amount_minor=state.amount.amount_minor,
        currency=state.amount.currency,
        reason=state.reason,
        status=DisputeStatus.OPEN,
        provider_status=state.provider_status,
        evidence_due_by=state.evidence_due_by,
        opened_at=now,
    )
    hold = _hold_per_payee(order, payment, state.amount.amount_minor)
    if hold:
        postings: list[Posting] = []
        for payee_id, amount in hold.items():
            postings.append(debit(accounts.payee_available(payee_id), Money(amount, dispute.currency)))
            postings.append(credit(accounts.payee_reserved(payee_id), Money(amount, dispute.currency)))
        post_transaction(
            idempotency_key=f"dispute_hold:{dispute.pk}",
            kind="dispute_hold",
            entries=postings,
            occurred_at=now,
            memo=f"Dispute {dispute.provider_ref} opened: payee share held",
            metadata={"dispute": dispute.pk, "order": str(order.token)},
        )
        Dispute.objects.filter(pk=dispute.pk).update(held_minor=sum(hold.values()))
    record_audit(
        action="dispute.opened",
        actor_label=payment.provider,
        obj=dispute,
        now=now,
        amount_minor=dispute.amount_minor,
        currency=dispute.currency,
        message=state.reason,
    )
    dispute.refresh_from_db()
    return dispute


def _post_balance_move(*, dispute: Dispute, provider: str, move: DisputeBalanceMove, now: datetime) -> None:
    amount, fee = move.amount.amount_minor, move.fee.amount_minor
    currency = move.amount.currency
    clearing, disputed = accounts.provider_clearing(provider), provider_disputed(provider)
    postings: list[Posting] = []
    if amount < 0:
        postings += [debit(disputed, Money(-amount, currency)), credit(clearing, Money(-amount, currency))]
    elif amount > 0:
        postings += [debit(clearing, Money(amount, currency)), credit(disputed, Money(amount, currency))]
    if fee > 0:
        postings += [
            debit(accounts.PLATFORM_PROVIDER_FEES, Money(fee, currency)),
            credit(clearing, Money(fee, currency)),
        ]
    elif fee < 0:
        postings += [
            debit(clearing, Money(-fee, currency)),
            credit(accounts.PLATFORM_PROVIDER_FEES, Money(-fee, currency)),
        ]
    if postings:
        post_transaction(
            idempotency_key=f"dispute_balance:{move.provider_ref}",
            kind="dispute_balance",
            entries=postings,
            occurred_at=now,
            memo=f"Dispute {dispute.provider_ref}: {provider} balance move",
            metadata={"dispute": dispute.pk},
        )


def _withheld(dispute: Dispute, provider: str) -> int:
    """What the provider still withholds for this dispute, from its balance moves in the ledger."""
    withheld = 0
    code = provider_disputed(provider).code
    moves = LedgerTransaction.objects.filter(kind="dispute_balance", metadata__dispute=dispute.pk)
    for entry in (e for tx in moves.prefetch_related("entries__account") for e in tx.entries.all()):
        if entry.account.code == code:
            withheld += entry.amount_minor if entry.direction == "debit" else -entry.amount_minor
    return withheld


def _release(*, dispute: Dispute, now: datetime) -> None:
    split = _hold_split(dispute)
    if not split:
        return
    postings: list[Posting] = []
    for payee_id, amount in sorted(split.items()):
        postings.append(debit(accounts.payee_reserved(payee_id), Money(amount, dispute.currency)))
        postings.append(credit(accounts.payee_available(payee_id), Money(amount, dispute.currency)))
    post_transaction(
        idempotency_key=f"dispute_release:{dispute.pk}",
        kind="dispute_release",
        entries=postings,
        occurred_at=now,
        memo=f"Dispute {dispute.provider_ref} closed in our favour: hold released",
        metadata={"dispute": dispute.pk},
    )


def _bearers(payee_ids) -> dict[int, tuple[str, str]]:
    from commissions.models import Payee

    rows = Payee.objects.filter(pk__in=list(payee_ids)).values_list("pk", "dispute_loss_bearer", "dispute_fee_bearer")
    return {pk: (loss, fee) for pk, loss, fee in rows}


def _fees(dispute: Dispute) -> int:
    """The provider's net dispute fees for this dispute, from its balance moves in the ledger."""
    fees = 0
    code = accounts.PLATFORM_PROVIDER_FEES.code
    moves = LedgerTransaction.objects.filter(kind="dispute_balance", metadata__dispute=dispute.pk)
    for entry in (e for tx in moves.prefetch_related("entries__account") for e in tx.entries.all()):
        if entry.account.code == code and entry.currency == dispute.currency:
            fees += entry.amount_minor if entry.direction == "debit" else -entry.amount_minor
    return fees


def _settle_loss(*, dispute: Dispute, provider: str, now: datetime) -> None:
    if LedgerTransaction.objects.filter(idempotency_key=f"dispute_loss:{dispute.pk}").exists():
        return  # settled once, with the bearers of that moment
    currency = dispute.currency
    split = _hold_split(dispute)
    bearers = _bearers(split)
    borne_by_payees = 0
    withheld = max(0, min(_withheld(dispute, provider), dispute.amount_minor))
    postings: list[Posting] = []
    for payee_id, amount in sorted(split.items()):
        postings.append(debit(accounts.payee_reserved(payee_id), Money(amount, currency)))
        if bearers.get(payee_id, ("payee", ""))[0] == "platform":
            postings.append(credit(accounts.payee_available(payee_id), Money(amount, currency)))
        else:
            borne_by_payees += amount
    postings.append(debit(accounts.PLATFORM_DISPUTE_LOSSES, Money(dispute.amount_minor - borne_by_payees, currency)))
    postings.append(credit(provider_disputed(provider), Money(withheld, currency)))
    postings.append(credit(accounts.provider_clearing(provider), Money(dispute.amount_minor - withheld, currency)))
    post_transaction(
        idempotency_key=f"dispute_loss:{dispute.pk}",
        kind="dispute_loss",
        entries=postings,
        occurred_at=now,
        memo=f"Dispute {dispute.provider_ref} lost",
        metadata={
            "dispute": dispute.pk,
            "borne_by_payees": borne_by_payees,
            "loss_bearers": {str(p): bearers.get(p, ("payee", ""))[0] for p in sorted(split)},
        },
    )
    fee_charged = _charge_fee(dispute=dispute, split=split, bearers=bearers, now=now)
    record_audit(
        action="dispute.lost",
        actor_label=provider,
        obj=dispute,
        amount_minor=dispute.amount_minor,
        currency=currency,
        now=now,
        metadata={"borne_by_payees": borne_by_payees, "fee_charged_to_payees": fee_charged},
    )


def _charge_fee(*, dispute: Dispute, split: dict[int, int], bearers: dict[int, tuple[str, str]], now: datetime) -> int:
    """Charge the payees who bear the dispute fee their part of it (in proportion to the hold)."""
    fee = _fees(dispute)
    if fee <= 0 or not split:
        return 0
    payee_ids = sorted(split)
    parts = dict(zip(payee_ids, allocate(fee, [split[p] for p in payee_ids]), strict=True))
    fee_bearer = {p: bearers.get(p, ("", "platform"))[1] for p in payee_ids}
    charged = {p: amount for p, amount in parts.items() if amount > 0 and fee_bearer[p] == "payee"}
    if not charged:
        return 0
    currency = dispute.currency
    postings: list[Posting] = [debit(accounts.payee_available(p), Money(a, currency)) for p, a in charged.items()]
    postings.append(credit(accounts.PLATFORM_PROVIDER_FEES, Money(sum(charged.values()), currency)))
    post_transaction(
        idempotency_key=f"dispute_fee:{dispute.pk}",
        kind="dispute_fee",
        entries=postings,
        occurred_at=now,
        memo=f"Dispute {dispute.provider_ref} lost: dispute fee charged to the payee",
        metadata={"dispute": dispute.pk, "fee": fee},
    )
    return sum(charged.values())
