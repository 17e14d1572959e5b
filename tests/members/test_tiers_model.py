"""Evaluation runs against a plain-Python model of the rules, on random asset histories."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from members.models import MemberTier, Tier
from tests.factories import MemberFactory
from tests.members.tier_helpers import AS_OF, LADDER, evaluate, ladder, snapshots, tier_of

pytestmark = pytest.mark.django_db

MONTHS = [
    dt.date(2026, 6, 30),
    dt.date(2026, 7, 31),
    dt.date(2026, 8, 31),
    dt.date(2026, 9, 30),
    dt.date(2026, 10, 31),
]
AUMS = ["0", "99999.99", "100000", "499999.99", "500000", "6000000", "12000000"]
CONTRIBUTIONS = ["0", "700", "3400"]  # 3 x 700 = 2,100 over a full window: Gold


def _model(history, grace, to_qualified):
    """The rules in plain Python: tier code and failing count after each month's evaluation."""
    ranks = [code for code, *_ in LADDER]
    thresholds = {code: (aum, con) for code, _rank, aum, con, _mult in LADDER}
    tier, failing, results = "STANDARD", 0, []
    for index in range(len(MONTHS)):
        window = [month for month in history[max(0, index - 2) : index + 1] if month is not None]
        qualified = "STANDARD"
        if window:
            total_aum = sum(Decimal(aum) for aum, _ in window)
            total_contribution = sum(Decimal(con) for _, con in window)
            for code in ranks[1:]:
                min_aum, min_con = thresholds[code]
                if total_aum >= Decimal(min_aum) * len(window) or total_contribution >= Decimal(
                    min_con
                ):
                    qualified = code
        if ranks.index(qualified) > ranks.index(tier):
            tier, failing = qualified, 0
        elif qualified == tier:
            failing = 0
        elif failing + 1 >= grace[tier]:
            tier = qualified if to_qualified[tier] else ranks[ranks.index(tier) - 1]
            failing = 0
        else:
            failing += 1
        results.append((tier, failing))
    return results


month_values = st.one_of(
    st.none(), st.tuples(st.sampled_from(AUMS), st.sampled_from(CONTRIBUTIONS))
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    histories=st.lists(
        st.lists(month_values, min_size=len(MONTHS), max_size=len(MONTHS)), min_size=1, max_size=4
    ),
    grace=st.fixed_dictionaries({code: st.integers(1, 3) for code, *_ in LADDER}),
    to_qualified=st.fixed_dictionaries({code: st.booleans() for code, *_ in LADDER}),
)
def test_runs_month_after_month_follow_the_rules(histories, grace, to_qualified):
    with transaction.atomic():
        ladder()
        for code in grace:
            Tier.objects.filter(code=code).update(
                grace_periods=grace[code],
                downgrade_mode="to_qualified" if to_qualified[code] else "one_step",
            )
        members = []
        for history in histories:
            member = MemberFactory()
            for month, values in zip(MONTHS, history, strict=True):
                if values is not None:
                    snapshots(member, values[0], values[1], dates=(month,))
            members.append(member)
        expected = [_model(history, grace, to_qualified) for history in histories]
        for index, month in enumerate(MONTHS):
            evaluate(as_of=month)
            evaluate(as_of=month)  # a re-run of the same month changes nothing
            for member, results in zip(members, expected, strict=True):
                state = MemberTier.objects.filter(member=member).first()
                failing = state.failing_count if state else 0
                assert (tier_of(member), failing) == results[index], (month, results)
        transaction.set_rollback(True)


def test_a_spent_time_budget_leaves_the_run_running_and_the_next_call_carries_on():
    from members.services.evaluation import tier_evaluate, tier_evaluation_start

    ladder()
    members = [MemberFactory() for _ in range(3)]
    for member in members:
        snapshots(member, "600000.00")
    run = tier_evaluation_start(as_of=AS_OF, chunk_size=1)
    # Three chunks of one member: each call takes one and stops there, the run still running;
    # the fourth finds none left and marks the run done.
    progress = []
    for _call in range(4):
        run = tier_evaluate(run_id=run.run_id, time_budget=0)
        progress.append((run.status, run.processed, [tier_of(member) for member in members]))
    standard, platinum = "STANDARD", "PLATINUM"
    assert progress == [
        ("running", 1, [platinum, standard, standard]),
        ("running", 2, [platinum, platinum, standard]),
        ("running", 3, [platinum, platinum, platinum]),
        ("done", 3, [platinum, platinum, platinum]),
    ]
    assert [tier_of(member) for member in members] == ["PLATINUM"] * 3
