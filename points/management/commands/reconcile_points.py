from django.core.management.base import BaseCommand, CommandError

from points.services.reconciliation import points_reconcile


class Command(BaseCommand):
    help = (
        "Check that every points account's balance equals the sum of its entries and agrees with "
        "its lots. Prints the first discrepancies and exits non-zero if there is any."
    )

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=20, help="Discrepancies to print.")

    def handle(self, *args, limit: int, **options):
        checked, discrepancies = points_reconcile(limit=limit)
        if discrepancies:
            for discrepancy in discrepancies:
                self.stderr.write(discrepancy.describe())
            raise CommandError(
                f"accounts disagree with their ledger: {len(discrepancies)} shown, "
                f"{checked} checked",
                returncode=1,
            )
        self.stdout.write(self.style.SUCCESS(f"{checked} accounts checked: all consistent."))
