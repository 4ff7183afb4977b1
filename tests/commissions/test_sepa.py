"""SEPA payouts (issue 8): the run's pain.001.001.03 validates against its XML schema (the XSD shipped with
sepaxml, checked here again with xmlschema), its control sum and number of transactions equal the run's EUR
SEPA total; bad bank details never reach the file; sent -> confirmed pays from `bank:operating`; a payout
the bank rejects goes back to `available`. The ledger stays balanced on every path."""

import hashlib
import os
import xml.etree.ElementTree as ET
from decimal import Decimal

import pytest
import sepaxml
import xmlschema
from django.utils import timezone

from commissions.models import Payout, PayoutRun, SepaFile
from commissions.payouts import runs, sepa
from core.errors import DomainError
from ledger import accounts
from ledger.models import LedgerTransaction
from ledger.selectors import account_balance, check_ledger
from tests.commissions.payout_helpers import GOOD_IBAN, available, fund, sepa_payee, staff, stripe_payee

pytestmark = pytest.mark.django_db

NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"}
XSD = os.path.join(os.path.dirname(sepaxml.__file__), "schemas", "pain.001.001.03.xsd")


def balance(spec) -> int:
    return account_balance(spec, "EUR").amount_minor


@pytest.fixture
def finance():
    return staff("commissions.download_sepa_file")


@pytest.fixture
def sepa_run():
    payees = [
        sepa_payee(bank_account_holder="Autozvuk Müller GmbH"),
        sepa_payee(iban="FR14 2004 1010 0505 0001 3M02 606", bic="", bank_account_holder="Son & Lumière SARL"),
        sepa_payee(iban="NL91ABNA0417164300", bic="ABNANL2A", bank_account_holder="Geluid BV"),
    ]
    for payee, amount in zip(payees, [12345, 6789, 100001], strict=True):
        fund(payee, amount, provider="gopay")
    card = stripe_payee()
    fund(card, 5000)
    run = runs.start_run(trigger=PayoutRun.Trigger.STAFF, now=timezone.now())
    return run


def test_the_file_validates_against_the_xsd_and_sums_to_the_runs_sepa_total(sepa_run):
    [sepa_file] = sepa_run.sepa_files.all()
    sepa_payouts = sepa_run.payouts.filter(method=Payout.Method.SEPA_CREDIT_TRANSFER)
    expected_total = sum(sepa_payouts.values_list("amount_minor", flat=True))
    assert expected_total == 12345 + 6789 + 100001

    content = bytes(sepa_file.content)
    xmlschema.XMLSchema(XSD).validate(content.decode())  # raises if not valid
    root = ET.fromstring(content)  # noqa: S314 - our own file, just generated
    header = root.find("p:CstmrCdtTrfInitn/p:GrpHdr", NS)
    assert header.find("p:MsgId", NS).text == sepa_file.message_id
    assert Decimal(header.find("p:CtrlSum", NS).text) * 100 == expected_total == sepa_file.total_minor
    assert int(header.find("p:NbOfTxs", NS).text) == 3 == sepa_file.transaction_count
    amounts = [Decimal(a.text) * 100 for a in root.iterfind(".//p:CdtTrfTxInf/p:Amt/p:InstdAmt", NS)]
    assert sum(amounts) == expected_total
    ibans = {e.text for e in root.iterfind(".//p:CdtrAcct/p:Id/p:IBAN", NS)}
    assert ibans == {GOOD_IBAN, "FR1420041010050500013M02606", "NL91ABNA0417164300"}
    end_to_end = {e.text for e in root.iterfind(".//p:PmtId/p:EndToEndId", NS)}
    assert end_to_end == {f"TOLLGATE-PAYOUT-{pk}" for pk in sepa_payouts.values_list("pk", flat=True)}
    assert sepa_file.sha256 == hashlib.sha256(content).hexdigest()
    assert set(sepa_payouts.values_list("status", "sepa_file_id")) == {(Payout.Status.PROCESSING, sepa_file.pk)}
    # the card payee's payout is not in the file
    assert sepa_run.payouts.get(method=Payout.Method.STRIPE_TRANSFER).sepa_file_id is None
    assert check_ledger().ok


