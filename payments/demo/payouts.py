"""The demo's payouts: the payees' SEPA bank details (verified), their sales released, and one staff payout run
whose SEPA file is generated and marked sent — so the admin shows a run, its payouts and its pain.001 file to
confirm (or to import the bank's status report for), and each payee portal a payout with its statement.

Everything goes through the real services (`release_due_funds`, `start_run`, `approve_run`, `mark_sent`); the
payout statements are issued by the tasks queued when the demo's transaction commits."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from commissions.models import Payee, PayoutMethod, PayoutRun
from commissions.payouts import runs, sepa
from commissions.release import release_due_funds

# Valid test IBANs (check digits and national formats); the BICs match their banks.
BANK_DETAILS = {
    "autozvuk": ("CZ6508000000192000145399", "GIBACZPX"),
    "basslab": ("DE89370400440532013000", "COBADEFFXXX"),
    "jazz": ("CZ5508000000001234567899", "GIBACZPX"),
}


def pay_out_demo_payees(*, payees: dict[str, Payee], admin, now: datetime, say: Callable[[str], None]) -> PayoutRun:
    say("Releasing sales and paying payees out (a SEPA payout run, its file marked sent)")
    for key, payee in payees.items():
        iban, bic = BANK_DETAILS[key]
        Payee.objects.filter(pk=payee.pk).update(
            payout_method=PayoutMethod.SEPA_CREDIT_TRANSFER,
            payout_method_verified=True,
            bank_account_holder=payee.legal_name,
            iban=iban,
            bic=bic,
        )
    release_due_funds(now=now)
    # Started without an actor (as the beat does), so the demo admin may approve it if it is above the threshold.
    run = runs.start_run(trigger=PayoutRun.Trigger.STAFF, now=now, payee_ids=[p.pk for p in payees.values()])
    if run.status == PayoutRun.Status.AWAITING_APPROVAL:
        run = runs.approve_run(run_id=run.pk, actor=admin, now=now)
    for sepa_file in run.sepa_files.all():
        sepa.mark_sent(file_id=sepa_file.pk, actor=admin, now=now)
    return run
