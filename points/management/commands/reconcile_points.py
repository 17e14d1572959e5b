from django.core.management.base import BaseCommand, CommandError

from points.services.reconciliation import ledger_reconcile


class Command(BaseCommand):
    help = (
        "Check that every points account's balance equals the sum of its entries and agrees with "
        "its lots, and that every debit's lot consumptions add up to it. Prints the first "
        "discrepancies and exits non-zero if there is any."
    )

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=20, help="Discrepancies to print.")

    def handle(self, *args, limit: int, **options):
        report = ledger_reconcile(limit=limit)
        for line in report.lines():
            self.stderr.write(line)
        if not report.consistent:
            raise CommandError(
                f"the ledger disagrees with itself: {len(report.account_discrepancies)} accounts "
                f"of {report.accounts} and {len(report.debit_discrepancies)} debits of "
                f"{report.debits} shown",
                returncode=1,
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"{report.debits} debits and {report.accounts} accounts checked: all consistent."
            )
        )
