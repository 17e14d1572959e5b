"""The bank's calendar. Timestamps are UTC; a *business day* is a day in BUSINESS_TIME_ZONE."""

import datetime as dt
from calendar import monthrange
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone


def business_tz() -> ZoneInfo:
    return ZoneInfo(settings.BUSINESS_TIME_ZONE)


def business_today() -> dt.date:
    return timezone.now().astimezone(business_tz()).date()


def business_date(moment: dt.datetime) -> dt.date:
    """The business day an aware timestamp falls on."""
    return moment.astimezone(business_tz()).date()


# Month arithmetic, once for every app: expiry dates, tier windows, snapshot month ends.
def add_months(day: dt.date, months: int) -> dt.date:
    """``day`` moved by ``months`` calendar months (back when negative), on the same day of
    the month or the month's last day when it is shorter: 31 January + 1 = 28/29 February."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return dt.date(year, month + 1, min(day.day, monthrange(year, month + 1)[1]))


def month_end(day: dt.date) -> dt.date:
    """The last day of ``day``'s month."""
    return day.replace(day=monthrange(day.year, day.month)[1])


def previous_month_end(day: dt.date) -> dt.date:
    """The last day of the month before ``day``'s."""
    return day.replace(day=1) - dt.timedelta(days=1)


def window_start(as_of: dt.date, months: int) -> dt.date:
    """The first day of a window of ``months`` calendar months ending with ``as_of``'s month."""
    return add_months(as_of.replace(day=1), 1 - months)
