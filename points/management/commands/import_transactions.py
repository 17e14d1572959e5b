import csv
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from points.models import Transaction
from points.services.ingest import transactions_store
from points.validation import transaction_items_validate

COLUMNS = ("customer_no", *Transaction.DELIVERED_FIELDS)
REQUIRED = {"external_id", "customer_no", "type", "amount", "occurred_at", "channel"}


class Command(BaseCommand):
    help = (
        "Import the bank's daily transaction file (CSV with a header row: "
        + ", ".join(COLUMNS)
        + ") into the points inbox. Each chunk commits on its own and a transaction already "
        "stored is skipped, so an interrupted import is resumed by running it again."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--chunk-size", type=int, default=1000)
        parser.add_argument(
            "--rejects", type=Path, help="Write rejected rows with their reasons to this CSV."
        )
        parser.add_argument("--no-progress", action="store_true", help="Hide the progress bar.")

    def handle(self, *args, file: Path, chunk_size: int, rejects: Path | None, **options):
        if not file.is_file():
            raise CommandError(f"{file} is not a file")
        if not 0 < chunk_size <= 1000:
            raise CommandError("--chunk-size must be between 1 and 1000")
        with file.open(encoding="utf-8-sig", newline="") as handle:
            total = max(0, sum(1 for _ in handle) - 1)
        totals = {"rows": 0, "accepted": 0, "duplicates": 0, "rejected": 0}
        reject_rows: list[dict] = []
        with file.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            missing = REQUIRED - set(reader.fieldnames or [])
            if missing:
                raise CommandError(f"missing columns: {', '.join(sorted(missing))}")
            bar = tqdm(
                total=total,
                unit="tx",
                disable=options["no_progress"],
                file=self.stderr,
                dynamic_ncols=True,
            )
            chunk: list[tuple[int, dict]] = []
            for line, row in enumerate(reader, start=2):
                item = {key: value for key, value in row.items() if key in COLUMNS and value != ""}
                chunk.append((line, item))
                if len(chunk) == chunk_size:
                    self._store(chunk, totals, reject_rows)
                    bar.update(len(chunk))
                    chunk = []
            if chunk:
                self._store(chunk, totals, reject_rows)
                bar.update(len(chunk))
            bar.close()
        if rejects and reject_rows:
            with rejects.open("w", encoding="utf-8", newline="") as out:
                writer = csv.DictWriter(out, fieldnames=["line", "field", "code", "detail"])
                writer.writeheader()
                writer.writerows(reject_rows)
        for row in reject_rows[:10]:
            self.stderr.write(f"line {row['line']}: {row['field'] or '-'}: {row['detail']}")
        self.stdout.write(
            "{rows} rows: {accepted} accepted, {duplicates} already stored, "
            "{rejected} rejected".format(**totals)
        )

    def _store(self, chunk: list[tuple[int, dict]], totals: dict, reject_rows: list[dict]) -> None:
        valid, rejected = transaction_items_validate([item for _, item in chunk])
        counts = transactions_store(
            transactions=[item for _, item in valid], via=Transaction.Via.FILE
        )
        totals["rows"] += len(chunk)
        totals["accepted"] += counts["accepted"]
        totals["duplicates"] += counts["duplicates"]
        totals["rejected"] += len(rejected)
        for rejection in rejected:
            line = chunk[rejection["index"]][0]
            for error in rejection["errors"]:
                reject_rows.append({"line": line, **error})
