"""POST /api/v1/ingest/asset-snapshots/: per-item results, upsert, nothing half-written."""

import datetime as dt
from decimal import Decimal

import pytest

from members.models import AssetSnapshot
from tests.factories import AssetSnapshotFactory, MemberFactory
from tests.members.tier_helpers import members_state

pytestmark = pytest.mark.django_db
URL = "/api/v1/ingest/asset-snapshots/"


def _item(customer_no="S1", as_of="2026-09-30", **amounts):
    return {"customer_no": customer_no, "as_of": as_of, **amounts}


def _member_with_snapshots(*dates: str):
    """Member S1 with a snapshot (deposits 777.00) on each of ``dates``: what a refused item for
    one of those dates would overwrite."""
    member = MemberFactory(customer_no="S1")
    for as_of in dates:
        AssetSnapshotFactory(
            member=member, as_of=dt.date.fromisoformat(as_of), deposits=Decimal("777.00")
        )
    return member


def _snapshots() -> list[tuple]:
    return list(
        AssetSnapshot.objects.order_by("as_of").values_list(
            "member__customer_no", "as_of", "deposits", "wealth", "funds", "aum"
        )
    )


def test_valid_items_are_stored_with_derived_aum(integration_api):
    MemberFactory(customer_no="S1")
    response = integration_api.post(
        URL,
        {
            "snapshots": [
                _item(
                    deposits="1000.50",
                    wealth="2000",
                    funds=300,
                    insurance="0.5",
                    loans="99",
                    contribution="-12.30",
                )
            ]
        },
        format="json",
    )
    assert response.status_code == 202, response.content
    assert response.json() == {
        "accepted": 1,
        "duplicates": 0,
        "created": 1,
        "updated": 0,
        "rejected": [],
    }
    snapshot = AssetSnapshot.objects.get()
    assert snapshot.aum == Decimal("3301.00")
    assert snapshot.loans == Decimal("99.00")
    assert snapshot.contribution == Decimal("-12.30")


def test_each_invalid_item_is_rejected_with_its_reasons_and_the_valid_ones_stored(
    integration_api, business_clock
):
    # Rejected items 3 and 4 name dates that already hold a snapshot: it must stay as it is.
    member = _member_with_snapshots("2026-08-31", "2026-07-31")
    today = business_clock.today
    tomorrow = (today + dt.timedelta(days=1)).isoformat()
    items = [
        _item(deposits="10"),  # 0 valid
        _item(customer_no="GHOST"),  # 1 unknown member
        _item(as_of=tomorrow),  # 2 future date
        _item(as_of="2026-08-31", deposits="-5"),  # 3 negative balance
        _item(as_of="2026-07-31", wealth="1.234"),  # 4 more than two decimals
        "not an object",  # 5
        _item(as_of="not-a-date", funds="abc"),  # 6 two errors
        _item(as_of="2026-06-30", deposits="12345678901234567.00"),  # 7 too many digits
        _item(as_of=today.isoformat(), deposits="3"),  # 8 valid: today is not in the future
    ]
    before = members_state(member)
    response = integration_api.post(URL, {"snapshots": items}, format="json")
    assert response.status_code == 202
    body = response.json()
    assert (body["accepted"], body["created"], body["updated"]) == (2, 2, 0)
    rejected = {
        row["index"]: {(e["field"], e["code"]) for e in row["errors"]} for row in body["rejected"]
    }
    assert rejected == {
        1: {("customer_no", "unknown_customer")},
        2: {("as_of", "future_date")},
        3: {("deposits", "min_value")},
        4: {("wealth", "max_decimal_places")},
        5: {(None, "invalid")},
        6: {("as_of", "invalid"), ("funds", "invalid")},
        7: {("deposits", "max_digits")},
    }
    assert all(e["detail"] for row in body["rejected"] for e in row["errors"])
    # The two valid items stored; nothing else added or altered (the snapshots of July and
    # August, which items 3 and 4 named, included).
    assert _snapshots() == sorted(
        [
            ("S1", dt.date(2026, 7, 31), Decimal("777.00"), 0, 0, Decimal("777.00")),
            ("S1", dt.date(2026, 8, 31), Decimal("777.00"), 0, 0, Decimal("777.00")),
            ("S1", dt.date(2026, 9, 30), Decimal("10.00"), 0, 0, Decimal("10.00")),
            ("S1", today, Decimal("3.00"), 0, 0, Decimal("3.00")),
        ],
        key=lambda row: row[1],
    )
    after = members_state(member)
    assert after["counts"]["members.AssetSnapshot"] == before["counts"]["members.AssetSnapshot"] + 2
    for label in ("members.Member", "members.MemberTier", "members.TierHistory"):
        assert after["rows"][label] == before["rows"][label], label


