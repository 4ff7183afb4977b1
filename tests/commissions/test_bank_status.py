"""Importing the bank's payment status report (pain.002.001.03) for a SEPA file: rejected transfers go back to
the payees' available balances, the file is marked sent and then confirmed once every transfer still in it is
accepted; the same report imported twice changes nothing; a report for another file, naming unknown transfers,
or declaring a DTD (XXE) is refused with nothing changed. The admin page is for finance only and never fails
with a 500."""

import re

import pytest
from django.urls import reverse
from django.utils import timezone

from commissions.models import Payout, PayoutRun, SepaFile
from commissions.payouts import bank_status, runs, sepa
from core.errors import DomainError
from core.models import AuditEntry
from ledger import accounts
from ledger.models import LedgerTransaction
from ledger.selectors import account_balance, check_ledger
from tests.commissions.payout_helpers import available, fund, sepa_payee, staff
from tests.factories import staff_client

pytestmark = pytest.mark.django_db

AMOUNTS = [12345, 6789, 100001]
PERM = "commissions.download_sepa_file"


def pain002(
    original_id: str,
    *,
    group: str = "",
    group_reason: tuple[str, str] | None = None,
    transactions: list[tuple] = (),
    block_id: str = "PMT-1",
    block_status: str = "",
) -> bytes:
    """A pain.002.001.03 as a bank sends it; `transactions` are (end-to-end id, status[, code, text])."""

    def reason(code_text):
        if not code_text:
            return ""
        code, text = code_text
        return f"<StsRsnInf><Rsn><Cd>{code}</Cd></Rsn><AddtlInf>{text}</AddtlInf></StsRsnInf>"

    txs = "".join(
        f"<TxInfAndSts><StsId>S{n}</StsId><OrgnlEndToEndId>{tx[0]}</OrgnlEndToEndId><TxSts>{tx[1]}</TxSts>"
        f"{reason(tx[2:])}</TxInfAndSts>"
        for n, tx in enumerate(transactions)
    )
    block = ""
    if txs or block_status:
        status = f"<PmtInfSts>{block_status}</PmtInfSts>" if block_status else ""
        block = f"<OrgnlPmtInfAndSts><OrgnlPmtInfId>{block_id}</OrgnlPmtInfId>{status}{txs}</OrgnlPmtInfAndSts>"
    group_status = f"<GrpSts>{group}</GrpSts>" if group else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.03"><CstmrPmtStsRpt>'
        "<GrpHdr><MsgId>BANK-STS-0001</MsgId><CreDtTm>2026-11-24T10:00:00</CreDtTm>"
        "<DbtrAgt><FinInstnId><BIC>COBADEFFXXX</BIC></FinInstnId></DbtrAgt></GrpHdr>"
        f"<OrgnlGrpInfAndSts><OrgnlMsgId>{original_id}</OrgnlMsgId><OrgnlMsgNmId>pain.001.001.03</OrgnlMsgNmId>"
        f"<OrgnlNbOfTxs>3</OrgnlNbOfTxs>{group_status}{reason(group_reason)}</OrgnlGrpInfAndSts>"
        f"{block}</CstmrPmtStsRpt></Document>"
    ).encode()


@pytest.fixture
def finance():
    return staff(PERM)


@pytest.fixture
def sepa_file():
    payees = [
        sepa_payee(bank_account_holder="Autozvuk Müller GmbH"),
        sepa_payee(iban="FR1420041010050500013M02606", bic="", bank_account_holder="Son & Lumière SARL"),
        sepa_payee(iban="NL91ABNA0417164300", bic="ABNANL2A", bank_account_holder="Geluid BV"),
    ]
    for payee, amount in zip(payees, AMOUNTS, strict=True):
        fund(payee, amount, provider="gopay")
    run = runs.start_run(trigger=PayoutRun.Trigger.STAFF, now=timezone.now())
    return run.sepa_files.get()


def ids(sepa_file) -> list[str]:
    return [sepa.end_to_end_id(p) for p in sepa_file.payouts.order_by("pk")]


def payouts(sepa_file) -> list[Payout]:
    return list(sepa_file.payouts.order_by("pk").select_related("payee"))


def bank_paid() -> int:
    return -account_balance(accounts.BANK_OPERATING, "EUR").amount_minor


def snapshot(sepa_file) -> tuple:
    sepa_file.refresh_from_db()
    return (
        sepa_file.status,
        [(p.status, available(p.payee)) for p in payouts(sepa_file)],
        LedgerTransaction.objects.count(),
        bank_paid(),
    )


