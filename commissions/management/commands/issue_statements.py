"""`manage.py issue_statements [--month YYYY-MM] [--payee ID] [--no-send]`: the payees' monthly statements (last
month by default), one per payee and currency with a balance or a movement, as the monthly beat does — with
their PDFs, e-mailed unless `--no-send` — and the statements of payouts whose money left without one. Running
it again issues nothing twice."""

from __future__ import annotations

import re

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from commissions.statements.issuing import (
    issue_month_statement,
    issue_payout_statement,
    month_statement_candidates,
    payouts_missing_statements,
    previous_month,
)
from commissions.statements.pdf import email_statement
from core.admin_tools import money


class Command(BaseCommand):
    help = "Issue the payees' statements of a month (default: last month) and any missing payout statements."

    def add_arguments(self, parser):
        parser.add_argument("--month", help="YYYY-MM (default: last month)")
        parser.add_argument("--payee", type=int, help="Only this payee (its id)")
        parser.add_argument("--no-send", action="store_true", help="Issue only; do not e-mail them")

    def handle(self, *args, month=None, payee=None, no_send=False, **options):
        now = timezone.now()
        month = month or previous_month(now)
        match = re.fullmatch(r"(\d{4})-(\d{2})", month)
        if not match or not 1 <= int(match[2]) <= 12:
            raise CommandError("--month must look like 2026-10")
        candidates = [c for c in month_statement_candidates(month) if payee is None or c[0] == payee]
        send = not no_send and settings.TOLLGATE_RENDER_DOCUMENTS
        issued = 0
        for done, (payee_id, currency) in enumerate(candidates, start=1):
            try:
                statement = issue_month_statement(payee_id=payee_id, currency=currency, month=month, now=now)
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
            if statement is None:
                continue
            issued += 1
            sent = " e-mailed" if send and email_statement(statement_id=statement.pk, now=now) else ""
            closing = money(statement.closing_minor, statement.currency)
            self.stdout.write(f"[{done}/{len(candidates)}] {statement.reference}  closing {closing}{sent}")
        self.stdout.write(self.style.SUCCESS(f"{issued} monthly statement(s) for {month}"))
        missing = [pk for pk in payouts_missing_statements() if payee is None or _payee_of(pk) == payee]
        for payout_id in missing:
            statement = issue_payout_statement(payout_id=payout_id, now=now)
            if statement is not None and send:
                email_statement(statement_id=statement.pk, now=now)
        if missing:
            self.stdout.write(self.style.SUCCESS(f"{len(missing)} missing payout statement(s) issued"))


def _payee_of(payout_id: int) -> int | None:
    from commissions.models import Payout

    return Payout.objects.filter(pk=payout_id).values_list("payee_id", flat=True).first()
