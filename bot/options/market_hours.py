"""The US options market calendar: NYSE trading days and sessions, 09:30 to 16:00 New York, or to the early close
(13:00 on the day after Thanksgiving, Christmas Eve, ...).

NYSE's closed days and early closes are the `holidays` package's, written out in bot/options/nyse_days.py: importing
`holidays` loads every country's calendar (about 0.2 s, on every command that asks for a trading day);
tests/core/test_nyse_days.py holds the table to the package, and tests/runtime/test_market_hours.py to
exchange-calendars' XNYS day by day.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, tzinfo
from functools import cache, lru_cache
from zoneinfo import ZoneInfo

from bot.options.nyse_days import YEARS

MARKET_TZ = ZoneInfo("America/New_York")
OPEN_TIME = time(9, 30)
CLOSE_TIME = time(16, 0)
# The days the calendar answers for: a date outside them is refused where it is read (the command line).
FIRST_DAY = date(1990, 1, 1)
LAST_DAY = date(2099, 12, 31)
_DAY = timedelta(days=1)


_USUAL_EARLY_CLOSE = time(13, 0)
_NO_HOLIDAYS: tuple[frozenset[date], dict[date, time]] = (frozenset(), {})


@cache
def _lines() -> dict[int, str]:
    """Each year's line of the table, left unread: a command asks about a year or two of its 110."""
    return {int(line[:4]): line[4:] for line in YEARS.strip().splitlines()}


@cache  # the stepping simulator asks every tick
def _year(year: int) -> tuple[frozenset[date], dict[date, time]]:
    """The year's closed days and early closes, read from its line of the table once. Beyond the table every weekday
    counts (a date typed into /open, say): the command line refuses such dates, and a question about one must neither
    fail nor leave the next trading day unfound."""
    line = _lines().get(year)
    if line is None:
        return _NO_HOLIDAYS
    closed_text, _, early_text = line.partition("|")
    early = {}
    for entry in early_text.split():
        day, _, close = entry.partition("@")
        early[_day(year, day)] = time.fromisoformat(close) if close else _USUAL_EARLY_CLOSE
    return frozenset(_day(year, day) for day in closed_text.split()), early


def _day(year: int, month_day: str) -> date:
    month, day = month_day.split("-")
    return date(year, int(month), int(day))


def _market_local(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"{now!r} has no timezone; market times must be timezone-aware.")
    return now.astimezone(MARKET_TZ)


def trading_day(at: datetime, zone: tzinfo = MARKET_TZ) -> date:
    """The desk's day of a moment: its date in the desk's zone (New York unless `timezone` says otherwise). Risk's
    daily loss, /status, /pnl, the reports and the end-of-day job all count days by this one rule."""
    return at.astimezone(zone).date()


def is_trading_day(d: date) -> bool:
    return d.weekday() < 5 and d not in _year(d.year)[0]


@lru_cache(maxsize=512)  # pure in the date, and asked on every tick
def session_open(d: date) -> datetime:
    return datetime.combine(d, OPEN_TIME, tzinfo=MARKET_TZ)


@lru_cache(maxsize=512)
def session_close(d: date) -> datetime:
    """16:00 New York, or the early close of a short session."""
    return datetime.combine(d, _year(d.year)[1].get(d, CLOSE_TIME), tzinfo=MARKET_TZ)


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
