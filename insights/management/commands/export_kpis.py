import datetime as dt

from django.core.management.base import BaseCommand, CommandError

from insights.services.kpis import kpis_csv_write, kpis_for_period


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"not a date (YYYY-MM-DD): {value!r}") from None


class Command(BaseCommand):
    help = (
        "Write the KPIs of a period of business days as CSV to stdout: a header, one row for "
        "the programme (tier empty) and one per tier, the same figures as GET /api/v1/kpis/."
    )

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="day_from", required=True, help="YYYY-MM-DD")
        parser.add_argument("--to", dest="day_to", required=True, help="YYYY-MM-DD")

    def handle(self, *args, day_from: str, day_to: str, **options):
        start, end = _date(day_from), _date(day_to)
        if start > end:
            raise CommandError("--from is after --to")
        figures = kpis_for_period(day_from=start, day_to=end)
        kpis_csv_write(figures=figures, day_from=start, day_to=end, out=self.stdout)
