"""The bank's answer to a SEPA file: a payment status report (ISO 20022 pain.002.001.03), imported instead of
marking the file sent and confirmed by hand. Rejected transfers are failed (the money goes back to the payee's
available balance), the file is marked sent (the report proves the bank has it), and confirmed once every
transfer still in it is accepted. Everything is done by the services of `sepa`; nothing here posts money.

The report is parsed with the standard library: it has no DTD, so one that declares a DOCTYPE or entities is
refused before ElementTree reads it (no XXE, no entity expansion)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime
from xml.parsers import expat

from django.db import transaction

from commissions.models import Payout, SepaFile
from commissions.payouts.sepa import end_to_end_id, fail_file_payout, mark_confirmed, mark_sent
from core.audit import record_audit
from core.errors import ConflictError, DomainError, NotFoundError
from core.models import AuditEntry

NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.002.001.03"}
PAIN_001 = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"}
MAX_REPORT_BYTES = 5 * 1024 * 1024

# ACTC only says the file passed the bank's technical checks: a transfer can still be rejected after it, and
# confirming pays every payout in the file, so it waits (as pending) for a report that accepts or rejects it.
ACCEPTED = frozenset({"ACCP", "ACSP", "ACSC", "ACWC"})
REJECTED = "RJCT"
PENDING = frozenset({"PDNG", "RCVD", "PART", "ACTC"})  # PART (group only): the unlisted transfers are not known yet
KNOWN_STATUSES = ACCEPTED | PENDING | {REJECTED}
# The usual SEPA reason codes, for a plain-language message when the bank sends only the code.
REASONS = {
    "AC01": "Incorrect account number",
    "AC04": "Account closed",
    "AC06": "Account blocked",
    "AG01": "Transaction forbidden on this account",
    "AM05": "Duplicate payment",
    "BE04": "Creditor address missing or incorrect",
    "MS02": "Refused by the creditor",
    "MS03": "Reason not specified",
    "RC01": "BIC incorrect",
}


class StatusReportError(DomainError):
    """The upload is not a pain.002.001.03 we can read."""


@dataclass(frozen=True)
class Status:
    code: str  # the ISO status code (RJCT, ACSC, ...)
    reason_code: str = ""
    reason_text: str = ""

    @property
    def outcome(self) -> str:
        if self.code in ACCEPTED:
            return "accepted"
        return "rejected" if self.code == REJECTED else "pending"

    @property
    def reason(self) -> str:
        text = self.reason_text or REASONS.get(self.reason_code, "")
        return " ".join(filter(None, [self.reason_code, text])) or "no reason given"


@dataclass(frozen=True)
class StatusReport:
    message_id: str
    original_message_id: str
    group: Status | None  # None when the bank gives no group status
    blocks: dict[str, Status]  # payment blocks (OrgnlPmtInfId) reported without their transactions
    transactions: dict[str, Status]  # by OrgnlEndToEndId


@dataclass(frozen=True)
class ImportResult:
    sepa_file: SepaFile
    accepted: int  # transfers the bank accepted in this report (paid if the file was confirmed)
    rejected: int  # payouts failed now: their money is back in the payees' balances
    pending: int  # transfers the bank has not decided yet
    already_handled: int  # payouts already paid or failed before this import
    marked_sent: bool
    confirmed: bool

    @property
    def changed(self) -> bool:
        return bool(self.rejected or self.marked_sent or self.confirmed)

    @property
    def summary(self) -> str:
        if not self.changed:
            return (
                f"{self.sepa_file.message_id}: nothing to change; the report was already imported or brings no news "
                f"({self.already_handled} payout(s) already handled, {self.pending} still pending at the bank)."
            )
        parts = ["marked sent"] if self.marked_sent else []
        if self.rejected:
            parts.append(f"{self.rejected} payout(s) rejected by the bank, the money is back in the payees' balances")
        if self.confirmed:
            parts.append(f"confirmed: {self.accepted} payout(s) paid")
        elif self.pending:
            parts.append(f"{self.pending} payout(s) still pending at the bank; a later report will confirm the file")
        return f"{self.sepa_file.message_id}: " + "; ".join(parts) + "."


def _refuse_dtd(*_args) -> None:
    raise StatusReportError("The file declares a DTD or entities; a bank status report never does, so it is refused.")


def _parse_xml(content: bytes) -> ET.Element:
    if len(content) > MAX_REPORT_BYTES:
        raise StatusReportError("The file is larger than 5 MB.")
    # ElementTree expands entities declared in a DTD; a first pass with expat refuses any DOCTYPE or entity, so
    # the second pass only ever sees a document without one.
    guard = expat.ParserCreate()
    guard.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    guard.StartDoctypeDeclHandler = guard.EntityDeclHandler = guard.ExternalEntityRefHandler = _refuse_dtd
    try:
        guard.Parse(content, True)
    except expat.ExpatError as exc:
        raise StatusReportError(f"The file is not well-formed XML ({expat.ErrorString(exc.code)}).") from exc
    return ET.fromstring(content)  # noqa: S314 - checked above: no DTD, so nothing to expand or fetch


def _text(element: ET.Element, path: str, ns: dict = NS) -> str:
    found = element.find("/".join(f"p:{part}" for part in path.split("/")), ns)
    return (found.text or "").strip() if found is not None else ""


def _status(element: ET.Element, tag: str, inherited: Status | None) -> Status | None:
    code = _text(element, tag)
    if not code:
        return inherited
    if code not in KNOWN_STATUSES:
        raise StatusReportError(f"Unknown status code {code!r} in the report.")
    reason = element.find("p:StsRsnInf", NS)
    if reason is None:
        return Status(code)
    reason_code = _text(reason, "Rsn/Cd") or _text(reason, "Rsn/Prtry")
    texts = [(info.text or "").strip() for info in reason.iterfind("p:AddtlInf", NS)]
    return Status(code, reason_code, " ".join(filter(None, texts)))


def parse_status_report(content: bytes) -> StatusReport:
    """The statuses of a pain.002.001.03. A transfer without its own status takes its block's, then the group's."""
    root = _parse_xml(content)
    report = root.find("p:CstmrPmtStsRpt", NS)
    if root.tag != f"{{{NS['p']}}}Document" or report is None:
        raise StatusReportError("The file is not a payment status report (pain.002.001.03).")
    original = report.find("p:OrgnlGrpInfAndSts", NS)
    original_id = _text(original, "OrgnlMsgId") if original is not None else ""
    if not original_id:
        raise StatusReportError("The report does not name the file it answers (OrgnlGrpInfAndSts/OrgnlMsgId).")
    name = _text(original, "OrgnlMsgNmId")
    if name and not name.startswith("pain.001"):
        raise StatusReportError(f"The report answers a {name} message, not a credit-transfer file (pain.001).")
    group = _status(original, "GrpSts", None)
    blocks, transactions = {}, {}
    for block in report.iterfind("p:OrgnlPmtInfAndSts", NS):
        block_status = _status(block, "PmtInfSts", group)
        listed = block.findall("p:TxInfAndSts", NS)
        if not listed and block_status is not None and block_status is not group:
            blocks[_text(block, "OrgnlPmtInfId")] = block_status
        for tx in listed:
            e2e, status = _text(tx, "OrgnlEndToEndId"), _status(tx, "TxSts", block_status)
            if not e2e or status is None:
                raise StatusReportError("A transaction in the report has no OrgnlEndToEndId or no status.")
            if transactions.get(e2e, status) != status:
                raise StatusReportError(f"The report gives two different statuses for {e2e}.")
            transactions[e2e] = status
    return StatusReport(_text(report, "GrpHdr/MsgId"), original_id, group, blocks, transactions)


def _blocks_of_file(sepa_file: SepaFile) -> dict[str, list[str]]:
    """Our own pain.001: the end-to-end ids in each payment block, for a block the bank answers as a whole."""
    root = _parse_xml(bytes(sepa_file.content))
    return {
        _text(block, "PmtInfId", PAIN_001): [e.text for e in block.iterfind(".//p:PmtId/p:EndToEndId", PAIN_001)]
        for block in root.iterfind(".//p:PmtInf", PAIN_001)
    }


def _statuses(report: StatusReport, sepa_file: SepaFile, names: set[str]) -> dict[str, Status | None]:
    """Each transfer of the file with the report's status for it (None: the report says nothing about it)."""
    unknown = sorted(set(report.transactions) - names)
    if unknown:
        more = f" and {len(unknown) - 20} more" if len(unknown) > 20 else ""
        raise StatusReportError(
            f"The report names transfers that are not in this file: {', '.join(unknown[:20])}{more}."
        )
    statuses: dict[str, Status | None] = dict.fromkeys(names, report.group)
    if report.blocks:
        in_file = _blocks_of_file(sepa_file)
        missing = sorted(set(report.blocks) - set(in_file))
        if missing:
            raise StatusReportError(f"The report names payment blocks not in this file: {', '.join(missing)}.")
        for block_id, status in report.blocks.items():
            statuses.update(dict.fromkeys(in_file[block_id], status))
    statuses.update(report.transactions)
    return statuses


