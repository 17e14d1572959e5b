"""Transactions imported in the console go through the same validation and inbox as the ingest
API: the preview stores nothing and shows each bad row's reasons; a file with a bad row stores
nothing; a good file lands in the inbox (received via the batch file) and is credited by the
consumer the commit enqueues; a transaction already in the inbox is skipped, per row."""

import datetime as dt

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from loyalty import roles
from points.models import Account, Transaction
from tests.factories import MemberFactory, UserFactory, database_state
from tests.points.conftest import ingest
from tests.points.factories import tx_item

pytestmark = pytest.mark.django_db

IMPORT = "/admin/points/transaction/import/"
PROCESS = "/admin/points/transaction/process_import/"
IGNORE = ("django_session", "django_admin_log", "axes_accesslog", "axes_accessattempt")
HEADER = "customer_no,external_id,source,type,amount,currency,occurred_at,channel,merchant_category"


def _client(*role_names: str) -> Client:
    client = Client()
    client.user = UserFactory(roles=list(role_names))  # type: ignore[attr-defined]
    client.force_login(client.user)  # type: ignore[attr-defined]
    return client


def _line(customer_no: str, external_id: str, amount: str = "100.00", **extra) -> str:
    occurred = extra.get("occurred_at", (timezone.now() - dt.timedelta(hours=1)).isoformat())
    return (
        f"{customer_no},{external_id},core,{extra.get('type', 'card_spend')},{amount},CNY,"
        f"{occurred},pos,5411"
    )


def _preview(client: Client, lines: list[str]):
    page = client.get(IMPORT)
    formats = {label: value for value, label in page.context["form"].fields["format"].choices}
    csv_format = next(value for label, value in formats.items() if str(label).lower() == "csv")
    content = "\n".join([HEADER, *lines]).encode()
    return client.post(
        IMPORT,
        {
            "format": csv_format,
            "import_file": SimpleUploadedFile("tx.csv", content, content_type="text/csv"),
        },
    )


def _confirm(client: Client, preview):
    form = preview.context["confirm_form"]
    return client.post(PROCESS, dict(form.initial), follow=True)


def test_a_bad_row_is_shown_with_its_reasons_and_nothing_is_stored(card_rule):
    member = MemberFactory(customer_no="C30001")
    client = _client(roles.PROGRAMME_ADMIN)
    before = database_state(ignore=IGNORE)
    preview = _preview(
        client,
        [
            _line("C30001", "IMP-1"),
            _line("NOBODY", "IMP-2"),
            _line("C30001", "IMP-3", amount="-5"),
        ],
    )
    assert preview.status_code == 200
    result = preview.context["result"]
    assert result.has_validation_errors()
    invalid = {row.number: row.error_dict for row in result.invalid_rows}
    assert set(invalid) == {2, 3}
    assert invalid[2]["customer_no"] == ["Unknown customer number."]
    assert "amount" in invalid[3]
    assert "confirm_form" not in preview.context  # nothing to confirm
    text = preview.content.decode()
    assert "Unknown customer number." in text
    assert database_state(ignore=IGNORE) == before
    assert member.points_transactions.count() == 0


def test_a_good_file_lands_in_the_inbox_like_the_api_and_is_processed(
    card_rule, django_capture_on_commit_callbacks
):
    member = MemberFactory(customer_no="C30002")
    ingest([tx_item(member, external_id="ALREADY-1")])  # through the API's path before
    client = _client(roles.PROGRAMME_ADMIN)
    before = database_state(ignore=IGNORE)
    preview = _preview(
        client,
        [
            _line("C30002", "IMP-10", amount="200.00"),
            _line("C30002", "IMP-11", amount="40.00"),
            _line("C30002", "ALREADY-1"),
            _line("C30002", "IMP-10", amount="200.00"),
        ],
    )
    result = preview.context["result"]
    assert not result.has_validation_errors()
    assert not result.has_errors()
    assert [row.import_type for row in result.rows] == ["new", "new", "skip", "skip"]
    text = preview.content.decode()
    assert "Already in the inbox: not stored again." in text
    assert "Repeated in this file: stored once." in text
    assert database_state(ignore=IGNORE) == before  # the preview stores nothing

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = _confirm(client, preview)
    assert response.status_code == 200
    assert callbacks  # the consumer is enqueued after the commit, as for the API
    rows = {row.external_id: row for row in Transaction.objects.filter(member=member)}
    assert set(rows) == {"ALREADY-1", "IMP-10", "IMP-11"}
    assert rows["IMP-10"].via == Transaction.Via.FILE
    # Processed by the consumer (eager Celery in tests): CNY 200 and 40 at 1 point per CNY 20.
    assert (rows["IMP-10"].status, rows["IMP-10"].points) == ("processed", 10)
    assert (rows["IMP-11"].status, rows["IMP-11"].points) == ("processed", 2)
    assert Account.objects.get(member=member).balance == 5 + 10 + 2


