"""Closing a member keeps the points through the notice period; reopening within it keeps every
point; after it the closure becomes final and the balance is forfeited once.

The clock is frozen (``business_clock``), so "closed N days ago" is exactly N days before the
moment the daily run reads: the boundaries are tested to the day, never off by a midnight."""

import datetime as dt

import pytest
from django.utils import timezone

from loyalty.models import ProgrammeSettings
from loyalty.selectors import programme_settings_get
from loyalty.timeutils import business_date
from members.errors import MemberClosed
from members.models import Member, Message
from members.services.members import member_close, member_reopen, members_closures_finalise
from points.models import Account, Entry
from points.services.ledger import points_credit
from points.services.reconciliation import points_reconcile
from tests.factories import MemberFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("business_clock")]


def _balance(member) -> int:
    return Account.objects.get(member=member).balance


def _age_closure(member, days: int) -> None:
    Member.objects.filter(pk=member.pk).update(
        status_changed_at=timezone.now() - dt.timedelta(days=days)
    )


def test_the_notice_period_defaults_to_30_days():
    assert programme_settings_get().closure_notice_days == 30


def test_closing_keeps_every_point_and_tells_the_member():
    member = MemberFactory(preferred_language="en")
    points_credit(member=member, points=70, idempotency_key="c")
    member_close(member=member, actor=None, reason="customer left")
    assert _balance(member) == 70
    assert not Entry.objects.filter(member=member, kind="forfeit").exists()
    member.refresh_from_db()
    message = Message.objects.get(member=member)
    final_on = business_date(member.status_changed_at + dt.timedelta(days=30))
    assert final_on.isoformat() in message.body


def test_reopening_within_the_notice_period_keeps_every_point(integration_api):
    member = MemberFactory()
    points_credit(member=member, points=70, idempotency_key="c")
    # The CRM closes the customer, then reopens them (its own mistake), over the API.
    path = f"/api/v1/members/{member.customer_no}/"
    assert integration_api.put(path, {"status": "closed"}, format="json").status_code == 200
    _age_closure(member, days=29)
    assert members_closures_finalise() == 0
    reopened = integration_api.put(path, {"status": "active"}, format="json")
    assert reopened.status_code == 200, reopened.content
    assert reopened.json()["status"] == "active"
    assert _balance(member) == 70
    assert not Entry.objects.filter(member=member, kind="forfeit").exists()
    assert points_reconcile()[1] == []


def test_after_the_notice_period_the_balance_is_forfeited_once_and_reopening_is_refused():
    member = MemberFactory()
    points_credit(member=member, points=70, idempotency_key="c")
    member_close(member=member, actor=None)
    _age_closure(member, days=30)
    assert members_closures_finalise() == 1
    assert members_closures_finalise() == 0
    forfeit = Entry.objects.get(member=member, kind="forfeit")
    assert (forfeit.points, forfeit.balance_after) == (-70, 0)
    assert _balance(member) == 0
    member.refresh_from_db()
    assert member.closure_final_at is not None
    with pytest.raises(MemberClosed):
        member_reopen(member=member, actor=None)
    assert points_reconcile()[1] == []


def test_reopening_after_the_notice_but_before_the_daily_run_is_refused():
    member = MemberFactory()
    member_close(member=member, actor=None)
    _age_closure(member, days=31)
    with pytest.raises(MemberClosed):
        member_reopen(member=member, actor=None)


def test_the_notice_period_is_the_programmes_setting():
    programme_settings_get()
    ProgrammeSettings.objects.update(closure_notice_days=3)
    member = MemberFactory()
    points_credit(member=member, points=5, idempotency_key="c")
    member_close(member=member, actor=None)
    _age_closure(member, days=2)
    assert members_closures_finalise() == 0
    _age_closure(member, days=3)
    assert members_closures_finalise() == 1
    assert _balance(member) == 0


def test_finalisation_is_on_the_daily_schedule():
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.get(task="members.closures_finalise")
    assert (task.crontab.minute, task.crontab.hour, task.crontab.day_of_month) == ("20", "0", "*")
