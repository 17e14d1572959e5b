"""A frozen business clock for tests: ``timezone.now()`` (and so ``business_today()``) stands
still, so a test that reads "now" or "today" twice, or dates things relative to today, reads the
same instant each time, also across midnight.

It freezes Python's clock only: PostgreSQL's ``now()`` runs on. The default instant is the real
current one, so what the database stamps stays within the test's own second of it.
"""

import dataclasses
import datetime as dt

import time_machine
from django.utils import timezone

from loyalty.timeutils import business_today


@dataclasses.dataclass
class BusinessClock:
    """What a test reads of the frozen clock; ``traveller`` moves it (``move_to``, ``shift``)."""

    traveller: time_machine.Traveller

    @property
    def now(self) -> dt.datetime:
        return timezone.now()

    @property
    def today(self) -> dt.date:
        return business_today()


def frozen_clock(moment: dt.datetime | None = None) -> time_machine.travel:
    """``with frozen_clock() as coordinates:`` the clock stops at ``moment`` (default: now)."""
    return time_machine.travel(moment or timezone.now(), tick=False)
