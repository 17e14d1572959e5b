"""The transaction ingest API: valid items are stored in the inbox once, each rejected item
names its reasons while the rest of the batch goes on, and a refused batch (too large, a bad
envelope, the wrong caller) changes nothing."""

import datetime as dt
import threading

import pytest
from django.db import connection

from points.models import Transaction
from tests.factories import MemberFactory, database_state, lock_queue, table_write_locked
from tests.points.factories import tx_item

pytestmark = pytest.mark.django_db

URL = "/api/v1/ingest/transactions/"


def test_valid_batch_is_accepted_and_stored(integration_api, card_rule):
    member = MemberFactory()
    items = [tx_item(member) for _ in range(3)]
    response = integration_api.post(URL, {"transactions": items}, format="json")
    assert response.status_code == 202, response.content
    assert response.json() == {"accepted": 3, "duplicates": 0, "rejected": []}
    assert Transaction.objects.filter(status="pending", via="api").count() == 3


def test_resent_and_repeated_items_count_as_duplicates(integration_api, card_rule):
    member = MemberFactory()
    item = tx_item(member)
    response = integration_api.post(URL, {"transactions": [item, item]}, format="json")
    assert response.json()["accepted"] == 1
    assert response.json()["duplicates"] == 1
    response = integration_api.post(URL, {"transactions": [item]}, format="json")
    assert response.json() == {"accepted": 0, "duplicates": 1, "rejected": []}
    assert Transaction.objects.count() == 1


def test_each_rejected_item_names_its_reasons_and_valid_ones_go_on(integration_api, business_clock):
    member = MemberFactory()
    future = (business_clock.now + dt.timedelta(days=1)).isoformat()
    items = [
        tx_item(member),
        tx_item(member, customer_no="NOBODY"),
        tx_item(member, amount="-5"),
        tx_item(member, amount="abc"),
        tx_item(member, type="lottery"),
        tx_item(member, channel="pigeon"),
        tx_item(member, merchant_category="54A1"),
        tx_item(member, occurred_at=future),
        tx_item(member, amount="0", type="bogus"),
        "not an object",
    ]
    response = integration_api.post(URL, {"transactions": items}, format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["accepted"] == 1
    reasons = {
        row["index"]: {(e["field"], e["code"]) for e in row["errors"]} for row in body["rejected"]
    }
    assert reasons[1] == {("customer_no", "unknown_customer")}
    assert reasons[2] == {("amount", "min_value")}
    assert reasons[3] == {("amount", "invalid")}
    assert reasons[4] == {("type", "invalid_choice")}
    assert reasons[5] == {("channel", "invalid_choice")}
    assert reasons[6] == {("merchant_category", "invalid_mcc")}
    assert reasons[7] == {("occurred_at", "future_timestamp")}
    assert reasons[8] == {("amount", "min_value"), ("type", "invalid_choice")}
    assert 9 in reasons
    assert all(e["detail"] for row in body["rejected"] for e in row["errors"])
    assert list(Transaction.objects.values_list("external_id", flat=True)) == [
        items[0]["external_id"]
    ]


def test_oversized_batch_answers_413_and_stores_nothing(integration_api):
    member = MemberFactory()
    items = [tx_item(member) for _ in range(1001)]
    before = database_state()
    response = integration_api.post(URL, {"transactions": items}, format="json")
    assert response.status_code == 413
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "batch_too_large"
    assert database_state() == before  # no inbox row, no account


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b'{"transactions": [', "application/json", 400, "parse_error"),
        (b'{"transactions": [{"amount": NaN}]}', "application/json", 400, "parse_error"),
        (b"external_id=1", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        (b'{"items": []}', "application/json", 400, "validation_error"),
        (b'{"transactions": {}}', "application/json", 400, "validation_error"),
        (b'{"transactions": []}', "application/json", 400, "validation_error"),
        (b"[1, 2]", "application/json", 400, "validation_error"),
    ],
)
def test_malformed_envelope_answers_a_problem_and_stores_nothing(
    integration_api, body, content_type, status, code
):
    before = database_state()
    response = integration_api.generic("POST", URL, body, content_type=content_type)
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == code
    assert database_state() == before


