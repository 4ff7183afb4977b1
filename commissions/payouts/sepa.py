"""SEPA credit-transfer files (pain.001.001.03, built and validated against its XML schema by `sepaxml`) for
the EUR SEPA payouts of a run. Finance downloads the file from the admin, uploads it to the bank, marks it
sent, then confirmed: each payout is then paid (`payouts:in_transit` -> `bank:operating`, `payout_paid:<id>`).
A payout the bank rejects is failed from the file: its ledger posting is reversed to `available`.

Every payout's bank details (the snapshot taken when the run made it) are checked with python-stdnum before
the file is built; a payout with bad details is failed with the reason and never written to the file."""

from __future__ import annotations

import hashlib
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from sepaxml import SepaTransfer

from commissions.models import Payout, PayoutRun, SepaFile
from commissions.models.payees import PayoutMethod
from commissions.payouts.core import fail_payout, queue_payout_statement
from commissions.payouts.runs import bank_details_problem, complete_run_if_done
from core.audit import record_audit
from core.errors import DomainError
from ledger import accounts
from ledger.money import Money
from ledger.services import credit, debit, post_transaction

SCHEMA = "pain.001.001.03"


def end_to_end_id(payout: Payout) -> str:
    return f"TOLLGATE-PAYOUT-{payout.pk}"


class _Transfer(SepaTransfer):
    """sepaxml's transfer with our message id (sepaxml makes a random one)."""

    def __init__(self, config: dict, message_id: str):
        self._message_id = message_id
        super().__init__(config, schema=SCHEMA)

    def _create_header(self):
        self.msg_id = self._message_id
        super()._create_header()


def _message_id(run: PayoutRun, now: datetime) -> str:
    sequence = SepaFile.objects.filter(run=run).count() + 1
    return f"TOLLGATE-R{run.pk}-F{sequence}-{now:%Y%m%d%H%M%S}"[:35]


def generate_sepa_file(*, run_id: int, now: datetime) -> SepaFile | None:
    """The pain.001 of the run's EUR SEPA payouts not yet in a file (None when there are none)."""
    with transaction.atomic():
        run = PayoutRun.objects.select_for_update().get(pk=run_id)
        if run.status != PayoutRun.Status.APPROVED:
            raise DomainError(f"Run {run.pk} is {run.get_status_display().lower()}; no file can be made.", status=409)
        candidates = list(
            run.payouts.select_for_update()
            .filter(method=PayoutMethod.SEPA_CREDIT_TRANSFER, status=Payout.Status.CREATED, sepa_file__isnull=True)
            .order_by("pk")
        )
        payouts = []
        for payout in candidates:
            problem = "" if payout.currency == "EUR" else "SEPA credit transfers are in EUR only."
            problem = problem or bank_details_problem(iban=payout.iban, bic=payout.bic)
            if problem or not payout.bank_account_holder:
                fail_payout(payout_id=payout.pk, message=problem or "The bank account holder is missing.", now=now)
            else:
                payouts.append(payout)
        if not payouts:
            return None
        message_id = _message_id(run, now)
        content = _build(payouts, message_id=message_id, now=now)
        total = sum(payout.amount_minor for payout in payouts)
        sepa_file = SepaFile.objects.create(
            run=run,
            message_id=message_id,
            currency="EUR",
            total_minor=total,
            transaction_count=len(payouts),
            content=content,
            sha256=hashlib.sha256(content).hexdigest(),
            created_at=now,
        )
        Payout.objects.filter(pk__in=[p.pk for p in payouts]).update(
            sepa_file=sepa_file, status=Payout.Status.PROCESSING, attempts=1
        )
        record_audit(
            action="sepa_file.generate",
            actor_label="system",
            obj=sepa_file,
            now=now,
            amount_minor=total,
            currency="EUR",
            metadata={"run": run.pk, "payouts": [p.pk for p in payouts], "sha256": sepa_file.sha256},
        )
    return sepa_file


