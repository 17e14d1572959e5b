"""Tier evaluation on PostgreSQL: thresholds, rules, grace periods, re-runs, overrides."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from members.models import MemberTier, Message, Tier, TierEvaluationRun, TierHistory
from members.selectors import member_tier_standing, member_tiers_for_earning
from members.services.evaluation import tier_evaluate, tier_evaluation_start
from members.services.overrides import tier_override_approve, tier_override_request
from tests.factories import MemberFactory, UserFactory
from tests.members.tier_helpers import (
    AS_OF,
    evaluate,
    ladder,
    members_state,
    month_ends,
    snapshots,
    tier_of,
)

pytestmark = pytest.mark.django_db

NOV = dt.date(2026, 11, 30)
DEC = dt.date(2026, 12, 31)
JAN = dt.date(2027, 1, 31)


@pytest.fixture
def tiers():
    return ladder()


def test_average_aum_exactly_at_the_threshold_qualifies(tiers):
    member = MemberFactory()
    snapshots(member, "100000.00")
    evaluate()
    assert tier_of(member) == "GOLD"


def test_average_aum_a_cent_below_the_threshold_does_not(tiers):
    member = MemberFactory()
    snapshots(member, "99999.99")
    evaluate()
    assert tier_of(member) == "STANDARD"


def test_the_average_is_exact_not_rounded_up(tiers):
    member = MemberFactory()
    snapshots(member, "100000.00", dates=month_ends(AS_OF, 3)[:2])
    snapshots(member, "99999.99", dates=(AS_OF,))  # average 99,999.9966...
    evaluate()
    assert tier_of(member) == "STANDARD"


def test_contribution_alone_qualifies_under_the_either_rule(tiers):
    member = MemberFactory()
    snapshots(member, "1000.00", contribution="3333.34")  # 10,000.02 over three months
    evaluate()
    assert tier_of(member) == "PLATINUM"


def test_contribution_a_cent_short_over_the_window_does_not(tiers):
    member = MemberFactory()
    snapshots(member, "1000.00", contribution="666.66")  # 1,999.98 < 2,000
    evaluate()
    assert tier_of(member) == "STANDARD"


def test_both_rule_needs_aum_and_contribution(tiers):
    Tier.objects.filter(code="GOLD").update(rule=Tier.Rule.ALL)
    only_aum, only_contribution, both = MemberFactory(), MemberFactory(), MemberFactory()
    snapshots(only_aum, "150000.00", contribution="0")
    snapshots(only_contribution, "0", contribution="1000.00")
    snapshots(both, "100000.00", contribution="666.67")  # 2,000.01
    evaluate()
    assert tier_of(only_aum) == "STANDARD"
    assert tier_of(only_contribution) == "STANDARD"
    assert tier_of(both) == "GOLD"


def test_a_jump_of_several_tiers_happens_at_once(tiers):
    member = MemberFactory()
    snapshots(member, "12000000.00")
    run = evaluate()
    assert tier_of(member) == "PRIVATE"
    assert run.upgraded == 1
    history = TierHistory.objects.get(member=member)
    assert (history.from_tier.code, history.to_tier.code, history.reason) == (
        "STANDARD",
        "PRIVATE",
        "upgrade",
    )
    assert history.avg_aum == Decimal("12000000.00")


def test_members_without_snapshots_stay_in_the_lowest_tier(tiers):
    member = MemberFactory()
    run = evaluate()
    assert tier_of(member) == "STANDARD"
    assert run.unchanged == 1
    assert not MemberTier.objects.filter(member=member).exists()
    assert not Message.objects.filter(member=member).exists()


def test_snapshots_outside_the_window_are_ignored(tiers):
    member = MemberFactory()
    snapshots(member, "900000.00", dates=(dt.date(2026, 7, 31),))  # before August
    snapshots(member, "900000.00", dates=(dt.date(2026, 11, 30),))  # after as_of
    evaluate()
    assert tier_of(member) == "STANDARD"


def test_an_upgrade_writes_history_and_one_message_in_the_members_language(tiers):
    member = MemberFactory(preferred_language="en")
    snapshots(member, "600000.00")
    run = evaluate()
    message = Message.objects.get(member=member)
    assert message.kind == Message.Kind.TIER_CHANGE
    assert "Platinum" in message.title
    assert message.data == {
        "tier": "PLATINUM",
        "previous": "STANDARD",
        "as_of": AS_OF.isoformat(),
        "run_id": str(run.run_id),
        "direction": "up",
    }
    # The member's number and language come from the decision's own read of the member.
    assert message.dedupe_key == f"tier-change:{run.run_id}:{member.customer_no}"
    zh_member = MemberFactory(preferred_language="zh-hans")
    snapshots(zh_member, "600000.00")
    evaluate(as_of=NOV)  # one snapshot in Nov's window is enough to be averaged
    assert "PLATINUM-中文" in Message.objects.get(member=zh_member).title


def test_failing_once_keeps_the_tier_with_a_warning(tiers):
    member = MemberFactory()
    snapshots(member, "600000.00")
    evaluate()
    snapshots(member, "200000.00", dates=month_ends(NOV))
    run = evaluate(as_of=NOV)
    assert tier_of(member) == "PLATINUM"
    assert run.downgraded == 0
    warning = member_tier_standing(member=member)["downgrade_warning"]
    assert warning["failing_evaluations"] == 1
    assert warning["evaluations_left"] == 1
    assert warning["qualified_tier"]["code"] == "GOLD"


def test_failing_grace_periods_times_in_a_row_moves_down(tiers):
    member = MemberFactory()
    snapshots(member, "600000.00")
    evaluate()
    snapshots(member, "200000.00", dates=month_ends(DEC))
    evaluate(as_of=NOV)
    run = evaluate(as_of=DEC)
    assert tier_of(member) == "GOLD"
    assert run.downgraded == 1
    history = TierHistory.objects.filter(member=member).first()
    assert (history.from_tier.code, history.to_tier.code, history.reason) == (
        "PLATINUM",
        "GOLD",
        "downgrade",
    )
    assert member_tier_standing(member=member)["downgrade_warning"] is None


def test_passing_in_between_resets_the_grace_count(tiers):
    member = MemberFactory()
    snapshots(member, "600000.00")
    evaluate()
    snapshots(member, "200000.00", dates=month_ends(NOV))
    evaluate(as_of=NOV)  # fail 1
    snapshots(member, "900000.00", dates=month_ends(DEC))
    evaluate(as_of=DEC)  # pass: reset
    assert member_tier_standing(member=member)["downgrade_warning"] is None
    snapshots(member, "200000.00", dates=month_ends(JAN))
    evaluate(as_of=JAN)  # fail 1 again, not 2
    assert tier_of(member) == "PLATINUM"
    assert MemberTier.objects.get(member=member).failing_count == 1


def test_one_step_mode_moves_down_a_single_tier(tiers):
    member = MemberFactory()
    snapshots(member, "6000000.00")
    evaluate()
    assert tier_of(member) == "DIAMOND"
    snapshots(member, "0.00", dates=month_ends(DEC))
    evaluate(as_of=NOV)
    evaluate(as_of=DEC)
    assert tier_of(member) == "PLATINUM"


def test_to_qualified_mode_moves_straight_to_the_qualified_tier(tiers):
    Tier.objects.filter(code="DIAMOND").update(downgrade_mode=Tier.DowngradeMode.TO_QUALIFIED)
    member = MemberFactory()
    snapshots(member, "6000000.00")
    evaluate()
    snapshots(member, "150000.00", dates=month_ends(DEC))
    evaluate(as_of=NOV)
    evaluate(as_of=DEC)
    assert tier_of(member) == "GOLD"


def test_grace_periods_of_one_downgrades_at_the_first_failure():
    ladder(grace_periods=1)
    member = MemberFactory()
    snapshots(member, "600000.00")
    evaluate()
    snapshots(member, "200000.00", dates=month_ends(NOV))
    evaluate(as_of=NOV)
    assert tier_of(member) == "GOLD"


def test_re_running_the_same_as_of_changes_nothing(tiers):
    upgraded, failing = MemberFactory(), MemberFactory()
    snapshots(upgraded, "150000.00")
    snapshots(failing, "600000.00")
    evaluate()
    snapshots(failing, "0.00", dates=month_ends(NOV))
    snapshots(upgraded, "600000.00", dates=month_ends(NOV))
    first = evaluate(as_of=NOV)
    before = (
        list(MemberTier.objects.order_by("pk").values()),
        TierHistory.objects.count(),
        Message.objects.count(),
    )
    second = evaluate(as_of=NOV)
    after = (
        list(MemberTier.objects.order_by("pk").values()),
        TierHistory.objects.count(),
        Message.objects.count(),
    )
    assert first.upgraded == 1
    assert (second.upgraded, second.downgraded, second.unchanged) == (0, 0, 2)
    assert after == before
    assert MemberTier.objects.get(member=failing).failing_count == 1


def test_small_chunks_give_the_same_result_as_one_chunk(tiers):
    members = [MemberFactory() for _ in range(7)]
    for index, member in enumerate(members):
        snapshots(member, str(100000 * index))
    run = evaluate(chunk_size=2)
    assert run.processed == 7
    assert (run.upgraded, run.unchanged) == (6, 1)
    assert [tier_of(m) for m in members] == [
        "STANDARD",
        "GOLD",
        "GOLD",
        "GOLD",
        "GOLD",
        "PLATINUM",
        "PLATINUM",
    ]


def test_an_interrupted_run_resumes_with_the_chunks_that_did_not_commit(tiers):
    members = [MemberFactory() for _ in range(4)]
    for member in members:
        snapshots(member, "150000.00")
    run = tier_evaluation_start(as_of=AS_OF, chunk_size=2)
    # As if a worker had split the run, committed the first chunk (and its progress), then died.
    from members.services.evaluation import _tier_run_prepare

    _tier_run_prepare(run_id=run.run_id)
    first = run.chunks.order_by("lo").first()
    assert (first.lo, first.hi) == (members[0].pk - 1, members[1].pk)
    run.chunks.filter(pk=first.pk).update(done=True, processed=2, unchanged=2)
    TierEvaluationRun.objects.filter(pk=run.pk).update(processed=2, unchanged=2)

    run = tier_evaluate(run_id=run.run_id)
    assert run.status == TierEvaluationRun.Status.DONE
    assert (run.processed, run.upgraded) == (4, 2)
    assert [tier_of(m) for m in members] == ["STANDARD", "STANDARD", "GOLD", "GOLD"]
    assert not run.chunks.filter(done=False).exists()


def test_a_failed_run_can_be_resumed(tiers):
    from members.services.evaluation import tier_evaluation_resume

    member = MemberFactory()
    snapshots(member, "150000.00")
    run = tier_evaluation_start(as_of=AS_OF)
    TierEvaluationRun.objects.filter(pk=run.pk).update(status=TierEvaluationRun.Status.FAILED)
    tier_evaluation_resume(run_id=run.run_id)
    assert tier_evaluate(run_id=run.run_id).status == TierEvaluationRun.Status.DONE
    assert tier_of(member) == "GOLD"


def test_closed_members_are_not_evaluated(tiers):
    member = MemberFactory(status="closed")
    snapshots(member, "600000.00")
    run = evaluate()
    assert run.processed == 0
    assert not MemberTier.objects.filter(member=member).exists()


def test_an_approved_override_holds_until_it_expires(tiers):
    member = MemberFactory()
    snapshots(member, "150000.00")
    evaluate()
    maker, checker = UserFactory(), UserFactory()
    override = tier_override_request(
        member=member,
        tier=tiers["DIAMOND"],
        reason="Family office onboarding",
        expires_at=timezone.now() + dt.timedelta(days=30),
        actor=maker,
    )
    assert tier_of(member) == "GOLD"  # nothing before approval
    tier_override_approve(override_id=override.id, actor=checker)
    assert tier_of(member) == "DIAMOND"
    run = evaluate(as_of=NOV)
    assert tier_of(member) == "DIAMOND"
    assert run.unchanged == 1
    assert member_tier_standing(member=member)["downgrade_warning"] is None

    type(override).objects.filter(pk=override.pk).update(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    evaluate(as_of=DEC)
    assert tier_of(member) == "GOLD"  # straight back to the qualified tier, no grace
    reasons = list(
        TierHistory.objects.filter(member=member).order_by("id").values_list("reason", flat=True)
    )
    assert reasons == ["upgrade", "override", "override_expired"]


def test_multiplier_follows_an_upgrade_at_once(tiers):
    member = MemberFactory()
    other = MemberFactory()
    assert member_tiers_for_earning(member_ids=[member.pk]) == {
        member.pk: ("STANDARD", Decimal("1.00"))
    }
    snapshots(member, "600000.00")
    evaluate()
    assert member_tiers_for_earning(member_ids=[member.pk, other.pk]) == {
        member.pk: ("PLATINUM", Decimal("1.50")),
        other.pk: ("STANDARD", Decimal("1.00")),
    }


def test_without_tiers_everyone_earns_at_one_and_has_no_tier():
    member = MemberFactory()
    assert member_tiers_for_earning(member_ids=[member.pk]) == {member.pk: (None, Decimal(1))}


def test_a_deactivated_tier_sends_its_members_to_the_qualified_tier(tiers):
    member = MemberFactory()
    snapshots(member, "6000000.00")
    evaluate()
    Tier.objects.filter(code="DIAMOND").update(active=False)
    evaluate(as_of=NOV)
    assert tier_of(member) == "PLATINUM"
    assert TierHistory.objects.filter(member=member).first().reason == "tier_retired"


def test_snapshot_ingest_still_replaces_a_resent_date_with_the_covering_index(
    tiers, integration_api
):
    member = MemberFactory()
    body = {"snapshots": [{"customer_no": member.customer_no, "as_of": "2026-10-31"}]}
    body["snapshots"][0]["deposits"] = "100.00"
    assert (
        integration_api.post("/api/v1/ingest/asset-snapshots/", body, format="json").json()[
            "created"
        ]
        == 1
    )
    body["snapshots"][0]["deposits"] = "150000.00"
    assert (
        integration_api.post("/api/v1/ingest/asset-snapshots/", body, format="json").json()[
            "updated"
        ]
        == 1
    )
    assert member.snapshots.get().aum == Decimal("150000.00")
    evaluate()
    assert tier_of(member) == "GOLD"


def test_a_done_run_cannot_be_resumed_but_a_stuck_one_gets_workers_again(
    tiers, django_capture_on_commit_callbacks
):
    from members.errors import EvaluationNotResumable
    from members.services.evaluation import tier_evaluation_resume

    member = MemberFactory()
    snapshots(member, "150000.00")
    run = tier_evaluation_start(as_of=AS_OF)  # its task message is lost (never committed here)
    with django_capture_on_commit_callbacks(execute=True):
        tier_evaluation_resume(run_id=run.run_id)
    run.refresh_from_db()
    assert run.status == TierEvaluationRun.Status.DONE
    assert tier_of(member) == "GOLD"
    before = members_state(member)
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(EvaluationNotResumable),
    ):
        tier_evaluation_resume(run_id=run.run_id)
    assert callbacks == []  # no task enqueued
    assert members_state(member) == before  # the run, the tier, no audit row


def test_the_daily_expiry_moves_a_member_back_when_the_override_ends(tiers):
    from members.services.overrides import tier_overrides_expire

    member, untouched = MemberFactory(preferred_language="en"), MemberFactory()
    snapshots(member, "150000.00")
    evaluate()
    override = tier_override_request(
        member=member,
        tier=tiers["PRIVATE"],
        reason="Courtesy",
        expires_at=timezone.now() + dt.timedelta(days=1),
        actor=UserFactory(),
    )
    tier_override_approve(override_id=override.id, actor=UserFactory())
    assert tier_overrides_expire() == 0  # not expired yet
    assert tier_of(member) == "PRIVATE"
    moved = tier_overrides_expire(now=timezone.now() + dt.timedelta(days=2))
    assert moved == 1
    assert tier_of(member) == "GOLD"
    assert tier_of(untouched) == "STANDARD"
    last = TierHistory.objects.filter(member=member).first()
    assert (last.reason, last.override_id, last.to_tier.code) == (
        "override_expired",
        override.id,
        "GOLD",
    )
    assert Message.objects.filter(member=member, data__tier="GOLD").count() == 2
    # Nothing left to expire; a re-run of the evaluated month keeps the member where they are.
    assert tier_overrides_expire(now=timezone.now() + dt.timedelta(days=3)) == 0
    evaluate()
    assert tier_of(member) == "GOLD"


def test_a_tier_without_thresholds_above_the_lowest_takes_everyone(tiers):
    """Everyone qualifies for a tier with no thresholds, members without snapshots too; the
    simulator counts them the same way."""
    from members.services.simulation import tiers_simulate

    Tier.objects.filter(code="GOLD").update(min_avg_aum=None, min_contribution=None)
    bare = MemberFactory()
    poor = MemberFactory()
    snapshots(poor, "10.00")
    rich = MemberFactory()
    snapshots(rich, "600000.00")
    MemberFactory(status="closed")
    simulated = tiers_simulate(as_of=AS_OF)
    run = evaluate()
    assert (tier_of(bare), tier_of(poor), tier_of(rich)) == ("GOLD", "GOLD", "PLATINUM")
    assert (run.processed, run.upgraded, run.unchanged) == (3, 3, 0)
    assert {t["code"]: t["members"] for t in simulated["tiers"] if t["members"]} == {
        "GOLD": 2,
        "PLATINUM": 1,
    }
    assert simulated["moves"] == {"up": 3, "down": 0, "same": 0}


def test_a_downgrade_message_says_so(tiers):
    Tier.objects.filter(code="PLATINUM").update(grace_periods=1)
    member = MemberFactory(preferred_language="en")
    snapshots(member, "600000.00")
    evaluate()
    snapshots(member, "150000.00", dates=month_ends(NOV))
    run = evaluate(as_of=NOV)
    message = Message.objects.filter(member=member).order_by("-created_at").first()
    assert message is not None
    assert (message.data["previous"], message.data["tier"]) == ("PLATINUM", "GOLD")
    assert message.data["direction"] == "down"
    assert message.data["run_id"] == str(run.run_id)
