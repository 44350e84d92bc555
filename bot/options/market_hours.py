"""The US options market calendar: NYSE trading days and sessions, 09:30 to 16:00 New York, or to the early close
(13:00 on the day after Thanksgiving, Christmas Eve, ...).

The `holidays` package keeps NYSE's calendar (its closed days and, as "half days", its early closes): it imports in
a tenth of the time exchange-calendars takes with pandas, which every command that asks for a trading day would
pay; tests/runtime/test_market_hours.py holds it to exchange-calendars' XNYS day by day.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, tzinfo
from functools import cache, lru_cache
from zoneinfo import ZoneInfo

MARKET_TZ = ZoneInfo("America/New_York")
OPEN_TIME = time(9, 30)
CLOSE_TIME = time(16, 0)
# The days the calendar answers for: a date outside them is refused where it is read (the command line).
FIRST_DAY = date(1990, 1, 1)
LAST_DAY = date(2099, 12, 31)
_DAY = timedelta(days=1)


# `holidays` gives an early close's time only in its name: "Christmas Eve (markets close at 1:00pm)".
_EARLY_CLOSE = re.compile(r"close at (\d{1,2}):(\d{2})\s*([ap]m)", re.IGNORECASE)
_USUAL_EARLY_CLOSE = time(13, 0)


@cache
def _holidays(year: int) -> frozenset[date]:
    # Building a holiday table is slow next to a set lookup, and the stepping simulator asks once per tick. Imported
    # here: a command that asks the calendar nothing starts without it.
    import holidays

    return frozenset(holidays.financial_holidays("NYSE", years=year))


@cache
def _early_closes(year: int) -> dict[date, time]:
    import holidays

    half_days = holidays.financial_holidays("NYSE", years=year, categories=(holidays.HALF_DAY,))
    return {day: _close_time(name) for day, name in half_days.items()}


def _close_time(name: str) -> time:
    found = _EARLY_CLOSE.search(name)
    if found is None:
        return _USUAL_EARLY_CLOSE
    hour, minute, half = int(found[1]), int(found[2]), found[3].lower()
    return time(hour % 12 + (12 if half == "pm" else 0), minute)


def _market_local(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"{now!r} has no timezone; market times must be timezone-aware.")
    return now.astimezone(MARKET_TZ)


def trading_day(at: datetime, zone: tzinfo = MARKET_TZ) -> date:
    """The desk's day of a moment: its date in the desk's zone (New York unless `timezone` says otherwise). Risk's
    daily loss, /status, /pnl, the reports and the end-of-day job all count days by this one rule."""
    return at.astimezone(zone).date()


def is_trading_day(d: date) -> bool:
    return d.weekday() < 5 and d not in _holidays(d.year)


@lru_cache(maxsize=512)  # pure in the date, and asked on every tick
def session_open(d: date) -> datetime:
    return datetime.combine(d, OPEN_TIME, tzinfo=MARKET_TZ)


@lru_cache(maxsize=512)
def session_close(d: date) -> datetime:
    """16:00 New York, or the early close of a short session."""
    return datetime.combine(d, _early_closes(d.year).get(d, CLOSE_TIME), tzinfo=MARKET_TZ)


def next_trading_day(d: date) -> date:
    """The first trading day strictly after `d`."""
    d += _DAY
    while not is_trading_day(d):
        d += _DAY
    return d


def previous_trading_day(d: date) -> date:
    """The last trading day strictly before `d`."""
    d -= _DAY
    while not is_trading_day(d):
        d -= _DAY
    return d


def latest_trading_day(now: datetime) -> date:
    """The latest trading day on or before `now`'s New York date (today's date even before the open)."""
    d = _market_local(now).date()
    while not is_trading_day(d):
        d -= _DAY
    return d


def is_market_open(now: datetime) -> bool:
    local = _market_local(now)
    return is_trading_day(local.date()) and session_open(local.date()) <= local < session_close(local.date())


def next_session_open(now: datetime) -> datetime:
    """The next session open strictly after `now`: today's 09:30 if it is still ahead, else the next day's."""
    local = _market_local(now)
    today = local.date()
    if is_trading_day(today) and local < session_open(today):
        return session_open(today)
    return session_open(next_trading_day(today))
