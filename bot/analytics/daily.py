"""The pure model of the daily report: positions replayed from parsed ledger events, fill by fill.

Each fill's realized P&L and, at a close, the position's whole realized P&L come from the domain's own
fold (`Position.with_fill`), not from what the ledger line says, so this is the reference the fast scan
of the file (`ledger_scan.py`: DuckDB reads, polars adds up) is held to.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date, datetime, tzinfo
from decimal import Decimal, DefaultContext, localcontext

from bot.analytics.book import DailyBook, Fill
from bot.analytics.tally import DayReport
from bot.options.errors import TradeError
from bot.options.positions import Position
from bot.options.trade_ledger import LedgerError, TradeEvent, apply_event


def replayed_fills(events: Iterable[TradeEvent]) -> Iterator[Fill]:
    positions: dict[str, Position] = {}
    for number, event in enumerate(events, start=1):
        try:
            # The desk's own arithmetic (28 digits), whatever context the consumer sums in.
            with localcontext(DefaultContext):
                position, action = apply_event(positions, event)
        except TradeError as error:
            raise LedgerError(f"event {number} ({event.event_id}) cannot be replayed: {error}") from None
        yield Fill(
            action.ts,
            action.kind.value,
            position.strategy,
            position.contract.underlying,
            action.fees,
            action.realized_pnl,
            position.realized_pnl,
        )


def _book(
    events: Iterable[TradeEvent], zone: tzinfo, first: date | None, last: date | None, *, curve: bool
) -> DailyBook:
    book = DailyBook(lambda ts: ts.astimezone(zone).date(), first, last, curve=curve)
    book.add(replayed_fills(events))
    return book


def daily_reports(
    events: Iterable[TradeEvent], zone: tzinfo, first: date | None = None, last: date | None = None
) -> list[DayReport]:
    """One report per day in `zone` (see `DailyBook.reports`), from `first` to `last` inclusive."""
    return _book(events, zone, first, last, curve=False).reports()


def equity_curve(
    events: Iterable[TradeEvent], zone: tzinfo, first: date | None = None, last: date | None = None
) -> list[tuple[datetime, Decimal]]:
    """Cumulative realized P&L after each fill of the range, in ledger order."""
    return _book(events, zone, first, last, curve=True).equity_curve()
