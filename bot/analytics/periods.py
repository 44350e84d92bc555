"""The periods traders ask P&L for: today, this week (from Monday), this month (from the 1st)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Literal

Period = Literal["day", "week", "month"]
PERIODS: tuple[Period, ...] = ("day", "week", "month")


def period_days(period: Period, today: date) -> tuple[date, date]:
    """The first and last day (inclusive) of `period` up to `today`."""
    if period == "week":
        return today - timedelta(days=today.weekday()), today
    if period == "month":
        return today.replace(day=1), today
    return today, today
