"""bot/options/nyse_days.py is NYSE's calendar as the `holidays` package (pinned in pyproject.toml) gives it, written
out so that no command pays for importing `holidays`, which loads every country's calendar (about 0.2 s) to find
NYSE's. After upgrading `holidays`, rewrite the table with `python -m tests.core.test_nyse_days`.
(tests/runtime/test_market_hours.py holds the calendar to exchange-calendars' XNYS, an independent source.)"""

from __future__ import annotations

import re
import sys
from datetime import date, time
from pathlib import Path

import holidays

from bot.options import nyse_days
from bot.options.market_hours import FIRST_DAY, LAST_DAY

# `holidays` gives an early close's time only in its name: "Christmas Eve (markets close at 1:00pm)".
EARLY_CLOSE = re.compile(r"close at (\d{1,2}):(\d{2})\s*([ap]m)", re.IGNORECASE)


def close_time_in(name: str) -> time:
    found = EARLY_CLOSE.search(name)
    assert found is not None, f"no closing time in {name!r}"
    hour, minute, half = int(found[1]), int(found[2]), found[3].lower()
    return time(hour % 12 + (12 if half == "pm" else 0), minute)


TABLE = Path(nyse_days.__file__)
HEADER = '''"""NYSE's closed days and early closes, one line a year: `YYYY MM-DD ... | MM-DD[@HH:MM] ...`
(an early close at 13:00 unless a time is given). Written by `python -m tests.core.test_nyse_days` from the
`holidays` package, which tests/core/test_nyse_days.py holds it to; read by bot/options/market_hours.py."""

YEARS = """
'''


def year_line(year: int) -> str:
    closed = holidays.financial_holidays("NYSE", years=year)
    half_days = holidays.financial_holidays("NYSE", years=year, categories=(holidays.HALF_DAY,))
    early = []
    for day, name in sorted(half_days.items()):
        close = close_time_in(name)
        early.append(f"{day:%m-%d}" + ("" if close == time(13, 0) else f"@{close:%H:%M}"))
    return f"{year} {' '.join(f'{day:%m-%d}' for day in sorted(closed))} | {' '.join(early)}".rstrip()


def table() -> str:
    lines = [year_line(year) for year in range(FIRST_DAY.year, LAST_DAY.year + 1)]
    return HEADER + "\n".join(lines) + '\n"""\n'


def test_the_table_is_the_holidays_packages_nyse_calendar() -> None:
    assert TABLE.read_text(encoding="utf-8") == table(), "rewrite it: python -m tests.core.test_nyse_days"


def test_the_table_answers_as_the_package_does() -> None:
    from bot.options.market_hours import is_trading_day, session_close

    for year in (1990, 2001, 2026, 2099):
        closed = holidays.financial_holidays("NYSE", years=year)
        early = holidays.financial_holidays("NYSE", years=year, categories=(holidays.HALF_DAY,))
        day = date(year, 1, 1)
        while day.year == year:
            assert is_trading_day(day) == (day.weekday() < 5 and day not in closed), day
            if day in early:
                assert session_close(day).time() == close_time_in(early[day]), day
            day = date.fromordinal(day.toordinal() + 1)


if __name__ == "__main__":
    TABLE.write_text(table(), encoding="utf-8")
    print(f"wrote {TABLE}", file=sys.stderr)
