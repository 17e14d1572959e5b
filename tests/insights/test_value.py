"""Customer value and churn risk: a member whose AUM fell three month ends running is flagged
with that reason, one who recovered in the latest month is not; no activity in 90 days is a
reason of its own; scores order members sensibly; a refresh run again rewrites the same rows."""

import datetime as dt
from decimal import Decimal as D

import pytest

from insights.services.value import member_values_refresh
from members.models import MemberValue
from tests.insights import kpi_data as k

pytestmark = pytest.mark.django_db

AS_OF = dt.date(2026, 11, 30)
MONTH_ENDS = [dt.date(2026, 8, 31), dt.date(2026, 9, 30), dt.date(2026, 10, 31), AS_OF]


def _aum(member, *values: str) -> None:
    for as_of, aum in zip(MONTH_ENDS, values, strict=True):
        k.snapshot(member, as_of, aum, contribution=str(int(D(aum) / 100)))


@pytest.fixture
def members():
    k.ladder()
    falling = k.member(joined=dt.date(2024, 1, 1))
    _aum(falling, "400000.00", "300000.00", "200000.00", "100000.00")
    k.transaction(falling, dt.date(2026, 11, 20))
    recovered = k.member(joined=dt.date(2024, 1, 1))
    _aum(recovered, "400000.00", "300000.00", "200000.00", "250000.00")
    k.transaction(recovered, dt.date(2026, 11, 20))
    idle = k.member(joined=dt.date(2024, 1, 1))
    _aum(idle, "50000.00", "50000.00", "50000.00", "50000.00")
    k.transaction(idle, dt.date(2026, 8, 1))  # 121 days before: outside the 90 days
    rich = k.member(joined=dt.date(2024, 1, 1))
    _aum(rich, "900000.00", "950000.00", "1000000.00", "1100000.00")
    for day in (1, 10, 20, 29):
        k.transaction(rich, dt.date(2026, 11, day), amount="5000.00")
    closed = k.member(joined=dt.date(2024, 1, 1))
    k.close(closed, dt.date(2026, 6, 1))
    return {"falling": falling, "recovered": recovered, "idle": idle, "rich": rich}


def _values() -> dict[int, MemberValue]:
    return {value.member_id: value for value in MemberValue.objects.all()}


def test_aum_down_three_months_running_flags_churn_risk_and_a_recovery_does_not(members):
    result = member_values_refresh(as_of=AS_OF)
    assert result == {"as_of": AS_OF, "members": 4, "churn_risk": 2}
    values = _values()
    falling = values[members["falling"].pk]
    assert falling.churn_risk
    assert falling.churn_reasons == ["aum_down_3_months"]
    assert falling.aum_trend == D("-0.7500")  # 100000 vs 400000 three month ends earlier
    recovered = values[members["recovered"].pk]
    assert not recovered.churn_risk
    assert recovered.churn_reasons == []
    idle = values[members["idle"].pk]
    assert idle.churn_risk
    assert idle.churn_reasons == ["no_activity_90_days"]
    assert (idle.frequency, idle.recency_days) == (0, 121)
    rich = values[members["rich"].pk]
    assert not rich.churn_risk
    assert (rich.frequency, rich.monetary, rich.recency_days) == (4, D("20000.00"), 1)


def test_value_scores_order_members_sensibly(members):
    member_values_refresh(as_of=AS_OF)
    values = _values()
    score = {name: values[member.pk].score for name, member in members.items()}
    # The richest, most active member first; the idle one, lowest AUM and no activity, last.
    assert score["rich"] == max(score.values())
    assert score["idle"] == min(score.values())
    assert score["recovered"] > score["falling"]  # more AUM, better trend, same activity
    for value in values.values():
        for field in ("score", "contribution_score", "aum_score", "activity_score"):
            assert D(0) <= getattr(value, field) <= D(100)
    rich = values[members["rich"].pk]
    assert (rich.contribution_score, rich.aum_score, rich.activity_score) == (
        D("100.00"),
        D("100.00"),
        D("100.00"),
    )
    assert rich.score == D("100.00")


def test_a_refresh_run_twice_writes_the_same_rows(members):
    member_values_refresh(as_of=AS_OF)
    first = {
        pk: (v.score, v.aum_score, v.activity_score, v.churn_reasons) for pk, v in _values().items()
    }
    member_values_refresh(as_of=AS_OF, chunk_size=1)
    second = {
        pk: (v.score, v.aum_score, v.activity_score, v.churn_reasons) for pk, v in _values().items()
    }
    assert first == second
    assert len(second) == 4


def test_chunks_do_not_change_the_scores(members):
    member_values_refresh(as_of=AS_OF, chunk_size=100_000)
    whole = {pk: v.score for pk, v in _values().items()}
    MemberValue.objects.all().delete()
    member_values_refresh(as_of=AS_OF, chunk_size=1)
    assert {pk: v.score for pk, v in _values().items()} == whole