def import_status_report(*, file_id: int, content: bytes, actor, now: datetime) -> ImportResult:
    """Apply a pain.002 to its SEPA file in one transaction; nothing is written if any part of it does not fit.
    Importing the same report again changes nothing (paid and failed payouts are left as they are)."""
    try:
        return _import(file_id=file_id, content=content, actor=actor, now=now)
    except DomainError as exc:
        # after the rollback, so the refusal is on record
        if SepaFile.objects.filter(pk=file_id).exists():
            record_audit(
                action="sepa_file.status_report",
                actor=actor,
                object_type="commissions.sepafile",
                object_id=file_id,
                outcome=AuditEntry.Outcome.DENIED if exc.status == 403 else AuditEntry.Outcome.FAILURE,
                message=exc.message[:500],
                now=now,
            )
        raise


def _import(*, file_id: int, content: bytes, actor, now: datetime) -> ImportResult:
    if actor is not None and not actor.has_perm("commissions.download_sepa_file"):
        raise DomainError("You may not handle SEPA files.", status=403)
    report = parse_status_report(content)
    with transaction.atomic():
        sepa_file = SepaFile.objects.select_for_update().filter(pk=file_id).first()
        if sepa_file is None:
            raise NotFoundError(f"SEPA file {file_id} does not exist.")
        if report.original_message_id != sepa_file.message_id:
            raise ConflictError(
                f"This report answers file {report.original_message_id}, not {sepa_file.message_id}: "
                "import it on that file."
            )
        payouts = {end_to_end_id(p): p for p in sepa_file.payouts.select_for_update().order_by("pk")}
        statuses = _statuses(report, sepa_file, set(payouts))
        counts = dict.fromkeys(["accepted", "rejected", "pending", "already_handled"], 0)
        to_fail: list[tuple[Payout, Status]] = []
        conflicts = []
        for e2e, payout in payouts.items():
            outcome = statuses[e2e].outcome if statuses[e2e] is not None else "pending"
            if payout.status == Payout.Status.PROCESSING:
                if outcome == "rejected":
                    to_fail.append((payout, statuses[e2e]))
                counts[outcome] += 1
            elif (outcome, payout.status) in {("rejected", Payout.Status.PAID), ("accepted", Payout.Status.FAILED)}:
                conflicts.append(f"{e2e} is {payout.get_status_display().lower()} but the bank says {outcome}")
            else:
                counts["already_handled"] += 1
        if conflicts:
            raise ConflictError("The report contradicts the file; handle it by hand: " + "; ".join(conflicts) + ".")

        # Rejections first, so that marking the file sent only concerns (and queues statements for) live payouts.
        for payout, status in to_fail:
            fail_file_payout(
                payout_id=payout.pk, message=f"Rejected by the bank: {status.reason}", actor=actor, now=now
            )
        marked_sent = sepa_file.status == SepaFile.Status.GENERATED
        if marked_sent:  # the bank answering the file proves it was sent
            mark_sent(file_id=sepa_file.pk, actor=actor, now=now)
        # Confirming pays every transfer still in the file, so only when the bank accepted all of them.
        confirmed = bool(counts["accepted"]) and not counts["pending"]
        if confirmed:
            mark_confirmed(file_id=sepa_file.pk, actor=actor, now=now)
        sepa_file.refresh_from_db()
        result = ImportResult(sepa_file, **counts, marked_sent=marked_sent, confirmed=confirmed)
        record_audit(
            action="sepa_file.status_report",
            actor=actor,
            obj=sepa_file,
            now=now,
            message=result.summary,
            metadata={
                "report_message_id": report.message_id,
                "group_status": report.group.code if report.group else "",
                "failed": [payout.pk for payout, _ in to_fail],
                **counts,
            },
        )
    return result
