"""The US options market calendar: NYSE trading days and the 09:30-16:00 New York session.

Early closes (13:00 on the day after Thanksgiving, Christmas Eve, ...) are not modelled: every trading day
is a full session.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import cache, lru_cache
from zoneinfo import ZoneInfo

import holidays

MARKET_TZ = ZoneInfo("America/New_York")
OPEN_TIME = time(9, 30)
CLOSE_TIME = time(16, 0)
# The days the calendar answers for: a date outside them is refused where it is read (the command line).
FIRST_DAY = date(1990, 1, 1)
LAST_DAY = date(2099, 12, 31)
_DAY = timedelta(days=1)


@cache
def _holidays(year: int) -> frozenset[date]:
    # Building a holiday table is slow next to a set lookup, and the stepping simulator asks once per tick.
    return frozenset(holidays.financial_holidays("NYSE", years=year))


def _market_local(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"{now!r} has no timezone; market times must be timezone-aware.")
    return now.astimezone(MARKET_TZ)


def is_trading_day(d: date) -> bool:
    return d.weekday() < 5 and d not in _holidays(d.year)


@lru_cache(maxsize=512)  # pure in the date, and asked on every tick
def session_open(d: date) -> datetime:
    return datetime.combine(d, OPEN_TIME, tzinfo=MARKET_TZ)


@lru_cache(maxsize=512)
def session_close(d: date) -> datetime:
    return datetime.combine(d, CLOSE_TIME, tzinfo=MARKET_TZ)


def next_trading_day(d: date) -> date:
    """The first trading day strictly after `d`."""
    d += _DAY
    while not is_trading_day(d):
        d += _DAY
    return d


def latest_trading_day(now: datetime) -> date:
    """The latest trading day on or before `now`'s New York date (today's date even before the open)."""
    d = _market_local(now).date()
    while not is_trading_day(d):
        d -= _DAY
    return d


def is_market_open(now: datetime) -> bool:
    local = _market_local(now)
    return is_trading_day(local.date()) and OPEN_TIME <= local.time() < CLOSE_TIME


def next_session_open(now: datetime) -> datetime:
    """The next session open strictly after `now`: today's 09:30 if it is still ahead, else the next day's."""
    local = _market_local(now)
    today = local.date()
    if is_trading_day(today) and local < session_open(today):
        return session_open(today)
    return session_open(next_trading_day(today))
