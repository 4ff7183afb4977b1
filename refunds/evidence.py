"""The evidence pack of a dispute: one PDF (WeasyPrint, from templates/refunds/evidence_pack.html) with what a
merchant sends the card network to contest a chargeback: the dispute, the order and its lines, the payment,
refunds already made, delivery or check-in data, and the communication with the buyer (our audit trail).

Only what we hold about the order goes in: there is no card data in Tollgate, and of the order's metadata
only delivery / check-in fields are shown (a marketplace's other metadata may be private)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from core.admin_tools import money
from core.models import AuditEntry
from core.pdf import render_pdf
from refunds.models import Dispute

# Order metadata keys shown as delivery / check-in evidence.
DELIVERY_KEY = re.compile(r"deliver|check.?in|checked|ship|track|dispatch|scan|attend|ticket|collect", re.IGNORECASE)
# Audit actions that are ours, not communication with the buyer or the provider.
SKIPPED_ACTIONS = {"dispute.evidence_pack"}


@dataclass(frozen=True)
class Row:
    label: str
    value: str


def _when(value: datetime | None) -> str:
    if value is None:
        return "–"
    return timezone.localtime(value, timezone.get_fixed_timezone(0)).strftime("%d %b %Y, %H:%M UTC")


def _delivery_rows(order) -> list[Row]:
    rows: list[Row] = []
    metadata = order.metadata if isinstance(order.metadata, dict) else {}
    for key in sorted(metadata):
        if DELIVERY_KEY.search(str(key)):
            value = metadata[key]
            text = value if isinstance(value, str) else ", ".join(map(str, value)) if isinstance(value, list) else value
            rows.append(Row(str(key).replace("_", " "), str(text)[:300]))
    return rows


def _communication(dispute: Dispute, refunds) -> list[dict]:
    order = dispute.order
    about = (
        Q(object_type="payments.order", object_id=str(order.pk))
        | Q(object_type="payments.payment", object_id__in=[str(p.pk) for p in order.payments.all()])
        | Q(object_type="refunds.refund", object_id__in=[str(r.pk) for r in refunds])
        | Q(object_type="refunds.dispute", object_id=str(dispute.pk))
    )
    entries: list[dict] = []
    if order.confirmation_sent_at:
        entries.append(
            {
                "at": order.confirmation_sent_at,
                "what": f"Payment confirmation e-mail sent to {order.buyer_email}",
                "who": "system",
                "amount": "",
            }
        )
    for entry in AuditEntry.objects.filter(about).exclude(action__in=SKIPPED_ACTIONS).order_by("created_at", "pk"):
        what = entry.action.replace("_", " ").replace(".", ": ", 1)
        if entry.message:
            what = f"{what} — {entry.message[:200]}"
        entries.append(
            {
                "at": entry.created_at,
                "what": what,
                "who": entry.actor_label,
                "amount": money(entry.amount_minor, entry.currency) if entry.amount_minor is not None else "",
            }
        )
    entries.sort(key=lambda item: item["at"])
    return [{**item, "at": _when(item["at"])} for item in entries]


def evidence_context(*, dispute: Dispute) -> dict:
    order, payment = dispute.order, dispute.payment
    currency = order.currency
    lines = list(order.lines.select_related("payee").order_by("position", "pk"))
    refunds = list(order.refunds.order_by("created_at", "pk"))
    events = [
        {"description": line.description, "ref": line.event_ref, "starts": _when(line.event_starts_at)}
        for line in lines
        if line.event_ref or line.event_starts_at
    ]
    return {
        "platform_name": settings.TOLLGATE_PLATFORM_NAME,
        "generated_at": _when(timezone.now()),
        "dispute": dispute,
        "dispute_rows": [
            Row("Provider reference", dispute.provider_ref),
            Row("Provider", payment.provider),
            Row("Reason", dispute.reason or "–"),
            Row("Status", dispute.get_status_display()),
            Row("Disputed amount", money(dispute.amount_minor, dispute.currency)),
            Row("Opened", _when(dispute.opened_at)),
            Row("Evidence due by", _when(dispute.evidence_due_by)),
        ],
        "order": order,
        "order_rows": [
            Row("Order reference", order.reference or "–"),
            Row("Order token", str(order.token)),
            Row("Status", order.get_status_display()),
            Row("Created", _when(order.created_at)),
            Row("Paid", _when(order.paid_at)),
            Row("Buyer e-mail", order.buyer_email),
            Row("Buyer country", order.buyer_country or "–"),
            Row("Description", order.description or "–"),
        ],
        "lines": [
            {
                "position": index,
                "description": line.description,
                "payee": line.payee.name,
                "kind": line.get_kind_display(),
                "quantity": line.quantity,
                "unit": money(line.unit_amount_minor, currency),
                "amount": money(line.amount_minor, currency),
            }
            for index, line in enumerate(lines, start=1)
        ],
        "total": money(order.total_minor, currency),
        "payment_rows": [
            Row("Provider", payment.provider),
            Row("Checkout reference", payment.provider_ref or "–"),
            Row("Payment reference", payment.provider_payment_ref or "–"),
            Row("Charge reference", payment.provider_charge_ref or "–"),
            Row("Captured", money(payment.captured_minor, payment.currency)),
            Row("Refunded", money(payment.refunded_minor, payment.currency)),
            Row("Succeeded at", _when(payment.succeeded_at)),
        ],
        "refunds": [
            {
                "id": refund.pk,
                "created": _when(refund.created_at),
                "amount": money(refund.amount_minor, refund.currency),
                "reason": refund.get_reason_display(),
                "status": refund.get_status_display(),
                "succeeded": _when(refund.succeeded_at),
            }
            for refund in refunds
        ],
        "documents": [
            {
                "number": document.number,
                "kind": document.title,
                "issued": _when(document.issued_at),
                "issuer": document.issuer_name,
                "amount": money(document.sign * document.gross_minor, document.currency),
                "sha256": document.pdf.sha256 if hasattr(document, "pdf") else "",
            }
            for document in order.invoices.order_by("issued_at", "pk")
        ],
        "events": events,
        "delivery_rows": _delivery_rows(order),
        "communication": _communication(dispute, refunds),
    }


def build_evidence_pack(*, dispute: Dispute) -> bytes:
    """The dispute's evidence pack as PDF bytes (A4)."""
    return render_pdf("refunds/evidence_pack.html", evidence_context(dispute=dispute))