def test_a_resent_snapshot_updates_rather_than_duplicates(integration_api):
    MemberFactory(customer_no="S1")
    integration_api.post(URL, {"snapshots": [_item(deposits="100")]}, format="json")
    same = integration_api.post(URL, {"snapshots": [_item(deposits="100")]}, format="json").json()
    assert (same["accepted"], same["duplicates"]) == (0, 1)
    changed = integration_api.post(
        URL, {"snapshots": [_item(deposits="250")]}, format="json"
    ).json()
    assert (changed["accepted"], changed["updated"]) == (1, 1)
    snapshot = AssetSnapshot.objects.get()
    assert snapshot.deposits == Decimal("250.00")
    assert snapshot.aum == Decimal("250.00")


def test_the_same_member_and_date_twice_in_one_batch_keeps_the_first(integration_api):
    MemberFactory(customer_no="S1")
    body = integration_api.post(
        URL, {"snapshots": [_item(deposits="1"), _item(deposits="2")]}, format="json"
    ).json()
    assert body["accepted"] == 1
    assert body["rejected"][0]["index"] == 1
    assert body["rejected"][0]["errors"][0]["code"] == "duplicate_in_batch"
    assert AssetSnapshot.objects.get().deposits == Decimal("1.00")


@pytest.mark.parametrize(
    ("payload", "content_type", "status", "code"),
    [
        ('{"snapshots": [', "application/json", 400, "parse_error"),
        (
            '{"snapshots": [{"customer_no": "S1", "as_of": "2026-09-30", "deposits": NaN}]}',
            "application/json",
            400,
            "parse_error",
        ),
        ("customer_no=S1", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        ("<snapshots/>", "application/xml", 415, "unsupported_media_type"),
        ('{"snapshot": []}', "application/json", 400, "validation_error"),
        ('{"snapshots": {"customer_no": "S1"}}', "application/json", 400, "validation_error"),
        ('{"snapshots": []}', "application/json", 400, "validation_error"),
        ("[1, 2]", "application/json", 400, "validation_error"),
    ],
)
def test_a_malformed_request_answers_a_problem_and_stores_nothing(
    integration_api, payload, content_type, status, code
):
    member = _member_with_snapshots("2026-09-30")  # the date the payloads name
    before = members_state(member)
    response = integration_api.post(URL, payload, content_type=content_type)
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    assert response.json()["code"] == code
    assert members_state(member) == before
    assert _snapshots() == [
        ("S1", dt.date(2026, 9, 30), Decimal("777.00"), 0, 0, Decimal("777.00"))
    ]


def test_an_oversized_batch_answers_413_and_stores_nothing(integration_api):
    member = _member_with_snapshots("2020-01-01")
    items = [
        _item(as_of=(dt.date(2020, 1, 1) + dt.timedelta(days=i)).isoformat()) for i in range(1001)
    ]
    before = members_state(member)
    response = integration_api.post(URL, {"snapshots": items}, format="json")
    assert response.status_code == 413
    assert response.json()["code"] == "batch_too_large"
    assert members_state(member) == before
    assert _snapshots() == [("S1", dt.date(2020, 1, 1), Decimal("777.00"), 0, 0, Decimal("777.00"))]


def test_a_full_batch_of_1000_is_accepted(integration_api):
    MemberFactory(customer_no="S1")
    items = [
        _item(as_of=(dt.date(2020, 1, 1) + dt.timedelta(days=i)).isoformat()) for i in range(1000)
    ]
    body = integration_api.post(URL, {"snapshots": items}, format="json").json()
    assert body["accepted"] == 1000
    assert AssetSnapshot.objects.count() == 1000


def test_a_body_over_the_upload_limit_answers_413(integration_api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    member = _member_with_snapshots("2026-09-30")
    items = [_item(as_of="2026-09-30", deposits="1")] * 50
    before = members_state(member)
    response = integration_api.post(URL, {"snapshots": items}, format="json")
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert members_state(member) == before


@pytest.mark.parametrize("text", ["\\ud800", "S\\u0000"])
def test_a_customer_number_postgresql_cannot_hold_is_one_rejected_item(integration_api, text):
    import json

    member = MemberFactory(customer_no="S1")
    items = [_item(as_of=f"2026-09-{day:02d}") for day in range(1, 30)] + [_item("PLACEHOLDER")]
    body = json.dumps({"snapshots": items}).replace('"PLACEHOLDER"', f'"{text}"')
    before = members_state(member)
    response = integration_api.generic("POST", URL, body, content_type="application/json")
    assert response.status_code == 202, response.content
    answer = response.json()
    assert answer["accepted"] == 29
    assert [row["index"] for row in answer["rejected"]] == [29]
    assert [as_of.day for _, as_of, *_ in _snapshots()] == list(range(1, 30))
    after = members_state(member)
    assert after["rows"]["members.Member"] == before["rows"]["members.Member"]
    assert after["counts"]["members.AssetSnapshot"] == 29
