"""Marketing schedules an event in the console, in a real browser: creates it as a draft for
chosen tiers, then publishes it from the event's page after confirming in a dialog."""

import datetime as dt

import pytest
from django.utils import timezone

from events.models import Event
from loyalty import roles
from members.models import Tier
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_marketing_creates_and_publishes_an_event(console):
    marketing = UserFactory(username="marketing", roles=[roles.MARKETING])
    tiers = ["GOLD", "PLATINUM"]
    for code, rank in (("GOLD", 20), ("PLATINUM", 30), ("SILVER", 10)):
        Tier.objects.create(code=code, name_en=code.title(), rank=rank, min_avg_aum=rank * 10_000)
    page = console(marketing)
    page.goto(f"{page.base}/admin/events/event/add/")
    page.fill("#id_title_en", "Retirement planning salon")
    page.fill("#id_title_zh_hans", "退休规划沙龙")
    page.select_option("#id_kind", "salon")
    now = timezone.localtime()
    for name, moment in {
        "starts_at": now + dt.timedelta(days=20, hours=2),
        "ends_at": now + dt.timedelta(days=20, hours=4),
        "rsvp_deadline": now + dt.timedelta(days=15),
        "invite_at": now + dt.timedelta(days=2),
    }.items():
        page.fill(f"#id_{name}_0", moment.strftime("%Y-%m-%d"))
        page.fill(f"#id_{name}_1", moment.strftime("%H:%M:%S"))
    page.fill("#id_capacity", "40")
    for code in tiers:
        page.check(f"input[name=target_tiers][value='{code}']")
    page.shot("form")
    page.click("[name=_save]")
    page.get_by_text("was added successfully").wait_for()
    event = Event.objects.get(title_en="Retirement planning salon")
    assert (event.status, sorted(event.target_tiers)) == (Event.Status.DRAFT, sorted(tiers))
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280

    page.goto(f"{page.base}/admin/events/event/{event.pk}/change/")
    page.get_by_role("link", name="Publish").click()
    page.get_by_text("Publish this event?").wait_for()
    page.shot("publish-dialog")
    event.refresh_from_db()
    assert event.status == Event.Status.DRAFT  # asked, not done
    page.get_by_role("button", name="Publish").click()
    page.get_by_text("1 events updated.").wait_for()
    page.shot("published")
    event.refresh_from_db()
    assert event.status == Event.Status.PUBLISHED