def do_import(sepa_file, content, actor):
    return bank_status.import_status_report(file_id=sepa_file.pk, content=content, actor=actor, now=timezone.now())


def assert_money_conserved(sepa_file) -> None:
    paid = sum(p.amount_minor for p in payouts(sepa_file) if p.status == Payout.Status.PAID)
    returned = sum(available(p.payee) for p in payouts(sepa_file))
    assert paid + returned == sepa_file.total_minor == sum(AMOUNTS)
    assert bank_paid() == paid
    assert check_ledger().ok


def test_a_report_accepting_every_transfer_marks_the_file_sent_and_confirmed(sepa_file, finance):
    report = pain002(sepa_file.message_id, group="ACSC", transactions=[(e2e, "ACSC") for e2e in ids(sepa_file)])

    result = do_import(sepa_file, report, finance)

    sepa_file.refresh_from_db()
    assert (sepa_file.status, sepa_file.sent_at is not None) == (SepaFile.Status.CONFIRMED, True)
    assert {p.status for p in payouts(sepa_file)} == {Payout.Status.PAID}
    assert (result.accepted, result.rejected, result.pending, result.already_handled) == (3, 0, 0, 0)
    assert result.marked_sent
    assert result.confirmed
    entry = AuditEntry.objects.get(action="sepa_file.status_report")
    assert (entry.outcome, entry.metadata["accepted"], entry.metadata["report_message_id"]) == (
        "success",
        3,
        "BANK-STS-0001",
    )
    assert bank_paid() == sum(AMOUNTS)
    assert_money_conserved(sepa_file)


def test_a_rejected_transfer_goes_back_to_the_payee_and_the_rest_are_paid(sepa_file, finance):
    first, second, third = ids(sepa_file)
    report = pain002(
        sepa_file.message_id,
        group="PART",
        transactions=[(first, "ACSC"), (second, "RJCT", "AC04", "Account closed"), (third, "ACCP")],
    )

    result = do_import(sepa_file, report, finance)

    paid_one, rejected, paid_two = payouts(sepa_file)
    assert (rejected.status, rejected.failure_message) == (
        Payout.Status.FAILED,
        "Rejected by the bank: AC04 Account closed",
    )
    assert available(rejected.payee) == AMOUNTS[1]
    assert (paid_one.status, paid_two.status) == (Payout.Status.PAID, Payout.Status.PAID)
    assert available(paid_one.payee) == available(paid_two.payee) == 0
    assert SepaFile.objects.get(pk=sepa_file.pk).status == SepaFile.Status.CONFIRMED
    assert (result.accepted, result.rejected, result.pending) == (2, 1, 0)
    assert bank_paid() == AMOUNTS[0] + AMOUNTS[2]
    assert_money_conserved(sepa_file)


def test_importing_the_same_report_twice_changes_nothing(sepa_file, finance):
    first, second, third = ids(sepa_file)
    report = pain002(
        sepa_file.message_id,
        group="PART",
        transactions=[(first, "ACSC"), (second, "RJCT", "AC04", "Account closed"), (third, "ACSC")],
    )
    do_import(sepa_file, report, finance)
    before = snapshot(sepa_file)

    again = do_import(sepa_file, report, finance)

    assert not again.changed
    assert (again.accepted, again.rejected, again.pending, again.already_handled) == (0, 0, 0, 3)
    assert "nothing to change" in again.summary
    assert snapshot(sepa_file) == before
    assert_money_conserved(sepa_file)


def test_a_pending_transfer_leaves_the_file_sent_until_a_later_report(sepa_file, finance):
    first, second, third = ids(sepa_file)
    pending = pain002(sepa_file.message_id, group="PART", transactions=[(first, "ACSC"), (second, "PDNG")])

    result = do_import(sepa_file, pending, finance)

    sepa_file.refresh_from_db()
    assert sepa_file.status == SepaFile.Status.SENT
    assert {p.status for p in payouts(sepa_file)} == {Payout.Status.PROCESSING}
    assert (result.accepted, result.pending, result.confirmed) == (1, 2, False)  # the unlisted one is unknown
    assert bank_paid() == 0
    assert not do_import(sepa_file, pending, finance).changed

    later = pain002(sepa_file.message_id, group="ACSC")  # a group status covers every transfer
    assert do_import(sepa_file, later, finance).confirmed
    assert {p.status for p in payouts(sepa_file)} == {Payout.Status.PAID}
    assert_money_conserved(sepa_file)