def test_sent_then_confirmed_pays_every_payout_from_the_operating_account(sepa_run, finance):
    [sepa_file] = sepa_run.sepa_files.all()
    total = sepa_file.total_minor
    in_transit_before = balance(accounts.PAYOUTS_IN_TRANSIT)
    with pytest.raises(DomainError):
        sepa.mark_confirmed(file_id=sepa_file.pk, actor=finance, now=timezone.now())  # not sent yet
    with pytest.raises(DomainError):
        sepa.mark_sent(file_id=sepa_file.pk, actor=staff(), now=timezone.now())  # no permission

    sepa.mark_sent(file_id=sepa_file.pk, actor=finance, now=timezone.now())
    sepa_file = sepa.mark_confirmed(file_id=sepa_file.pk, actor=finance, now=timezone.now())

    assert sepa_file.status == SepaFile.Status.CONFIRMED
    assert set(sepa_file.payouts.values_list("status", flat=True)) == {Payout.Status.PAID}
    assert balance(accounts.BANK_OPERATING) == -total
    assert balance(accounts.PAYOUTS_IN_TRANSIT) == in_transit_before - total
    assert LedgerTransaction.objects.filter(kind="payout_paid").count() == 3
    with pytest.raises(DomainError):
        sepa.mark_confirmed(file_id=sepa_file.pk, actor=finance, now=timezone.now())  # once
    assert check_ledger().ok


def test_a_payout_the_bank_rejects_goes_back_to_available(sepa_run, finance):
    [sepa_file] = sepa_run.sepa_files.all()
    rejected = sepa_file.payouts.order_by("pk").first()
    sepa.mark_sent(file_id=sepa_file.pk, actor=finance, now=timezone.now())

    payout = sepa.fail_file_payout(
        payout_id=rejected.pk, message="AC04 account closed", actor=finance, now=timezone.now()
    )
    sepa.mark_confirmed(file_id=sepa_file.pk, actor=finance, now=timezone.now())

    assert (payout.status, payout.failure_message) == (Payout.Status.FAILED, "AC04 account closed")
    assert available(payout.payee) == payout.amount_minor
    assert balance(accounts.BANK_OPERATING) == -(sepa_file.total_minor - payout.amount_minor)
    assert LedgerTransaction.objects.filter(kind="payout_paid").count() == 2
    assert check_ledger().ok


def test_bad_bank_details_in_a_payout_never_reach_the_file(settings):
    settings.TOLLGATE_PAYOUT_APPROVAL_THRESHOLD = {"EUR": 1}
    good, changed = sepa_payee(), sepa_payee()
    fund(good, 5000)
    fund(changed, 7000)
    run = runs.start_run(trigger=PayoutRun.Trigger.STAFF, now=timezone.now())
    assert run.status == PayoutRun.Status.AWAITING_APPROVAL
    assert not run.sepa_files.exists()
    # the snapshot went bad before approval (as if imported from a broken source)
    Payout.objects.filter(payee=changed).update(iban="DE00370400440532013000")

    runs.approve_run(run_id=run.pk, actor=staff("commissions.approve_payout_run"), now=timezone.now())

    [sepa_file] = run.sepa_files.all()
    assert (sepa_file.transaction_count, sepa_file.total_minor) == (1, 5000)
    assert b"DE00370400440532013000" not in bytes(sepa_file.content)
    bad = Payout.objects.get(payee=changed)
    assert (bad.status, bad.failure_message) == (Payout.Status.FAILED, "The IBAN is missing or not valid.")
    assert available(changed) == 7000
    assert check_ledger().ok


def test_message_ids_are_unique_per_file(sepa_run):
    payee = sepa_payee()
    fund(payee, 4000)
    second = runs.start_run(trigger=PayoutRun.Trigger.STAFF, now=timezone.now())
    ids = list(SepaFile.objects.values_list("message_id", flat=True))
    assert len(ids) == len(set(ids)) == 2
    assert second.sepa_files.get().total_minor == 4000
