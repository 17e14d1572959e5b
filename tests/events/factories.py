"""Events for the events tests: published, invitations due a minute ago, starting in a week."""

import datetime as dt

import factory
from django.utils import timezone

from events.models import Event, EventKind


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Event

    class Params:
        # ``EventFactory(at=moment)``: the schedule is laid out around ``moment`` (default now).
        at = factory.LazyFunction(timezone.now)

    title_en = factory.Sequence(lambda n: f"Wealth salon {n}")
    title_zh_hans = factory.Sequence(lambda n: f"财富沙龙 {n}")
    kind = EventKind.SALON
    venue = "Bund Centre, Shanghai"
    capacity = 100
    status = Event.Status.PUBLISHED
    invite_at = factory.LazyAttribute(lambda e: e.at - dt.timedelta(minutes=1))
    starts_at = factory.LazyAttribute(lambda e: e.at + dt.timedelta(days=7))
    ends_at = factory.LazyAttribute(lambda e: e.starts_at + dt.timedelta(hours=2))
    rsvp_deadline = factory.LazyAttribute(lambda e: e.starts_at - dt.timedelta(days=1))
