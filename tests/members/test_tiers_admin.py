"""The tier admin: configuration, the simulator, runs and maker-checker overrides."""

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from loyalty import roles
from members.demo_tiers import seed_tiers
from members.models import Tier, TierEvaluationRun, TierOverride
from members.schedules import TIER_EVALUATION_SCHEDULE_NAME, tier_evaluation_schedule_ensure
from tests.factories import MemberFactory, UserFactory
from tests.members.tier_helpers import AS_OF, members_state, snapshots

pytestmark = pytest.mark.django_db


def _admin_client(*role_names, superuser=False) -> tuple[Client, object]:
    user = UserFactory(roles=list(role_names), is_superuser=superuser)
    client = Client()
    client.force_login(user)  # type: ignore[arg-type]  # the factory returns a User
    return client, user


def test_seed_creates_the_ladder_once_with_benefits_and_the_schedule():
    seed_tiers()
    seed_tiers()
    tiers = list(Tier.objects.order_by("rank"))
    assert [(t.code, t.name_zh_hans, str(t.multiplier)) for t in tiers] == [
        ("STANDARD", "普卡", "1.00"),
        ("GOLD", "金卡", "1.20"),
        ("PLATINUM", "白金", "1.50"),
        ("DIAMOND", "钻石", "2.00"),
        ("PRIVATE", "私人银行", "3.00"),
    ]
    assert [str(t.min_avg_aum) for t in tiers[1:]] == [
        "100000.00",
        "500000.00",
        "5000000.00",
        "10000000.00",
    ]
    assert all(t.benefits.exists() for t in tiers)
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.get(name=TIER_EVALUATION_SCHEDULE_NAME)
    assert task.task == "members.tier_evaluate"
    assert (task.crontab.minute, task.crontab.hour, task.crontab.day_of_month) == ("0", "2", "1")
    assert str(task.crontab.timezone) == "Asia/Shanghai"
    assert tier_evaluation_schedule_ensure().pk == task.pk
    expiry = PeriodicTask.objects.get(task="members.tier_overrides_expire")
    assert (expiry.crontab.hour, expiry.crontab.day_of_month) == ("0", "*")
    assert PeriodicTask.objects.filter(task__startswith="members.tier").count() == 2


def test_scheduled_task_without_a_run_id_starts_and_processes_a_run(
    django_capture_on_commit_callbacks,
):
    from members.tasks import tier_evaluate_task

    seed_tiers()
    member = MemberFactory()
    snapshots(member, "150000.00")
    with django_capture_on_commit_callbacks(execute=True):
        run_id = tier_evaluate_task.apply(kwargs={"as_of": AS_OF.isoformat()}).get()
    run = TierEvaluationRun.objects.get(run_id=run_id)
    assert run.trigger == "schedule"
    assert run.status == "done"
    assert run.upgraded == 1


def test_admin_pages_render_for_the_programme_admin():
    seed_tiers()
    client, _ = _admin_client(roles.PROGRAMME_ADMIN)
    for url in [
        "/admin/members/tier/",
        f"/admin/members/tier/{Tier.objects.get(code='GOLD').pk}/change/",
        "/admin/members/tier/simulate/",
        "/admin/members/tierevaluationrun/",
        "/admin/members/tieroverride/",
        "/admin/members/tieroverride/add/",
        "/admin/members/tierhistory/",
        "/admin/members/membertier/",
    ]:
        assert client.get(url).status_code == 200, url


def _simulator_form(gold_min_avg_aum: str) -> dict:
    """The admin simulator's form: every active tier as it is, Gold's AUM threshold changed."""
    tiers = list(Tier.objects.filter(active=True).order_by("rank"))
    data = {
        "as_of": AS_OF.isoformat(),
        "form-TOTAL_FORMS": len(tiers),
        "form-INITIAL_FORMS": len(tiers),
    }
    for index, tier in enumerate(tiers):
        data[f"form-{index}-code"] = tier.code
        data[f"form-{index}-min_avg_aum"] = (
            gold_min_avg_aum if tier.code == "GOLD" else tier.min_avg_aum or ""
        )
        data[f"form-{index}-min_contribution"] = tier.min_contribution or ""
        data[f"form-{index}-rule"] = tier.rule
    return data


