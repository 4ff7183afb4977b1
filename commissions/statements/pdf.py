"""A statement as a PDF (WeasyPrint, templates/commissions/statement.html), and getting it to the payee: the
e-mail with the PDF attached (sent once automatically; staff re-sends are logged) and the download response.

The PDF is rendered from the statement row and the ledger items of its period, both immutable, so a statement
issued while documents were not rendered (the demo, the test settings) renders the same document on download."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.http import HttpResponse
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.dateformat import format as format_date

from commissions.models import Payee, PayoutStatement, StatementDelivery
from commissions.statements.figures import FIGURES, LABELS, SIGN, StatementFigures, statement_figures
from core.admin_tools import money
from core.pdf import day_text, render_pdf

SYSTEM = "system"


def _moment(value: datetime) -> str:
    return format_date(timezone.localtime(value), "j M Y, H:i")


def statement_context(statement: PayoutStatement, *, figures: StatementFigures | None = None) -> dict:
    figures = figures or statement_figures(
        payee_id=statement.payee_id,
        currency=statement.currency,
        start=statement.period_start,
        end=statement.period_end,
    )
    currency = statement.currency
    payee = Payee.objects.get(pk=statement.payee_id)
    summary = [
        {
            "label": LABELS[name],
            # Shown as it moves the balance: sales and adjustments add, the rest take away.
            "amount": money(SIGN[name] * getattr(statement, f"{name}_minor"), currency),
        }
        for name in FIGURES
    ]
    items = [
        {
            "when": _moment(item.posted_at),
            "label": item.label,
            "memo": item.memo,
            "parts": ", ".join(
                f"{LABELS[name]} {money(SIGN[name] * amount, currency)}"
                for name, amount in item.figures.items()
                if len(item.figures) > 1
            ),
            "net": money(item.net, currency),
        }
        for item in figures.items
    ]
    if statement.kind == PayoutStatement.Kind.MONTH:  # the end is exclusive: the month's last day is shown
        period = f"{day_text(statement.period_start)} – {day_text(statement.period_end - timedelta(microseconds=1))}"
    else:
        period = f"{_moment(statement.period_start)} – {_moment(statement.period_end)}"
    return {
        "statement": statement,
        "title": statement.title,
        "reference": statement.reference,
        "payee": payee,
        "address": [row.strip() for row in payee.address.splitlines() if row.strip()],
        "period": period,
        "issued_on": day_text(statement.issued_at),
        "currency": currency,
        "opening": money(statement.opening_minor, currency),
        "closing": money(statement.closing_minor, currency),
        "summary": summary,
        "items": items,
        "closing_split": [
            (name.capitalize(), money(amount, currency)) for name, amount in figures.closing_by_account.items()
        ],
        "payout": statement.payout,
        "platform_name": settings.TOLLGATE_PLATFORM_NAME,
        "platform_legal_name": settings.TOLLGATE_PLATFORM_LEGAL_NAME,
    }


def render_statement_pdf(statement: PayoutStatement, *, figures: StatementFigures | None = None) -> bytes:
    return render_pdf("commissions/statement.html", statement_context(statement, figures=figures))


def statement_pdf_bytes(statement: PayoutStatement) -> bytes:
    """The stored PDF, or the same document rendered now when the statement was issued without one."""
    return bytes(statement.pdf) if statement.pdf else render_statement_pdf(statement)


def pdf_filename(statement: PayoutStatement) -> str:
    return f"statement-{statement.reference}.pdf"


def statement_pdf_response(statement: PayoutStatement) -> HttpResponse:
    response = HttpResponse(statement_pdf_bytes(statement), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{pdf_filename(statement)}"'
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def email_statement(*, statement_id: int, now: datetime, actor_label: str = SYSTEM) -> bool:
    """E-mail the statement to the payee with the PDF attached. The automatic send happens once (checked under
    the statement's row lock); a staff re-send always sends and is logged."""
    with transaction.atomic():
        statement = PayoutStatement.objects.select_for_update(of=("self",)).select_related("payee").get(pk=statement_id)
        if actor_label == SYSTEM and statement.deliveries.exists():
            return False
        recipient = statement.payee.email
        if not recipient:
            return False
        context = {
            "statement": statement,
            "payee": statement.payee,
            "closing": money(statement.closing_minor, statement.currency),
            "platform_name": settings.TOLLGATE_PLATFORM_NAME,
            "portal_url": settings.PUBLIC_BASE_URL + reverse("portal:payouts") + "#statements",
        }
        message = EmailMessage(
            subject=f"{statement.title} {statement.reference} — {settings.TOLLGATE_PLATFORM_NAME}",
            body=render_to_string("emails/statement.txt", context),
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[recipient],
        )
        message.attach(pdf_filename(statement), statement_pdf_bytes(statement), "application/pdf")
        message.send()
        StatementDelivery.objects.create(statement=statement, to=recipient, sent_at=now, actor_label=actor_label)
    return True
