"""Segments on PostgreSQL: each rule key selects exactly the expected members, a bad rule is
refused naming its bad part with nothing written, the preview writes nothing, the refresh
makes the stored membership exactly the rule's members, and the members list filters by it."""

import datetime as dt
import itertools
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from loyalty.models import AuditLog
from loyalty.timeutils import add_months, business_today
from members.models import Member, MemberTier, MemberValue, Segment, SegmentMember
from members.segments import segment_rule_clean
from members.services.segments import (
    segment_create,
    segment_preview,
    segment_refresh,
    segment_update,
    segments_refresh_all,
)
from points.models import Transaction
from tests.factories import AssetSnapshotFactory, MemberFactory, database_state
from tests.members.tier_helpers import ladder

pytestmark = pytest.mark.django_db

_ids = itertools.count(1)


def _selected(rule: dict) -> set[str]:
    """Customer numbers of the members a refresh of ``rule`` stores."""
    segment = segment_create(actor=None, name_en=f"s{next(_ids)}", rule=rule)
    stored = SegmentMember.objects.filter(segment=segment).values_list("member_id", flat=True)
    numbers = set(Member.objects.filter(pk__in=stored).values_list("customer_no", flat=True))
    assert segment.member_count == len(numbers)
    assert segment_preview(rule=rule)["member_count"] == len(numbers)
    return numbers


def _member(no: str, **fields):
    return MemberFactory(customer_no=no, **fields)


def _spent(member: Member, *, days_ago: int) -> None:
    Transaction.objects.create(
        source="core",
        external_id=f"T{next(_ids)}",
        member=member,
        type="card_spend",
        amount=Decimal("10.00"),
        occurred_at=timezone.now() - dt.timedelta(days=days_ago),
        channel="pos",
        via="api",
    )


def _value(member: Member, score: str, reasons: tuple[str, ...] = ()) -> None:
    MemberValue.objects.create(
        member=member,
        as_of=business_today(),
        score=Decimal(score),
        contribution_score=0,
        aum_score=0,
        activity_score=0,
        churn_risk=bool(reasons),
        churn_reasons=list(reasons),
    )


def test_tiers_select_the_current_tier_and_the_lowest_for_members_without_one():
    tiers = ladder()
    gold = _member("GOLD1")
    MemberTier.objects.create(member=gold, tier=tiers["GOLD"])
    _member("NONE1")  # no tier state: STANDARD, the lowest active tier
    plat = _member("PLAT1")
    MemberTier.objects.create(member=plat, tier=tiers["PLATINUM"])
    assert _selected({"tiers": ["GOLD"]}) == {"GOLD1"}
    assert _selected({"tiers": ["STANDARD", "PLATINUM"]}) == {"NONE1", "PLAT1"}


def test_money_ranges_and_holdings_read_the_latest_snapshot_only():
    rich = _member("RICH")
    AssetSnapshotFactory(member=rich, as_of=dt.date(2026, 9, 30), deposits=Decimal("10.00"))
    AssetSnapshotFactory(
        member=rich,
        as_of=dt.date(2026, 10, 31),
        deposits=Decimal("600000.00"),
        funds=Decimal("1.00"),
        contribution=Decimal("9000.00"),
    )
    poorer = _member("POOR")  # rich once, not any more
    AssetSnapshotFactory(member=poorer, as_of=dt.date(2026, 9, 30), deposits=Decimal("900000"))
    AssetSnapshotFactory(member=poorer, as_of=dt.date(2026, 10, 31), deposits=Decimal("5000"))
    _member("NOSNAP")  # no snapshot: matches no money condition
    edge = _member("EDGE")
    AssetSnapshotFactory(member=edge, deposits=Decimal("100000.00"), insurance=Decimal("2"))

    assert _selected({"aum_min": "100000.00"}) == {"RICH", "EDGE"}
    assert _selected({"aum_min": "100000.00", "aum_max": "100002.00"}) == {"EDGE"}
    assert _selected({"aum_max": "5000"}) == {"POOR"}
    assert _selected({"contribution_min": "5000"}) == {"RICH"}
    assert _selected({"holds": ["funds"]}) == {"RICH"}
    assert _selected({"holds": ["funds", "insurance"]}) == {"RICH", "EDGE"}
    assert _selected({"holds": ["deposits"]}) == {"RICH", "POOR", "EDGE"}