def test_technically_accepted_only_is_not_a_confirmation(sepa_file, finance):
    """ACTC says the file passed the bank's checks, not that a transfer was made: nothing is paid on it."""
    result = do_import(sepa_file, pain002(sepa_file.message_id, group="ACTC"), finance)

    sepa_file.refresh_from_db()
    assert sepa_file.status == SepaFile.Status.SENT
    assert (result.accepted, result.pending, result.confirmed) == (0, 3, False)
    assert {p.status for p in payouts(sepa_file)} == {Payout.Status.PROCESSING}
    assert bank_paid() == 0


def test_a_whole_file_rejection_returns_every_payout(sepa_file, finance):
    report = pain002(sepa_file.message_id, group="RJCT", group_reason=("AG01", "Transaction forbidden"))

    result = do_import(sepa_file, report, finance)

    assert result.rejected == 3
    assert not result.confirmed
    for payout, amount in zip(payouts(sepa_file), AMOUNTS, strict=True):
        assert payout.status == Payout.Status.FAILED
        assert payout.failure_message == "Rejected by the bank: AG01 Transaction forbidden"
        assert available(payout.payee) == amount
    assert SepaFile.objects.get(pk=sepa_file.pk).status == SepaFile.Status.SENT  # nothing was confirmed
    assert bank_paid() == 0
    assert_money_conserved(sepa_file)


def test_a_payment_block_rejected_as_a_whole_rejects_its_transfers(sepa_file, finance):
    [block_id] = re.findall(rb"<PmtInfId>([^<]+)</PmtInfId>", bytes(sepa_file.content))
    report = pain002(sepa_file.message_id, group="RJCT", block_id=block_id.decode(), block_status="RJCT")

    assert do_import(sepa_file, report, finance).rejected == 3
    assert {p.status for p in payouts(sepa_file)} == {Payout.Status.FAILED}
    assert_money_conserved(sepa_file)


def test_a_report_for_another_file_is_refused_and_nothing_changes(sepa_file, finance):
    before = snapshot(sepa_file)
    report = pain002("TOLLGATE-R999-F1-20261124", group="ACSC")

    with pytest.raises(DomainError, match="answers file TOLLGATE-R999-F1-20261124") as exc:
        do_import(sepa_file, report, finance)

    assert exc.value.status == 409
    assert snapshot(sepa_file) == before
    refusal = AuditEntry.objects.get(action="sepa_file.status_report")  # on record after the rollback
    assert (refusal.outcome, refusal.object_id, refusal.actor) == ("failure", str(sepa_file.pk), finance)


def test_unknown_end_to_end_ids_are_listed_and_nothing_changes(sepa_file, finance):
    first, *_ = ids(sepa_file)
    before = snapshot(sepa_file)
    report = pain002(
        sepa_file.message_id,
        group="PART",
        transactions=[(first, "RJCT", "AC04", "Account closed"), ("TOLLGATE-PAYOUT-999999", "ACSC")],
    )

    with pytest.raises(DomainError, match="not in this file: TOLLGATE-PAYOUT-999999") as exc:
        do_import(sepa_file, report, finance)

    assert exc.value.status == 400
    assert snapshot(sepa_file) == before


def test_a_rejection_of_an_already_paid_transfer_is_refused(sepa_file, finance):
    sepa.mark_sent(file_id=sepa_file.pk, actor=finance, now=timezone.now())
    sepa.mark_confirmed(file_id=sepa_file.pk, actor=finance, now=timezone.now())
    first, *_ = ids(sepa_file)
    before = snapshot(sepa_file)

    with pytest.raises(DomainError, match="contradicts"):
        do_import(sepa_file, pain002(sepa_file.message_id, transactions=[(first, "RJCT", "AC04", "x")]), finance)

    assert snapshot(sepa_file) == before


def test_without_the_permission_nothing_changes(sepa_file):
    before = snapshot(sepa_file)
    with pytest.raises(DomainError) as exc:
        do_import(sepa_file, pain002(sepa_file.message_id, group="ACSC"), staff())
    assert exc.value.status == 403
    assert snapshot(sepa_file) == before


