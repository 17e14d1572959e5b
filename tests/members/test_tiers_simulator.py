"""The simulator answers with what a real run then does, and writes nothing."""

import datetime as dt
from decimal import Decimal

import pytest
from django.apps import apps
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loyalty.models import AuditLog
from members.models import Tier
from members.selectors import tier_member_counts
from members.services.overrides import tier_override_approve, tier_override_request
from members.services.simulation import tiers_simulate
from tests.factories import MemberFactory, UserFactory
from tests.members.tier_helpers import AS_OF, evaluate, ladder, month_ends, snapshots

pytestmark = pytest.mark.django_db

NOV = dt.date(2026, 11, 30)


def _row_counts() -> dict[str, int]:
    return {
        model._meta.label: model.objects.count()  # type: ignore[attr-defined]  # model classes
        for model in [*apps.get_app_config("members").get_models(), AuditLog]
    }


def _population(tiers):
    """Members spread over the ladder, some failing their tier (Gold downgrades at the first
    failure, the others after two), one on an override."""
    Tier.objects.filter(code="GOLD").update(grace_periods=1)
    aums = ["0", "99999.99", "100000", "450000", "500000", "4999999.99", "5000000", "1.2e7"]
    members = []
    for aum in aums:
        member = MemberFactory()
        snapshots(member, Decimal(aum), contribution="10")
        members.append(member)
    MemberFactory()  # no snapshots at all
    evaluate()
    # November: some fall, some rise.
    november = ["0", "600000", "0", "600000", "0", "0", "5000000", "0"]
    for member, aum in zip(members, november, strict=True):
        snapshots(member, Decimal(aum), contribution="10", dates=month_ends(NOV))
    override = tier_override_request(
        member=members[0],
        tier=tiers["GOLD"],
        reason="VIP",
        expires_at=timezone.now() + dt.timedelta(days=5),
        actor=UserFactory(),
    )
    tier_override_approve(override_id=override.id, actor=UserFactory())
    return members


def test_simulated_counts_equal_what_the_run_then_produces():
    tiers = ladder()
    _population(tiers)
    simulated = tiers_simulate(as_of=NOV)
    run = evaluate(as_of=NOV)
    assert simulated["moves"] == {
        "up": run.upgraded,
        "down": run.downgraded,
        "same": run.unchanged,
    }
    assert simulated["members"] == run.processed
    assert {t["code"]: t["members"] for t in simulated["tiers"] if t["members"]} == (
        tier_member_counts()
    )
    assert run.upgraded > 0
    assert run.downgraded > 0
    assert run.unchanged > 0


def test_simulating_proposed_thresholds_equals_a_run_after_publishing_them():
    tiers = ladder()
    _population(tiers)
    proposals = {
        "GOLD": {"min_avg_aum": Decimal("50000.00"), "min_contribution": None},
        "DIAMOND": {"min_avg_aum": Decimal("600000.00"), "rule": Tier.Rule.ALL},
    }
    simulated = tiers_simulate(as_of=NOV, proposals=proposals)
    for code, values in proposals.items():
        Tier.objects.filter(code=code).update(**values)
    run = evaluate(as_of=NOV)
    assert simulated["moves"] == {
        "up": run.upgraded,
        "down": run.downgraded,
        "same": run.unchanged,
    }
    assert {t["code"]: t["members"] for t in simulated["tiers"] if t["members"]} == (
        tier_member_counts()
    )


def test_the_simulator_writes_nothing():
    tiers = ladder()
    _population(tiers)
    before = _row_counts()
    states = list(apps.get_model("members", "MemberTier").objects.order_by("pk").values())
    tiers_simulate(as_of=NOV, proposals={"GOLD": {"min_avg_aum": Decimal("1.00")}})
    assert _row_counts() == before
    assert list(apps.get_model("members", "MemberTier").objects.order_by("pk").values()) == states


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    aums=st.lists(
        st.decimals(min_value=0, max_value=20_000_000, places=2, allow_nan=False),
        min_size=1,
        max_size=6,
    ),
    gold=st.decimals(min_value=0, max_value=1_000_000, places=2, allow_nan=False),
)
def test_simulation_matches_the_run_for_any_assets_and_threshold(aums, gold):
    from django.db import transaction

    with transaction.atomic():
        ladder()
        for aum in aums:
            snapshots(MemberFactory(), aum)
        simulated = tiers_simulate(as_of=AS_OF, proposals={"GOLD": {"min_avg_aum": gold}})
        Tier.objects.filter(code="GOLD").update(min_avg_aum=gold)
        run = evaluate()
        assert simulated["moves"]["up"] == run.upgraded
        assert simulated["moves"]["same"] == run.unchanged
        assert {t["code"]: t["members"] for t in simulated["tiers"] if t["members"]} == (
            tier_member_counts()
        )
        transaction.set_rollback(True)