def test_age_bounds_are_whole_years_on_the_business_day():
    today = business_today()
    _member("A30", birth_date=add_months(today, -12 * 30))  # 30 today
    _member("A29", birth_date=add_months(today, -12 * 30) + dt.timedelta(days=1))  # 29
    _member("A40", birth_date=add_months(today, -12 * 41) + dt.timedelta(days=1))  # 40
    _member("ANON", birth_date=None)
    assert _selected({"age_min": 30}) == {"A30", "A40"}
    assert _selected({"age_max": 29}) == {"A29"}
    assert _selected({"age_min": 30, "age_max": 40}) == {"A30", "A40"}
    assert _selected({"age_min": 30, "age_max": 39}) == {"A30"}


def test_profile_lists_match_any_of_their_values_and_keys_all_hold():
    _member(
        "M1", gender="male", city="Shanghai", branch_code="SH1", credit_grade="AA", risk_level="R3"
    )
    _member(
        "F1", gender="female", city="Beijing", branch_code="BJ1", credit_grade="A", risk_level="R5"
    )
    _member(
        "F2",
        gender="female",
        city="Shanghai",
        branch_code="SH2",
        credit_grade="AA",
        risk_level="R1",
    )
    assert _selected({"genders": ["female"]}) == {"F1", "F2"}
    assert _selected({"cities": ["Beijing", "Shenzhen"]}) == {"F1"}
    assert _selected({"branch_codes": ["SH1", "SH2"]}) == {"M1", "F2"}
    assert _selected({"credit_grades": ["AA"]}) == {"M1", "F2"}
    assert _selected({"risk_levels": ["R5", "R1"]}) == {"F1", "F2"}
    assert _selected({"genders": ["female"], "cities": ["Shanghai"]}) == {"F2"}
    assert _selected({}) == {"M1", "F1", "F2"}


def test_inactive_days_count_transactions_and_how_long_one_has_been_a_member():
    recent = _member("RECENT")
    _spent(recent, days_ago=10)
    lapsed = _member("LAPSED")
    _spent(lapsed, days_ago=120)
    _member("NEVER")  # a member since 2024, no transaction at all
    _member("NEWBIE", joined_at=business_today() - dt.timedelta(days=5))
    assert _selected({"inactive_days_min": 90}) == {"LAPSED", "NEVER"}
    assert _selected({"inactive_days_min": 5}) == {"RECENT", "LAPSED", "NEVER", "NEWBIE"}
    assert _selected({"inactive_days_min": 6}) == {"RECENT", "LAPSED", "NEVER"}


def test_value_score_and_churn_risk_read_the_customer_value():
    _value(_member("HIGH"), "80.00")
    _value(_member("LOW"), "20.00", ("no_activity_90_days",))
    _member("UNSCORED")
    assert _selected({"value_score_min": "50"}) == {"HIGH"}
    assert _selected({"churn_risk": True}) == {"LOW"}
    assert _selected({"churn_risk": False}) == {"HIGH", "UNSCORED"}


def test_only_active_members_are_ever_selected():
    _member("ACTIVE")
    _member("FROZEN", status=Member.Status.FROZEN)
    _member("CLOSED", status=Member.Status.CLOSED)
    assert _selected({}) == {"ACTIVE"}


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        ({"colour": ["red"]}, "rule.colour"),
        ({"age_min": "thirty"}, "rule.age_min"),
        ({"age_min": 200}, "rule.age_min"),
        ({"age_min": 50, "age_max": 40}, "rule.age_min"),
        ({"aum_min": "100", "aum_max": "10"}, "rule.aum_min"),
        ({"aum_min": "-1"}, "rule.aum_min"),
        ({"aum_min": "1e3"}, "rule.aum_min"),
        ({"tiers": ["NOPE"]}, "rule.tiers"),
        ({"tiers": []}, "rule.tiers"),
        ({"tiers": "GOLD"}, "rule.tiers"),
        ({"genders": ["robot"]}, "rule.genders"),
        ({"holds": ["bitcoin"]}, "rule.holds"),
        ({"churn_risk": "yes"}, "rule.churn_risk"),
        ({"value_score_min": "101"}, "rule.value_score_min"),
        ({"inactive_days_min": 0}, "rule.inactive_days_min"),
    ],
)
def test_a_bad_rule_is_refused_naming_its_bad_part(rule, field):
    ladder()
    with pytest.raises(ValidationError) as refused:
        segment_rule_clean(rule)
    assert field in refused.value.message_dict