def test_admin_simulator_shows_counts_and_saves_nothing():
    seed_tiers()
    member = MemberFactory()
    snapshots(member, "60000.00")
    client, _ = _admin_client(roles.PROGRAMME_ADMIN)
    before = members_state(member)
    response = client.post("/admin/members/tier/simulate/", _simulator_form("50000"))
    assert response.status_code == 200
    assert response.context["result"]["moves"] == {"up": 1, "down": 0, "same": 0}
    # Nothing saved: not the proposed threshold, no run, no tier, no audit row.
    assert members_state(member) == before
    assert Tier.objects.get(code="GOLD").min_avg_aum == 100000
    assert before["tiers"] == {member.customer_no: "STANDARD"}


def test_admin_simulator_is_refused_without_tier_change_permission():
    seed_tiers()
    member = MemberFactory()
    snapshots(member, "60000.00")
    client, _ = _admin_client(roles.MARKETING)
    before = members_state(member)
    assert client.get("/admin/members/tier/simulate/").status_code == 403
    assert client.post("/admin/members/tier/simulate/", _simulator_form("50000")).status_code == 403
    assert members_state(member) == before


def test_admin_starts_a_run(django_capture_on_commit_callbacks):
    seed_tiers()
    client, _ = _admin_client(roles.PROGRAMME_ADMIN)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/admin/members/tierevaluationrun/start/")
    assert response.status_code == 302
    assert TierEvaluationRun.objects.get().status == "done"


def test_admin_override_request_and_approval_by_another_person():
    seed_tiers()
    member = MemberFactory()
    maker, maker_user = _admin_client(roles.OPERATIONS)
    expires = (timezone.now() + dt.timedelta(days=10)).astimezone(dt.UTC)
    response = maker.post(
        "/admin/members/tieroverride/add/",
        {
            "member": member.pk,
            "tier": Tier.objects.get(code="DIAMOND").pk,
            "reason": "Retention",
            "expires_at_0": expires.date().isoformat(),
            "expires_at_1": expires.time().strftime("%H:%M:%S"),
        },
    )
    assert response.status_code == 302, response.content
    override = TierOverride.objects.get()
    assert override.requested_by == maker_user
    # The requester holds no approve permission; an approver who is also the requester would be
    # refused by the service (four eyes); a different approver succeeds.
    checker, _ = _admin_client(roles.APPROVER)
    client_action = {"action": "approve", "_selected_action": [str(override.pk)]}
    response = checker.post("/admin/members/tieroverride/", client_action)
    assert response.status_code == 302
    override.refresh_from_db()
    assert override.status == "approved"


def test_admin_self_approval_is_refused():
    seed_tiers()
    member = MemberFactory()
    client, user = _admin_client(roles.OPERATIONS, roles.APPROVER)
    override = TierOverride.objects.create(
        member=member,
        tier=Tier.objects.get(code="GOLD"),
        reason="x",
        expires_at=timezone.now() + dt.timedelta(days=1),
        requested_by=user,
    )
    before = members_state(member)
    response = client.post(
        "/admin/members/tieroverride/",
        {"action": "approve", "_selected_action": [str(override.pk)]},
    )
    assert response.status_code == 302
    override.refresh_from_db()
    assert override.status == "pending"
    assert members_state(member) == before  # no tier, history, message or audit row
    assert before["tiers"] == {member.customer_no: "STANDARD"}


def test_member_admin_shows_the_tier_and_its_history():
    from tests.members.tier_helpers import evaluate

    seed_tiers()
    member = MemberFactory()
    snapshots(member, "150000.00")
    evaluate()
    client, _ = _admin_client(superuser=True)
    page = client.get(f"/admin/members/member/{member.pk}/change/").content.decode()
    assert "GOLD" in page
    assert "Qualified for a higher tier" in page
