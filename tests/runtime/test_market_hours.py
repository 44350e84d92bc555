"""The NYSE calendar: trading days, session bounds, and the next open."""

from datetime import UTC, date, datetime, timedelta

import pytest

from bot.options.market_hours import (
    MARKET_TZ,
    is_market_open,
    is_trading_day,
    latest_trading_day,
    next_session_open,
    next_trading_day,
    session_close,
    session_open,
)


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=MARKET_TZ)


@pytest.mark.parametrize(
    ("day", "trading"),
    [
        (date(2026, 11, 25), True),  # Wednesday before Thanksgiving
        (date(2026, 11, 26), False),  # Thanksgiving
        (date(2026, 11, 27), True),  # the Friday after (an early close)
        (date(2026, 11, 28), False),  # Saturday
        (date(2026, 11, 29), False),  # Sunday
        (date(2026, 12, 25), False),  # Christmas
        (date(2026, 7, 3), False),  # Independence Day observed on the Friday
        (date(2027, 1, 1), False),  # New Year's Day
        (date(2026, 4, 3), False),  # Good Friday: an exchange holiday, not a federal one
    ],
)
def test_trading_days(day, trading):
    assert is_trading_day(day) is trading


def test_session_bounds_are_new_york_times_across_daylight_saving():
    assert session_open(date(2026, 7, 1)).astimezone(UTC) == datetime(2026, 7, 1, 13, 30, tzinfo=UTC)
    assert session_close(date(2026, 12, 1)).astimezone(UTC) == datetime(2026, 12, 1, 21, 0, tzinfo=UTC)


def test_next_trading_day_skips_holidays_and_weekends():
    assert next_trading_day(date(2026, 11, 25)) == date(2026, 11, 27)
    assert next_trading_day(date(2026, 11, 27)) == date(2026, 11, 30)
    assert next_trading_day(date(2026, 12, 24)) == date(2026, 12, 28)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (ny(2026, 11, 28, 12, 0), date(2026, 11, 27)),  # Saturday: Friday's session
        (ny(2026, 11, 30, 8, 0), date(2026, 11, 30)),  # Monday before the open: still Monday
        (ny(2026, 11, 26, 12, 0), date(2026, 11, 25)),  # Thanksgiving: Wednesday
        (datetime(2026, 12, 1, 3, 0, tzinfo=UTC), date(2026, 11, 30)),  # still Monday evening in New York
    ],
)
def test_latest_trading_day(now, expected):
    assert latest_trading_day(now) == expected


@pytest.mark.parametrize(
    ("now", "is_open"),
    [
        (ny(2026, 11, 25, 9, 29, 59), False),
        (ny(2026, 11, 25, 9, 30), True),
        (ny(2026, 11, 25, 15, 59, 59), True),
        (ny(2026, 11, 25, 16, 0), False),
        (ny(2026, 11, 26, 11, 0), False),  # Thanksgiving
        (ny(2026, 11, 28, 11, 0), False),  # Saturday
        (datetime(2026, 11, 25, 15, 0, tzinfo=UTC), True),  # 10:00 in New York
    ],
)
def test_is_market_open(now, is_open):
    assert is_market_open(now) is is_open


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (ny(2026, 11, 25, 8, 0), ny(2026, 11, 25, 9, 30)),  # before the open: today's open
        (ny(2026, 11, 25, 9, 30), ny(2026, 11, 27, 9, 30)),  # at the open: strictly after, so the next one
        (ny(2026, 11, 25, 12, 0), ny(2026, 11, 27, 9, 30)),  # in session, over Thanksgiving
        (ny(2026, 11, 27, 17, 0), ny(2026, 11, 30, 9, 30)),  # Friday evening: Monday
        (ny(2026, 11, 28, 8, 0), ny(2026, 11, 30, 9, 30)),  # Saturday morning: Monday
    ],
)
def test_next_session_open(now, expected):
    assert next_session_open(now) == expected


def test_naive_times_are_refused():
    with pytest.raises(ValueError, match="timezone"):
        is_market_open(datetime(2026, 11, 25, 10, 0))


@pytest.mark.parametrize(
    ("day", "close"),
    [
        (date(2026, 11, 27), ny(2026, 11, 27, 13)),  # the day after Thanksgiving
        (date(2026, 12, 24), ny(2026, 12, 24, 13)),  # Christmas Eve
        (date(2025, 7, 3), ny(2025, 7, 3, 13)),  # the day before Independence Day
        (date(2026, 12, 23), ny(2026, 12, 23, 16)),
    ],
)
def test_early_closes_end_the_session_at_13_00(day, close):
    assert session_close(day) == close
    assert is_market_open(close - timedelta(minutes=1))
    assert not is_market_open(close)
    assert next_session_open(close) == session_open(next_trading_day(day))


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore:Series.values:Warning")
def test_the_calendar_agrees_with_exchange_calendars_xnys_day_by_day():
    xcals = pytest.importorskip("exchange_calendars")
    first, last = date(2000, 1, 1), date(2030, 12, 31)
    xnys = xcals.get_calendar("XNYS", start=first.isoformat(), end=last.isoformat())
    schedule = xnys.schedule
    theirs = {
        day.date(): (opens.to_pydatetime(), closes.to_pydatetime())
        for day, opens, closes in zip(schedule.index, schedule["open"], schedule["close"], strict=True)
    }
    ours = {}
    day = first
    while day <= last:
        if is_trading_day(day):
            ours[day] = (session_open(day), session_close(day))
        day += timedelta(days=1)

    assert sorted(set(ours) ^ set(theirs)) == []
    assert [day for day in ours if ours[day] != theirs[day]] == []


def test_a_day_beyond_the_calendar_is_answered_without_failing_or_hanging():
    # The calendar's table ends with 2099; beyond it (a date typed into /open, say) every weekday counts.
    assert next_trading_day(date(2099, 12, 31)) == date(2100, 1, 1)  # a Friday
    assert is_trading_day(date(9999, 12, 31))  # a Friday
    assert not is_trading_day(date(9999, 12, 25))  # a Saturday
    assert session_close(date(9999, 12, 31)) == ny(9999, 12, 31, 16, 0)