XXE = b"""<?xml version="1.0"?>
<!DOCTYPE Document [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.03"><CstmrPmtStsRpt>
<OrgnlGrpInfAndSts><OrgnlMsgId>&xxe;</OrgnlMsgId><GrpSts>ACSC</GrpSts></OrgnlGrpInfAndSts>
</CstmrPmtStsRpt></Document>"""
LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><d>&b;</d>"""


@pytest.mark.parametrize("payload", [XXE, LAUGHS, b"<!DOCTYPE Document SYSTEM 'http://evil.example/x.dtd'><a/>"])
def test_a_document_with_a_dtd_is_refused(sepa_file, finance, payload):
    with pytest.raises(bank_status.StatusReportError, match="DTD"):
        bank_status.parse_status_report(payload)
    before = snapshot(sepa_file)
    with pytest.raises(DomainError, match="DTD"):
        do_import(sepa_file, payload, finance)
    assert snapshot(sepa_file) == before


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not xml at all", "not well-formed"),
        (b"<Document xmlns='urn:iso:std:iso:20022:tech:xsd:pain.001.001.03'/>", "not a payment status report"),
        (pain002("X", group="XXXX"), "Unknown status code"),
    ],
)
def test_unreadable_reports_are_refused(content, message):
    with pytest.raises(bank_status.StatusReportError, match=message):
        bank_status.parse_status_report(content)


# --- the admin page ---


def upload(client, sepa_file, content: bytes, name: str = "status.xml"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    url = reverse("admin:commissions_sepafile_status_report", args=[sepa_file.pk])
    return client.post(url, {"report": SimpleUploadedFile(name, content, "application/xml")}, follow=True)


def test_the_admin_page_is_for_finance_only(sepa_file):
    client = staff_client("commissions.view_sepafile")
    url = reverse("admin:commissions_sepafile_status_report", args=[sepa_file.pk])
    assert client.get(url).status_code == 403
    assert upload(client, sepa_file, pain002(sepa_file.message_id, group="ACSC")).status_code == 403
    assert SepaFile.objects.get(pk=sepa_file.pk).status == SepaFile.Status.GENERATED
    assert url not in client.get(reverse("admin:commissions_sepafile_change", args=[sepa_file.pk])).content.decode()
    assert url not in client.get(reverse("admin:commissions_sepafile_changelist")).content.decode()


def test_finance_imports_a_report_from_the_admin(sepa_file):
    client = staff_client(PERM, "commissions.view_sepafile")
    url = reverse("admin:commissions_sepafile_status_report", args=[sepa_file.pk])
    assert url in client.get(reverse("admin:commissions_sepafile_change", args=[sepa_file.pk])).content.decode()
    assert url in client.get(reverse("admin:commissions_sepafile_changelist")).content.decode()
    page = client.get(url)
    assert page.status_code == 200
    assert b'enctype="multipart/form-data"' in page.content
    first, second, third = ids(sepa_file)
    report = pain002(
        sepa_file.message_id,
        group="PART",
        transactions=[(first, "ACSC"), (second, "RJCT", "AC04", "Account closed"), (third, "ACSC")],
    )

    response = upload(client, sepa_file, report)

    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == reverse("admin:commissions_sepafile_change", args=[sepa_file.pk])
    text = " ".join(str(m) for m in response.context["messages"])
    assert "1 payout(s) rejected by the bank" in text
    assert "confirmed: 2 payout(s) paid" in text
    assert SepaFile.objects.get(pk=sepa_file.pk).status == SepaFile.Status.CONFIRMED
    assert_money_conserved(sepa_file)


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (b"\x00\xff garbage", "not well-formed XML"),
        (XXE, "refused"),
        (pain002("TOLLGATE-OTHER", group="ACSC"), "answers file TOLLGATE-OTHER"),
    ],
)
def test_a_bad_upload_is_a_form_error_not_a_500(sepa_file, content, error):
    client = staff_client(PERM, "commissions.view_sepafile")
    before = snapshot(sepa_file)

    response = upload(client, sepa_file, content)

    assert response.status_code == 200
    assert "Nothing was changed." in response.content.decode()
    assert error in response.content.decode()
    assert snapshot(sepa_file) == before


def test_a_file_over_5_mb_is_refused_by_the_form(sepa_file, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 20 * 1024 * 1024  # the site-wide limit (1 MB) would answer first
    client = staff_client(PERM, "commissions.view_sepafile")
    response = upload(client, sepa_file, b" " * (bank_status.MAX_REPORT_BYTES + 1))
    assert response.status_code == 200
    assert "larger than 5 MB" in response.content.decode()
    assert SepaFile.objects.get(pk=sepa_file.pk).status == SepaFile.Status.GENERATED


def test_above_the_site_wide_request_limit_the_upload_is_refused_with_413(sepa_file):
    client = staff_client(PERM, "commissions.view_sepafile")
    response = upload(client, sepa_file, b" " * (2 * 1024 * 1024))
    assert response.status_code == 413
    assert SepaFile.objects.get(pk=sepa_file.pk).status == SepaFile.Status.GENERATED
