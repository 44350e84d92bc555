"""The day book: folds fills, in ledger order, into one report per day.

Both ways of reading the ledger feed it: the pure model (`daily.py`, positions replayed from parsed
events) and the fast scan of the file (`ledger_scan.py`). It runs once per fill over a long ledger, so its
loop keeps the day being filled in local variables.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal, localcontext
from typing import Generic, Protocol, TypeVar

from bot.analytics.tally import EXACT, ZERO, DayReport, Tally
from bot.options.market_hours import is_trading_day

Stamp = TypeVar("Stamp")
Stamp_co = TypeVar("Stamp_co", covariant=True)


class Fill(Protocol[Stamp_co]):
    """What the book reads of a fill: the ledger's field names."""

    @property
    def ts(self) -> Stamp_co: ...
    @property
    def kind(self) -> str: ...
    @property
    def strategy(self) -> str: ...
    @property
    def underlying(self) -> str: ...
    @property
    def fees(self) -> Decimal: ...
    @property
    def realized_pnl(self) -> Decimal: ...
    @property
    def realized_pnl_total(self) -> Decimal | str: ...  # the position's whole P&L so far (read at a close)


@dataclass(slots=True)
class _Day:
    groups: dict[tuple[str, str], Tally] = field(default_factory=dict)  # (strategy, underlying) -> tally
    opened: int = 0
    # The day's running realized P&L (from 0), its highest and lowest points and deepest fall so far:
    # enough to join two stretches of the same day read apart (the halves of a file scanned in parallel).
    running: Decimal = ZERO
    high: Decimal = ZERO
    low: Decimal = ZERO
    drawdown: Decimal = ZERO

    def join(self, later: _Day) -> None:
        """Append `later`, the same day's fills that come after these in the ledger."""
        with localcontext(EXACT):
            self._join(later)

    def _join(self, later: _Day) -> None:
        for key, tally in later.groups.items():
            self.groups.setdefault(key, Tally()).merge(tally)
        self.opened += later.opened
        self.drawdown = max(self.drawdown, later.drawdown, self.high - (self.running + later.low))
        self.high = max(self.high, self.running + later.high)
        self.low = min(self.low, self.running + later.low)
        self.running += later.running


class DailyBook(Generic[Stamp]):
    """Fills of the days from `first` to `last` (inclusive; None: unbounded) grouped per day.

    `day_of` gives a fill's day from its time stamp. With `curve`, it also keeps each counted fill's time
    stamp and P&L, in ledger order, for the equity curve.
    """

    def __init__(
        self,
        day_of: Callable[[Stamp], date],
        first: date | None = None,
        last: date | None = None,
        *,
        curve: bool = False,
    ) -> None:
        self.day_of = day_of
        self.first, self.last = first, last
        self.curve: list[tuple[Stamp, Decimal]] | None = [] if curve else None
        self._days: dict[date, _Day] = {}

    def add(self, fills: Iterable[Fill[Stamp]]) -> None:
        with localcontext(EXACT):
            self._add(fills)

    def _add(self, fills: Iterable[Fill[Stamp]]) -> None:
        days, day_of, first, last, curve = self._days, self.day_of, self.first, self.last, self.curve
        current: date | None = None
        book: _Day | None = None
        running = high = low = drawdown = ZERO
        for fill in fills:
            day = day_of(fill.ts)
            if day != current:
                if book is not None:
                    book.running, book.high, book.low, book.drawdown = running, high, low, drawdown
                current = day
                if (first is not None and day < first) or (last is not None and day > last):
                    book = None
                    continue
                book = days.get(day)
                if book is None:
                    book = days[day] = _Day()
                running, high, low, drawdown = book.running, book.high, book.low, book.drawdown
            elif book is None:
                continue
            pnl = fill.realized_pnl
            key = (fill.strategy, fill.underlying)
            tally = book.groups.get(key)
            if tally is None:
                tally = book.groups[key] = Tally()
            tally.realized_pnl += pnl
            tally.fees += fill.fees
            tally.trades += 1
            running += pnl
            if running > high:
                high = running
            else:
                if running < low:
                    low = running
                if high - running > drawdown:
                    drawdown = high - running
            kind = fill.kind
            if kind == "close":
                tally.closed(Decimal(fill.realized_pnl_total))
            elif kind == "open":
                book.opened += 1
            if curve is not None:
                curve.append((fill.ts, pnl))
        if book is not None:
            book.running, book.high, book.low, book.drawdown = running, high, low, drawdown

    def join(self, later: DailyBook[Stamp]) -> None:
        """Append the book of the fills that follow these in the ledger (read apart, e.g. in parallel)."""
        for day, book in later._days.items():
            mine = self._days.get(day)
            if mine is None:
                self._days[day] = book
            else:
                mine.join(book)
        if self.curve is not None:
            self.curve += later.curve or []

    def reports(self) -> list[DayReport]:
        """One report per day with fills, and per trading day of a bounded range (a quiet day shows as 0)."""
        wanted = set(self._days)
        if self.first is not None and self.last is not None:
            span = (self.last - self.first).days + 1
            wanted.update(d for d in (self.first + timedelta(days=n) for n in range(span)) if is_trading_day(d))
            if self.first == self.last:
                wanted.add(self.first)  # a day asked for by name is shown, even a quiet holiday
        return [self._report(day, self._days.get(day) or _Day()) for day in sorted(wanted)]

    @staticmethod
    def _report(day: date, book: _Day) -> DayReport:
        report = DayReport(day, positions_opened=book.opened)
        report.max_drawdown = book.drawdown
        for (strategy, underlying), tally in sorted(book.groups.items()):
            report.totals.merge(tally)
            report.by_strategy.setdefault(strategy, Tally()).merge(tally)
            report.by_underlying.setdefault(underlying, Tally()).merge(tally)
        report.by_underlying = dict(sorted(report.by_underlying.items()))
        return report

    def equity_curve(self) -> list[tuple[Stamp, Decimal]]:
        """Cumulative realized P&L after each counted fill, in ledger order."""
        points: list[tuple[Stamp, Decimal]] = []
        total = ZERO
        with localcontext(EXACT):
            for ts, pnl in self.curve or []:
                total += pnl
                points.append((ts, total))
        return points
