"""Month arithmetic (loyalty.timeutils): the one source for expiry dates and tier windows."""

import datetime as dt
from calendar import monthrange

from hypothesis import given
from hypothesis import strategies as st

from loyalty.timeutils import add_months, month_end, previous_month_end, window_start

days = st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2090, 12, 31))


def test_a_shorter_month_ends_on_its_last_day():
    assert add_months(dt.date(2026, 1, 31), 1) == dt.date(2026, 2, 28)
    assert add_months(dt.date(2028, 1, 31), 1) == dt.date(2028, 2, 29)
    assert add_months(dt.date(2026, 3, 31), -1) == dt.date(2026, 2, 28)
    assert add_months(dt.date(2026, 11, 15), 3) == dt.date(2027, 2, 15)
    assert add_months(dt.date(2026, 1, 15), -13) == dt.date(2024, 12, 15)


@given(days, st.integers(min_value=-120, max_value=120))
def test_moving_by_months_keeps_the_day_or_clamps_it(day, months):
    moved = add_months(day, months)
    assert (moved.year * 12 + moved.month) - (day.year * 12 + day.month) == months
    assert moved.day == min(day.day, monthrange(moved.year, moved.month)[1])


@given(days, st.integers(min_value=1, max_value=36))
def test_a_window_of_n_months_ends_with_the_as_of_month(as_of, months):
    start = window_start(as_of, months)
    assert start.day == 1
    assert add_months(start, months - 1) == as_of.replace(day=1)
    assert previous_month_end(start) < start <= as_of <= month_end(as_of)
    assert month_end(as_of) + dt.timedelta(days=1) == add_months(as_of.replace(day=1), 1)