def _build(payouts: list[Payout], *, message_id: str, now: datetime) -> bytes:
    config = {
        "name": settings.TOLLGATE_SEPA_DEBTOR_NAME,
        "IBAN": settings.TOLLGATE_SEPA_DEBTOR_IBAN,
        "BIC": settings.TOLLGATE_SEPA_DEBTOR_BIC,
        "batch": True,
        "currency": "EUR",
    }
    transfer = _Transfer(config, message_id)
    execution_date = timezone.localdate(now)
    for payout in payouts:
        payment = {
            "name": payout.bank_account_holder,
            "IBAN": payout.iban,
            "amount": payout.amount_minor,  # integer cents, as sepaxml expects
            "execution_date": execution_date,
            "description": f"Tollgate payout {payout.pk}",
            "endtoend_id": end_to_end_id(payout),
        }
        if payout.bic:
            payment["BIC"] = payout.bic
        transfer.add_payment(payment)
    return transfer.export(validate=True)  # raises sepaxml's ValidationError if not valid against the XSD


def _locked_file(file_id: int, actor) -> SepaFile:
    if actor is not None and not actor.has_perm("commissions.download_sepa_file"):
        raise DomainError("You may not handle SEPA files.", status=403)
    return SepaFile.objects.select_for_update().get(pk=file_id)


def mark_sent(*, file_id: int, actor, now: datetime) -> SepaFile:
    with transaction.atomic():
        sepa_file = _locked_file(file_id, actor)
        if sepa_file.status != SepaFile.Status.GENERATED:
            raise DomainError(f"{sepa_file} is already {sepa_file.get_status_display().lower()}.", status=409)
        sepa_file.status, sepa_file.sent_at = SepaFile.Status.SENT, now
        sepa_file.save(update_fields=["status", "sent_at"])
        record_audit(action="sepa_file.sent", actor=actor, obj=sepa_file, now=now)
        for payout_id in sepa_file.payouts.filter(status=Payout.Status.PROCESSING).values_list("pk", flat=True):
            queue_payout_statement(payout_id)
    return sepa_file


def mark_confirmed(*, file_id: int, actor, now: datetime) -> SepaFile:
    """The bank executed the file: every payout still in it is paid from the operating account."""
    with transaction.atomic():
        sepa_file = _locked_file(file_id, actor)
        if sepa_file.status != SepaFile.Status.SENT:
            raise DomainError(f"{sepa_file} must be sent before it is confirmed.", status=409)
        for payout in sepa_file.payouts.select_for_update().filter(status=Payout.Status.PROCESSING).order_by("pk"):
            amount = Money(payout.amount_minor, payout.currency)
            post_transaction(
                idempotency_key=f"payout_paid:{payout.pk}",
                kind="payout_paid",
                entries=[debit(accounts.PAYOUTS_IN_TRANSIT, amount), credit(accounts.BANK_OPERATING, amount)],
                occurred_at=now,
                memo=f"Payout {payout.pk} paid by SEPA credit transfer ({sepa_file.message_id})",
                metadata={"payout": payout.pk, "sepa_file": sepa_file.pk},
            )
            Payout.objects.filter(pk=payout.pk).update(
                status=Payout.Status.PAID, paid_at=now, provider_ref=end_to_end_id(payout)
            )
        sepa_file.status, sepa_file.confirmed_at = SepaFile.Status.CONFIRMED, now
        sepa_file.save(update_fields=["status", "confirmed_at"])
        record_audit(action="sepa_file.confirmed", actor=actor, obj=sepa_file, now=now)
        complete_run_if_done(sepa_file.run_id, now)
    return sepa_file


def fail_file_payout(*, payout_id: int, message: str, actor, now: datetime) -> Payout:
    """The bank rejected one transfer of a file (before confirmation): back to the payee's available."""
    with transaction.atomic():
        file_id = Payout.objects.filter(pk=payout_id).values_list("sepa_file_id", flat=True).first()
        if file_id is not None:
            _locked_file(file_id, actor)  # the file first, then the payout: the order mark_confirmed locks in
        payout = Payout.objects.select_for_update().get(pk=payout_id)
        if file_id is None or payout.status != Payout.Status.PROCESSING:
            raise DomainError(f"Payout {payout.pk} is not waiting in a SEPA file.", status=409)
        payout = fail_payout(payout_id=payout.pk, message=message, now=now)
        record_audit(action="payout.failed_from_file", actor=actor, obj=payout, now=now, message=message)
        complete_run_if_done(payout.run_id, now)
    return payout
