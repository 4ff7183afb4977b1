from django.core.management.base import BaseCommand, CommandError

from ledger.selectors import check_ledger


class Command(BaseCommand):
    help = (
        "Prove the ledger: every transaction balances, every account's running totals equal its "
        "entries, and all accounts net to zero per currency. Exits non-zero on any problem."
    )

    def handle(self, *args, **options):
        report = check_ledger(progress=lambda message: self.stdout.write(f"  … {message}"))
        self.stdout.write(f"{report.transactions} transactions, {report.entries} entries, {report.accounts} accounts")
        problems = []
        if report.unbalanced_transactions:
            problems.append(f"unbalanced transactions: {', '.join(report.unbalanced_transactions[:20])}")
        if report.short_transactions:
            problems.append(f"transactions with fewer than 2 entries: {', '.join(report.short_transactions[:20])}")
        if report.drifted_accounts:
            problems.append(f"running totals differ from entries: {', '.join(report.drifted_accounts[:20])}")
        if report.currencies_not_netting:
            problems.append(f"accounts do not net to zero: {report.currencies_not_netting}")
        if problems:
            for problem in problems:
                self.stderr.write(self.style.ERROR(problem))
            raise CommandError("ledger check FAILED")
        self.stdout.write(self.style.SUCCESS("ledger check passed: balanced, totals match, nets to zero"))
