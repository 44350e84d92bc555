"""A backtest's tear sheet, from the ledger it wrote: the daily table and totals as `report daily` reads them, and
per strategy (and for the whole desk) realized P&L, trades, win rate, profit factor, average and largest win and
loss, the equity curve's max drawdown, Sharpe and Sortino ratios on daily P&L, and exposure; as JSON, money at cents.
The text and the equity curve a person reads are drawn in bot.render.tearsheet.

Sharpe and Sortino are annualised from daily figures by sqrt(252), on the realized P&L of every trading day of the
range (a quiet day counts as 0), with no risk-free rate: Sharpe = mean / sample standard deviation (ddof 1),
Sortino = mean / downside deviation (the root mean square of the losing days, the others counting 0), as
empyrical computes them. Both are ratios, so they are the same on dollars as on returns over any fixed capital.

Not empyrical-reloaded itself (checked here: the same two numbers): it brings scipy, pandas, bottleneck and an old
peewee (~200 MB) and took 2.3 s to import on this machine, for two formulas of one line each.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any

from bot.analytics.book import report_days
from bot.analytics.daily import checked_events
from bot.analytics.export import money_json
from bot.analytics.ledger_scan import scan_ledger
from bot.analytics.tally import EXACT, ZERO, PeriodReport, Tally, merged
from bot.options.market_hours import session_close, session_open
from bot.options.positions import ActionKind
from bot.options.trade_event import LINE_FIELDS
from bot.options.trade_ledger import TradeEvent

TRADING_DAYS_PER_YEAR = 252
CENT = Decimal("0.01")
DESK = "all"  # the row of the whole desk


@dataclass(frozen=True, slots=True)
class StrategySheet:
    name: str
    tally: Tally  # realized P&L, trades, wins and losses over the range
    max_drawdown: Decimal  # the deepest fall of the cumulative realized P&L (fill by fill) below its peak, from 0
    sharpe: float | None  # None: fewer than two days, or no variation
    sortino: float | None  # None: fewer than two days, or no losing day
    exposure: float  # the share of the range's session time with one of its positions open (0 to 1)


@dataclass(frozen=True, slots=True)
class TearSheet:
    period: PeriodReport  # the daily table, as `python -m bot report daily` reads the same ledger
    desk: StrategySheet
    strategies: list[StrategySheet]
    curve: list[tuple[datetime, Decimal]]  # the desk's cumulative realized P&L after each fill
    events: list[TradeEvent]  # the range's fills, in ledger order

    @property
    def rows(self) -> list[StrategySheet]:
        return [*self.strategies, self.desk]


def tear_sheet(ledger: Path, zone: tzinfo, first: date, last: date) -> TearSheet:
    """The tear sheet of the ledger's days from `first` to `last` (a ledger that does not verify raises
    LedgerError naming its first wrong line)."""
    period = PeriodReport(first, last, scan_ledger(ledger, zone, first, last).reports)
    events = [e for e in checked_events(ledger).events if first <= e.ts.astimezone(zone).date() <= last]
    sessions = [(session_open(d), session_close(d)) for d in report_days(set(), first, last)]
    by_strategy = period.by_strategy
    rows = [
        _sheet(name, tally, [e for e in events if e.strategy == name], period, sessions)
        for name, tally in by_strategy.items()
    ]
    desk = _sheet(DESK, merged(list(by_strategy.values())), events, period, sessions)
    return TearSheet(period, desk, rows, _cumulative(events), events)


def _sheet(
    name: str,
    tally: Tally,
    events: list[TradeEvent],
    period: PeriodReport,
    sessions: list[tuple[datetime, datetime]],
) -> StrategySheet:
    daily = [
        float(day.totals.realized_pnl if name == DESK else day.by_strategy.get(name, Tally()).realized_pnl)
        for day in period.days
    ]
    curve = [value for _, value in _cumulative(events)]
    return StrategySheet(name, tally, max_drawdown(curve), sharpe(daily), sortino(daily), exposure(events, sessions))


def _cumulative(events: Iterable[TradeEvent]) -> list[tuple[datetime, Decimal]]:
    points, total = [], ZERO
    with localcontext(EXACT):
        for event in events:
            total += event.realized_pnl
            points.append((event.ts, total))
    return points


def max_drawdown(curve: Sequence[Decimal]) -> Decimal:
    """The deepest fall of a cumulative P&L curve below its running peak, the peak starting at 0."""
    peak = deepest = ZERO
    for value in curve:
        peak = max(peak, value)
        deepest = max(deepest, peak - value)
    return deepest


def sharpe(daily: Sequence[float]) -> float | None:
    if len(daily) < 2:
        return None
    spread = statistics.stdev(daily)
    return statistics.fmean(daily) / spread * math.sqrt(TRADING_DAYS_PER_YEAR) if spread else None


def sortino(daily: Sequence[float]) -> float | None:
    if len(daily) < 2:
        return None
    downside = math.sqrt(math.fsum(min(value, 0.0) ** 2 for value in daily) / len(daily))
    return statistics.fmean(daily) / downside * math.sqrt(TRADING_DAYS_PER_YEAR) if downside else None


def exposure(events: Iterable[TradeEvent], sessions: Sequence[tuple[datetime, datetime]]) -> float:
    """The share of the sessions' time with at least one of the events' positions open; a position still open at the
    end counts to the last close."""
    if not sessions:
        return 0.0
    opened: dict[str, datetime] = {}
    spans: list[tuple[datetime, datetime]] = []
    for event in events:
        if event.kind is ActionKind.OPEN:
            opened[event.position_id] = event.ts
        elif event.position_qty == 0 and event.position_id in opened:
            spans.append((opened.pop(event.position_id), event.ts))
    spans += [(start, sessions[-1][1]) for start in opened.values()]
    held = timedelta(0)
    for start, end in _union(spans):
        held += sum(
            (min(end, close) - max(start, open_) for open_, close in sessions if start < close and open_ < end),
            timedelta(0),
        )
    total = sum((close - open_ for open_, close in sessions), timedelta(0))
    return held / total


def _union(spans: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged_spans: list[tuple[datetime, datetime]] = []
    for start, end in sorted(spans):
        if merged_spans and start <= merged_spans[-1][1]:
            merged_spans[-1] = (merged_spans[-1][0], max(end, merged_spans[-1][1]))
        else:
            merged_spans.append((start, end))
    return merged_spans


# What it shows -----------------------------------------------------------------------------------------------


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _row_json(row: StrategySheet) -> dict[str, Any]:
    t = row.tally
    return {
        "realized_pnl": money_json(t.realized_pnl),
        "fees": money_json(t.fees),
        "trades": t.trades,
        "positions_closed": t.positions_closed,
        "wins": t.wins,
        "losses": t.losses,
        "win_rate": _rounded(None if t.win_rate is None else float(t.win_rate)),
        "profit_factor": _rounded(None if t.profit_factor is None else float(t.profit_factor)),
        "avg_win": money_json(t.avg_win),
        "avg_loss": money_json(t.avg_loss),
        "largest_win": money_json(t.largest_win),
        "largest_loss": money_json(t.largest_loss),
        "max_drawdown": money_json(row.max_drawdown),
        "sharpe": _rounded(row.sharpe),
        "sortino": _rounded(row.sortino),
        "exposure": _rounded(row.exposure),
    }


def to_json(sheet: TearSheet) -> dict[str, Any]:
    """The tear sheet as JSON-ready data, money at cents."""
    return {
        "first": sheet.period.first.isoformat(),
        "last": sheet.period.last.isoformat(),
        "days": [
            {
                "date": day.day.isoformat(),
                "realized_pnl": money_json(day.totals.realized_pnl),
                "fees": money_json(day.totals.fees),
                "trades": day.totals.trades,
                "positions_opened": day.positions_opened,
                "positions_closed": day.totals.positions_closed,
                "max_drawdown": money_json(day.max_drawdown),
            }
            for day in sheet.period.days
        ],
        "strategies": {row.name: _row_json(row) for row in sheet.strategies},
        "total": _row_json(sheet.desk),
        "annualisation": "daily realized P&L, sqrt(252), no risk-free rate",
    }


# Its files ---------------------------------------------------------------------------------------------------


def trades_csv(events: Iterable[TradeEvent]) -> str:
    """One row per fill with the ledger's fields, in ledger order."""
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=LINE_FIELDS)
    writer.writeheader()
    writer.writerows(event.json_fields() for event in events)
    return text.getvalue()
