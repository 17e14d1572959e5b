"""The bank's calendar. Timestamps are UTC; a *business day* is a day in BUSINESS_TIME_ZONE."""

import datetime as dt
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
