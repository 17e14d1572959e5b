from django.core.management.base import BaseCommand, CommandError

from points.services.reconciliation import consumptions_reconcile, points_reconcile


class Command(BaseCommand):
    help = (
        "Check that every points account's balance equals the sum of its entries and agrees with "
        "its lots, and that every debit's lot consumptions add up to it. Prints the first "
        "discrepancies and exits non-zero if there is any."
    )

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=20, help="Discrepancies to print.")

    def handle(self, *args, limit: int, **options):
        checked, accounts = points_reconcile(limit=limit)
        debits, consumptions = consumptions_reconcile(limit=limit)
        for line in [item.describe() for item in accounts] + [
            item.describe() for item in consumptions
        ]:
            self.stderr.write(line)
        if accounts or consumptions:
            raise CommandError(
                f"the ledger disagrees with itself: {len(accounts)} accounts of {checked} and "
                f"{len(consumptions)} debits of {debits} shown",
                returncode=1,
            )
        self.stdout.write(
            self.style.SUCCESS(f"{debits} debits and {checked} accounts checked: all consistent.")
        )
