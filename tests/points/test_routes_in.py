"""The batch file and the Celery message: same validation, same inbox."""

import csv
import io

import pytest
from django.core.management import CommandError, call_command

from points.models import Entry, Transaction
from points.services.consumer import transactions_process_all
from points.tasks import transactions_ingest_task
from tests.factories import MemberFactory
from tests.points.factories import tx_item

pytestmark = pytest.mark.django_db


def _write_csv(path, rows):
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_import_reports_summary_and_rejects_and_is_resumable(tmp_path, card_rule):
    member = MemberFactory()
    rows = [tx_item(member) for _ in range(5)]
    rows.append(tx_item(member, customer_no="NOBODY"))
    rows.append(tx_item(member, amount="-1"))
    path = tmp_path / "daily.csv"
    _write_csv(path, rows)
    rejects = tmp_path / "rejects.csv"
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "import_transactions",
        str(path),
        "--chunk-size",
        "2",
        "--rejects",
        str(rejects),
        stdout=out,
        stderr=err,
    )
    assert "7 rows: 5 accepted, 0 already stored, 2 rejected" in out.getvalue()
    assert "line 7: customer_no: Unknown customer number." in err.getvalue()
    reasons = list(csv.DictReader(rejects.open(encoding="utf-8")))
    assert [(r["line"], r["code"]) for r in reasons] == [
        ("7", "unknown_customer"),
        ("8", "min_value"),
    ]
    assert Transaction.objects.filter(via="file").count() == 5

    # Running the same file again (e.g. after an interruption) stores nothing twice.
    out = io.StringIO()
    call_command(
        "import_transactions", str(path), "--no-progress", stdout=out, stderr=io.StringIO()
    )
    assert "7 rows: 0 accepted, 5 already stored, 2 rejected" in out.getvalue()
    transactions_process_all()
    assert Entry.objects.count() == 5


def test_import_refuses_a_file_without_required_columns(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("external_id,amount\nX1,10\n", encoding="utf-8")
    with pytest.raises(CommandError, match="missing columns"):
        call_command("import_transactions", str(path), "--no-progress")
    assert not Transaction.objects.exists()


def test_celery_message_stores_valid_items_and_reports_rejected(card_rule):
    member = MemberFactory()
    result = transactions_ingest_task.delay(
        [tx_item(member), tx_item(member, type="lottery")]
    ).get()
    assert result["accepted"] == 1
    assert result["rejected"][0]["index"] == 1
    assert result["rejected"][0]["errors"][0]["code"] == "invalid_choice"
    assert Transaction.objects.get().via == "task"


def test_celery_message_with_a_wrong_payload_stores_nothing():
    result = transactions_ingest_task.delay({"not": "a list"}).get()
    assert result["accepted"] == 0
    assert not Transaction.objects.exists()