def test_ingest_needs_the_integration_role(staff_client, member_client, api, card_rule):
    member = MemberFactory()
    batch = {"transactions": [tx_item(member)]}  # one the integration role would store
    marketing, member_api = staff_client("marketing"), member_client(member)
    before = database_state()
    response = api.post(URL, batch, format="json")
    assert (response.status_code, response.json()["code"]) == (401, "not_authenticated")
    for client in (marketing, member_api):
        response = client.post(URL, batch, format="json")
        assert response.status_code == 403
        assert response.json()["code"] == "permission_denied"
    assert database_state() == before  # no inbox row, no account


def test_a_trailing_newline_does_not_make_a_second_transaction(integration_api, card_rule):
    from points.models import Entry
    from points.services.consumer import transactions_process_all

    member = MemberFactory()
    for overrides in (
        {"external_id": "DUP1"},
        {"external_id": "DUP1\n"},
        {"external_id": "DUP1", "source": "core\n"},
        {"external_id": " DUP1 "},
    ):
        response = integration_api.post(
            URL, {"transactions": [tx_item(member, **overrides)]}, format="json"
        )
        assert response.status_code == 202, response.content
    transactions_process_all()
    assert Transaction.objects.count() == 1
    assert Entry.objects.filter(kind="earn").count() == 1


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"amount": "1e300"}, "amount"),
        ({"merchant_category": "5411\n5411"}, "merchant_category"),
        ({"currency": "CNYY"}, "currency"),
        ({"occurred_at": "0001-01-01T00:00:00+01:00"}, "occurred_at"),
        ({"occurred_at": "9999-12-31T23:59:59-01:00"}, "occurred_at"),
        ({"external_id": "x" * 65}, "external_id"),
    ],
)
def test_hostile_items_are_rejected_alone_and_the_rest_of_the_batch_goes_on(
    integration_api, card_rule, overrides, field
):
    import json

    member = MemberFactory()
    bad, good = tx_item(member, **overrides), tx_item(member)
    body = json.dumps({"transactions": [bad, good]})
    # A JSON number, not a string: the parser makes it a Decimal that no column can hold.
    body = body.replace('"amount": "1e300"', '"amount": 1e300')
    response = integration_api.generic("POST", URL, body, content_type="application/json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["accepted"] == 1
    assert [row["index"] for row in body["rejected"]] == [0]
    assert field in {error["field"] for error in body["rejected"][0]["errors"]}
    assert list(Transaction.objects.values_list("external_id", flat=True)) == [good["external_id"]]


@pytest.mark.django_db(transaction=True)
def test_storing_creates_the_missing_accounts_in_the_same_transaction(integration_api, card_rule):
    """The consumer then finds every account in place: it never waits on another consumer's
    uncommitted new account (it skips accounts others hold instead).

    The request runs in a thread of its own while this test holds the account table: it has
    inserted its inbox rows and waits to create the account, and this connection sees none of
    those rows yet. So they commit with the account, not before it."""
    from points.models import Account

    known, new = MemberFactory(), MemberFactory()
    Account.objects.create(member=known, balance=0)
    items = [tx_item(known), tx_item(new), tx_item(new)]
    responses: list = []

    def send():
        try:
            responses.append(integration_api.post(URL, {"transactions": items}, format="json"))
        finally:
            connection.close()

    thread = threading.Thread(target=send)
    with table_write_locked(Account) as holder:
        thread.start()
        creating, _ = lock_queue(holder=holder, waiters=1)
        committed_meanwhile = Transaction.objects.count()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert len(creating) == 1  # the request, waiting to create the account
    assert committed_meanwhile == 0
    assert Transaction.objects.count() == 3
    response = responses[0]
    assert response.json()["accepted"] == 3
    assert set(Account.objects.values_list("member_id", flat=True)) == {known.pk, new.pk}
    # The consumer its commit woke (in-process here) found both accounts and credited them.
    balances = dict(Account.objects.values_list("member_id", "balance"))
    assert balances == {known.pk: 5, new.pk: 10}


def test_uniform_and_varying_columns_are_stored_as_sent(integration_api, card_rule):
    member = MemberFactory()
    items = [
        tx_item(member, amount="20.00", channel="pos", merchant_category="5411"),
        tx_item(member, amount="45.10", channel="mobile", merchant_category=""),
    ]
    response = integration_api.post(URL, {"transactions": items}, format="json")
    assert response.json()["accepted"] == 2
    stored = {
        row.external_id: row
        for row in Transaction.objects.filter(external_id__in=[i["external_id"] for i in items])
    }
    for item in items:
        row = stored[item["external_id"]]
        assert str(row.amount) == item["amount"]
        assert (row.channel, row.merchant_category) == (item["channel"], item["merchant_category"])
        assert (row.status, row.points, row.status_reason, row.via) == ("pending", 0, "", "api")


# Text PostgreSQL cannot hold, as JSON escapes: a lone surrogate and a NUL.
UNSTORABLE = ["\\ud800", "A\\u0000"]


@pytest.mark.parametrize("text", UNSTORABLE)
@pytest.mark.parametrize("field", ["customer_no", "external_id", "source", "reverses", "currency"])
def test_text_postgresql_cannot_hold_is_one_rejected_item(integration_api, card_rule, text, field):
    import json

    member = MemberFactory()
    items = [tx_item(member) for _ in range(999)] + [tx_item(member, **{field: "PLACEHOLDER"})]
    body = json.dumps({"transactions": items}).replace('"PLACEHOLDER"', f'"{text}"')
    response = integration_api.generic("POST", URL, body, content_type="application/json")
    assert response.status_code == 202, response.content
    answer = response.json()
    assert answer["accepted"] == 999
    assert [row["index"] for row in answer["rejected"]] == [999]
    assert field in {error["field"] for error in answer["rejected"][0]["errors"]}
    assert Transaction.objects.count() == 999


def test_transactions_beyond_the_plausibility_limits_are_rejected_with_their_reason(
    integration_api, card_rule, business_clock
):
    from decimal import Decimal

    from loyalty.selectors import programme_settings_get

    programme = programme_settings_get()
    assert (programme.oldest_transaction_days, programme.largest_transaction_amount) == (
        400,
        Decimal("100000000.00"),
    )
    member = MemberFactory()
    now = business_clock.now
    items = [
        tx_item(member, occurred_at="1900-01-01T00:00:00+00:00"),
        tx_item(member, occurred_at=(now - dt.timedelta(days=401)).isoformat()),
        tx_item(member, amount="9999999999999999.99"),
        tx_item(member, amount="100000000.01"),
        tx_item(member, occurred_at=(now - dt.timedelta(days=399)).isoformat()),
        tx_item(member, amount="100000000.00"),
    ]
    answer = integration_api.post(URL, {"transactions": items}, format="json").json()
    assert answer["accepted"] == 2
    codes = {row["index"]: [e["code"] for e in row["errors"]] for row in answer["rejected"]}
    assert codes == {
        0: ["too_old"],
        1: ["too_old"],
        2: ["amount_too_large"],
        3: ["amount_too_large"],
    }


def test_the_plausibility_limits_are_the_programmes_settings(
    integration_api, card_rule, business_clock
):
    from decimal import Decimal

    from loyalty.models import ProgrammeSettings
    from loyalty.selectors import programme_settings_get

    programme_settings_get()
    ProgrammeSettings.objects.update(
        oldest_transaction_days=10, largest_transaction_amount=Decimal("500.00")
    )
    member = MemberFactory()
    old = (business_clock.now - dt.timedelta(days=11)).isoformat()
    items = [tx_item(member, occurred_at=old), tx_item(member, amount="500.01"), tx_item(member)]
    answer = integration_api.post(URL, {"transactions": items}, format="json").json()
    assert answer["accepted"] == 1
    assert [row["index"] for row in answer["rejected"]] == [0, 1]
