"""Segments in the admin: saved through the services (counted, audited), a bad rule shown on
the form naming its bad part with nothing saved, the refresh action."""

import json

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME

from loyalty.models import AuditLog
from members.models import Member, Segment
from tests.factories import MemberFactory, database_state

pytestmark = pytest.mark.django_db


def test_a_segment_saved_in_the_admin_is_counted_and_audited(admin_client):
    MemberFactory.create_batch(2, city="Wuxi")
    MemberFactory(city="Suzhou")
    answer = admin_client.post(
        "/admin/members/segment/add/",
        {"name_en": "Wuxi", "name_zh_hans": "无锡", "rule": json.dumps({"cities": ["Wuxi"]})},
    )
    assert answer.status_code == 302, answer.content.decode()[:2000]
    segment = Segment.objects.get()
    assert (segment.member_count, segment.rule) == (2, {"cities": ["Wuxi"]})
    assert AuditLog.objects.filter(action="segment.create").count() == 1

    url = f"/admin/members/segment/{segment.pk}/change/"
    rule = json.dumps({"cities": ["Wuxi", "Suzhou"]})
    assert admin_client.post(url, {"name_en": "Wuxi", "rule": rule}).status_code == 302
    segment.refresh_from_db()
    assert segment.member_count == 3
    assert admin_client.get(url).status_code == 200
    assert admin_client.get("/admin/members/segment/").status_code == 200


def test_a_bad_rule_is_shown_on_the_form_and_nothing_is_saved(admin_client):
    before = database_state(ignore=("django_session",))
    answer = admin_client.post(
        "/admin/members/segment/add/", {"name_en": "Bad", "rule": json.dumps({"age_min": -3})}
    )
    assert answer.status_code == 200
    assert "rule.age_min" in answer.content.decode()
    assert database_state(ignore=("django_session",)) == before


def test_the_refresh_action_recounts_the_selected_segments(admin_client):
    from members.services.segments import segment_create

    segment = segment_create(actor=None, name_en="All", rule={})
    MemberFactory.create_batch(4)
    Member.objects.filter(pk=MemberFactory().pk).update(status=Member.Status.FROZEN)
    admin_client.post(
        "/admin/members/segment/", {"action": "refresh", ACTION_CHECKBOX_NAME: [str(segment.pk)]}
    )
    segment.refresh_from_db()
    assert segment.member_count == 4
