"""`manage.py issue_commission_invoices [--month YYYY-MM]`: the platform's commission invoices of a month (last
month by default), one per payee and currency, as the monthly beat task does — rendered and e-mailed to the
payees unless `--no-send`. Running it again issues nothing twice."""

from __future__ import annotations

import re

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from invoicing.services.commission import issue_monthly_commission_invoices, previous_month
from invoicing.services.delivery import email_document
from ledger.money import format_money


class Command(BaseCommand):
    help = "Issue the commission invoices of a month (default: last month)."

    def add_arguments(self, parser):
        parser.add_argument("--month", help="YYYY-MM (default: last month)")
        parser.add_argument("--no-send", action="store_true", help="Issue only; do not render and e-mail them")

    def handle(self, *args, month=None, no_send=False, **options):
        now = timezone.now()
        if month:
            match = re.fullmatch(r"(\d{4})-(\d{2})", month)
            if not match or not 1 <= int(match[2]) <= 12:
                raise CommandError("--month must look like 2026-10")
            year, number = int(match[1]), int(match[2])
        else:
            year, number = previous_month(timezone.localdate(now))

        def progress(done, total):
            self.stdout.write(f"[{done}/{total}] payees")

        documents = issue_monthly_commission_invoices(year=year, month=number, now=now, progress=progress)
        for document in documents:
            sent = "" if no_send else (" e-mailed" if email_document(invoice_id=document.pk, now=now) else "")
            total = format_money(document.gross_minor, document.currency)
            self.stdout.write(f"{document.number}  {document.payee.legal_name}  {total}{sent}")
        self.stdout.write(self.style.SUCCESS(f"{len(documents)} commission invoice(s) for {year}-{number:02d}"))