def test_a_rule_that_is_not_an_object_is_refused():
    with pytest.raises(ValidationError) as refused:
        segment_rule_clean(["tiers"])
    assert "rule" in refused.value.message_dict


def test_the_stored_rule_is_the_grammars_rendering():
    ladder()
    rule = segment_rule_clean({"aum_min": 100, "tiers": ["GOLD", "GOLD"], "churn_risk": False})
    assert rule == {"tiers": ["GOLD"], "aum_min": "100.00", "churn_risk": False}


def test_the_preview_counts_and_samples_without_writing():
    tiers = ladder()
    for i in range(12):
        member = _member(f"P{i:02d}", city="Hangzhou")
        if i % 2:
            MemberTier.objects.create(member=member, tier=tiers["GOLD"])
    _member("ELSEWHERE", city="Suzhou")
    before = database_state()
    preview = segment_preview(rule={"cities": ["Hangzhou"]})
    assert database_state() == before
    assert preview["member_count"] == 12
    assert [row["customer_no"] for row in preview["sample"]] == [f"P{i:02d}" for i in range(10)]
    assert preview["sample"][0] == {
        "customer_no": "P00",
        "tier": "STANDARD",
        "city": "Hangzhou",
        "branch_code": "SH001",
    }
    assert preview["sample"][1]["tier"] == "GOLD"


def test_a_refresh_makes_the_stored_membership_exactly_the_rules_members():
    stay, leave = _member("STAY", city="Xian"), _member("LEAVE", city="Xian")
    segment = segment_create(actor=None, name_en="Xian", rule={"cities": ["Xian"]})
    assert segment.member_count == 2
    Member.objects.filter(pk=leave.pk).update(city="Chengdu")
    join = _member("JOIN", city="Xian")
    assert segment_refresh(segment=segment) == {"members": 2, "joined": 1, "left": 1}
    stored = set(SegmentMember.objects.filter(segment=segment).values_list("member_id", flat=True))
    assert stored == {stay.pk, join.pk}
    segment.refresh_from_db()
    assert (segment.member_count, segment.refreshed_at is not None) == (2, True)
    # Nothing changed: a second refresh moves nobody.
    assert segment_refresh(segment=segment) == {"members": 2, "joined": 0, "left": 0}
    assert segments_refresh_all() == {"segments": 1, "members": 2}


def test_a_changed_rule_is_counted_at_once_and_audited():
    _member("X1", city="Xian")
    _member("C1", city="Chengdu")
    segment = segment_create(actor=None, name_en="West", rule={"cities": ["Xian"]})
    segment = segment_update(
        segment=segment, actor=None, changes={"rule": {"cities": ["Xian", "Chengdu"]}}
    )
    assert segment.member_count == 2
    actions = list(AuditLog.objects.order_by("id").values_list("action", flat=True))
    assert actions == ["segment.create", "segment.update"]
    # An unchanged save writes no audit row and no refresh.
    refreshed = segment.refreshed_at
    segment_update(segment=segment, actor=None, changes={"name_en": "West"})
    segment.refresh_from_db()
    assert AuditLog.objects.count() == 2
    assert segment.refreshed_at == refreshed


def test_a_bad_rule_on_create_or_change_writes_nothing():
    segment = segment_create(actor=None, name_en="All", rule={})
    before = database_state()
    with pytest.raises(ValidationError):
        segment_create(actor=None, name_en="Bad", rule={"age_min": -1})
    with pytest.raises(ValidationError):
        segment_update(segment=segment, actor=None, changes={"rule": {"colour": 1}})
    assert database_state() == before
    assert Segment.objects.count() == 1


def test_the_nightly_refresh_is_on_the_beat_schedule_and_refreshes_every_segment():
    from django_celery_beat.models import PeriodicTask

    from members.schedules import SEGMENTS_REFRESH_SCHEDULE_NAME
    from members.tasks import segments_refresh_task

    entry = PeriodicTask.objects.get(name=SEGMENTS_REFRESH_SCHEDULE_NAME)
    assert (entry.task, entry.crontab.hour, entry.crontab.minute) == (
        "members.segments_refresh",
        "1",
        "30",
    )
    segment = segment_create(actor=None, name_en="Everyone", rule={})
    MemberFactory.create_batch(3)
    assert segments_refresh_task.apply().get() == {"segments": 1, "members": 3}
    segment.refresh_from_db()
    assert segment.member_count == 3