def test_importing_needs_the_permission_to_add_transactions():
    viewer = _client(roles.OPERATIONS)  # may see the inbox, not feed it
    assert viewer.get(IMPORT).status_code == 403
    assert viewer.post(PROCESS, {}).status_code == 403
    listing = viewer.get("/admin/points/transaction/")
    assert listing.status_code == 200
    assert b"/admin/points/transaction/import/" not in listing.content


def test_inbox_reasons_and_ledger_descriptions_are_shown_in_the_readers_language(card_rule):
    """Stored as codes (an inbox reason) or as written (a description), they are shown through
    translated labels and the names of the reader's language."""
    from django.contrib.admin.sites import site
    from django.utils import translation

    from points.models import Entry

    card_rule.name_zh_hans = "刷卡消费"
    card_rule.save()
    member = MemberFactory()
    ingest([tx_item(member, external_id="LABEL-1"), tx_item(member, external_id="LABEL-2")])
    Transaction.objects.filter(external_id="LABEL-2").update(status_reason="no_rule")
    inbox = site._registry[Transaction]
    row = Transaction.objects.get(external_id="LABEL-2")
    assert inbox.reason(row) == "No earning rule matches"
    assert inbox.reason(Transaction(status_reason="KeyError: 'x'")) == "KeyError: 'x'"
    ledger = site._registry[Entry]
    entry = Entry.objects.select_related("earning_rule").filter(kind="earn").first()
    with translation.override("zh-hans"):
        assert ledger.entry_text(entry) == "刷卡消费"
    with translation.override("en"):
        assert ledger.entry_text(entry) == card_rule.name_en


def test_a_row_invalid_by_the_confirmation_stores_nothing_and_says_so(card_rule):
    from loyalty.models import ProgrammeSettings
    from loyalty.selectors import programme_settings_get

    MemberFactory(customer_no="C30009")
    client = _client(roles.PROGRAMME_ADMIN)
    preview = _preview(client, [_line("C30009", "LATE-1"), _line("C30009", "LATE-2", "900.00")])
    assert "confirm_form" in preview.context
    programme_settings_get()
    ProgrammeSettings.objects.update(largest_transaction_amount="500.00")  # since the preview
    before = database_state(ignore=IGNORE)
    response = _confirm(client, preview)
    messages = [str(message) for message in response.context["messages"]]
    assert messages == [
        "Nothing was imported: the file no longer passes its checks. Import it again."
    ]
    assert database_state(ignore=IGNORE) == before


def test_retrying_inbox_rows_asks_for_confirmation_first(card_rule):
    member = MemberFactory(customer_no="C30020")
    ingest([tx_item(member, external_id="RETRY-1"), tx_item(member, external_id="RETRY-2")])
    Transaction.objects.filter(external_id="RETRY-1").update(status="failed", status_reason="boom")
    ids = [str(pk) for pk in Transaction.objects.order_by("pk").values_list("pk", flat=True)]
    client = _client(roles.PROGRAMME_ADMIN)
    selection = {"action": "retry", "_selected_action": ids}
    before = database_state(ignore=IGNORE)
    page = client.post("/admin/points/transaction/", selection)
    assert page.status_code == 200
    text = page.content.decode()
    assert "core:RETRY-1 · C30020 · Failed · boom" in text
    assert "1 failed, skipped or waiting rows go back to pending" in text
    assert "1 processed rows are left as they are." in text
    assert database_state(ignore=IGNORE) == before  # the question alone changes nothing
    response = client.post(
        "/admin/points/transaction/", {**selection, "confirm": "yes"}, follow=True
    )
    assert "1 transactions queued again." in [str(m) for m in response.context["messages"]]
    assert Transaction.objects.get(external_id="RETRY-1").status in ("pending", "processed")
