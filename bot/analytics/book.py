"""The day book: the pure model's fold of fills, in ledger order, into one report per day, and the pieces
every reader shares (which days a report shows, a day's report from its tallies)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from decimal import Decimal, localcontext
from typing import NamedTuple

from bot.analytics.tally import EXACT, ZERO, DayReport, Tally
from bot.options.market_hours import is_trading_day


# A fill is a NamedTuple and a day an object with slots, not dataclasses: `report daily` imports this module, a
# dataclass takes Python 3.11 ~1.5 ms to make, and each of a long ledger's fills is built in a third of the time.
class Fill(NamedTuple):
    """What the reports need of one fill."""

    ts: datetime
    kind: str
    strategy: str
    underlying: str
    fees: Decimal
    realized_pnl: Decimal
    realized_pnl_total: Decimal  # the position's, after this fill


class _Day:
    __slots__ = ("drawdown", "groups", "high", "opened", "running")

    def __init__(self) -> None:
        self.groups: dict[tuple[str, str], Tally] = {}  # (strategy, underlying) -> tally
        self.opened = 0
        self.running = ZERO  # the day's realized P&L so far, from 0
        self.high = ZERO
        self.drawdown = ZERO


class DailyBook:
    """Fills of the days from `first` to `last` (inclusive; None: unbounded) grouped per day.

    `day_of` gives a fill's day. With `curve`, it also keeps each counted fill's time and P&L, in ledger
    order, for the equity curve.
    """

    def __init__(
        self,
        day_of: Callable[[datetime], date],
        first: date | None = None,
        last: date | None = None,
        *,
        curve: bool = False,
    ) -> None:
        self.day_of = day_of
        self.first, self.last = first, last
        self.curve: list[tuple[datetime, Decimal]] | None = [] if curve else None
        self._days: dict[date, _Day] = {}

    def add(self, fills: Iterable[Fill]) -> None:
        with localcontext(EXACT):
            for fill in fills:
                self._add(fill)

    def _add(self, fill: Fill) -> None:
        day = self.day_of(fill.ts)
        if (self.first is not None and day < self.first) or (self.last is not None and day > self.last):
            return
        book = self._days.get(day)
        if book is None:
            book = self._days[day] = _Day()
        tally = book.groups.get((fill.strategy, fill.underlying))
        if tally is None:
            tally = book.groups[(fill.strategy, fill.underlying)] = Tally()
        tally.realized_pnl += fill.realized_pnl
        tally.fees += fill.fees
        tally.trades += 1
        if fill.kind == "close":
            tally.closed(fill.realized_pnl_total)
        elif fill.kind == "open":
            book.opened += 1
        book.running += fill.realized_pnl
        book.high = max(book.high, book.running)
        book.drawdown = max(book.drawdown, book.high - book.running)
        if self.curve is not None:
            self.curve.append((fill.ts, fill.realized_pnl))

    def reports(self) -> list[DayReport]:
        empty = _Day()
        return [
            day_report(day, book.groups, book.opened, book.drawdown)
            for day, book in (
                (d, self._days.get(d, empty)) for d in report_days(set(self._days), self.first, self.last)
            )
        ]

    def equity_curve(self) -> list[tuple[datetime, Decimal]]:
        """Cumulative realized P&L after each counted fill, in ledger order."""
        points: list[tuple[datetime, Decimal]] = []
        total = ZERO
        with localcontext(EXACT):
            for ts, pnl in self.curve or []:
                total += pnl
                points.append((ts, total))
        return points


def report_days(with_fills: set[date], first: date | None, last: date | None) -> list[date]:
    """The days a report shows: each day with fills, and each trading day of a bounded range (a quiet day
    shows as 0); a single day asked for by name is shown even if it is a quiet holiday."""
    wanted = set(with_fills)
    if first is not None and last is not None:
        span = (last - first).days + 1
        wanted.update(d for d in (first + timedelta(days=n) for n in range(span)) if is_trading_day(d))
        if first == last:
            wanted.add(first)
    return sorted(wanted)


def day_report(day: date, groups: dict[tuple[str, str], Tally], opened: int, drawdown: Decimal) -> DayReport:
    """A day's report from its tallies per (strategy, underlying)."""
    report = DayReport(day, positions_opened=opened, max_drawdown=drawdown)
    for (strategy, underlying), tally in sorted(groups.items()):
        report.totals.merge(tally)
        report.by_strategy.setdefault(strategy, Tally()).merge(tally)
        report.by_underlying.setdefault(underlying, Tally()).merge(tally)
    report.by_underlying = dict(sorted(report.by_underlying.items()))
    return report
