"""The pure model of the daily report: positions replayed from parsed ledger events, fill by fill.

Each fill's realized P&L and, at a close, the position's whole realized P&L come from the domain's own
fold (`Position.with_fill`), not from what the ledger line says, so this is the reference the fast scan
of the file (`ledger_scan.py`: DuckDB reads, polars adds up) is held to. It reports only from a ledger that
verifies; with a best effort, from the lines that can be read and replayed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date, datetime, tzinfo
from decimal import Decimal, DefaultContext, localcontext
from pathlib import Path

from bot.analytics.book import DailyBook, Fill
from bot.analytics.tally import DayReport
from bot.options.errors import TradeError
from bot.options.ledger_verify import verify_events
from bot.options.positions import Position
from bot.options.trade_ledger import LedgerError, TradeEvent, apply_event, parse_line


# An object with slots, not a dataclass: `report daily` imports this module, and a dataclass takes Python 3.11 ~1.5 ms
# to make.
class Checked:
    __slots__ = ("events", "problems")

    def __init__(self) -> None:
        self.events: list[TradeEvent] = []  # every line that can be read
        self.problems: list[str] = []  # each line that cannot be read, then each that does not verify


def checked_events(path: Path, *, best_effort: bool = False) -> Checked:
    """The ledger's events, checked as `ledger verify` checks them. The first line that cannot be read, else the
    first that does not verify, raises LedgerError naming it; with `best_effort`, each is in `problems` and the
    unreadable lines are left out. A torn last line is not a problem: it is left out."""
    data = path.read_bytes() if path.exists() else b""
    body = data.rpartition(b"\n")[0]
    checked, numbers = Checked(), []
    for number, line in enumerate(body.split(b"\n") if body else [], start=1):
        try:
            checked.events.append(parse_line(path, number, line))
        except LedgerError as error:
            if not best_effort:
                raise
            checked.problems.append(str(error))
            continue
        numbers.append(number)
    verified = verify_events(checked.events, numbers=numbers)
    checked.problems += [f"{path}: {problem}" for problem in verified.problems]
    if verified.problems and not best_effort:
        more = len(verified.problems) - 1
        also = f" (and {more} more; `python -m bot ledger verify` lists them)" if more else ""
        raise LedgerError(f"{checked.problems[0]}{also}")
    return checked


def replayed_fills(events: Iterable[TradeEvent], *, lenient: bool = False) -> Iterator[Fill]:
    """Each event replayed; one that cannot be raises LedgerError (`lenient`: it is left out)."""
    positions: dict[str, Position] = {}
    for number, event in enumerate(events, start=1):
        try:
            # The desk's own arithmetic (28 digits), whatever context the consumer sums in.
            with localcontext(DefaultContext):
                position, action = apply_event(positions, event)
        except TradeError as error:
            if lenient:
                continue
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
    events: Iterable[TradeEvent], zone: tzinfo, first: date | None, last: date | None, *, curve: bool, lenient: bool
) -> DailyBook:
    book = DailyBook(lambda ts: ts.astimezone(zone).date(), first, last, curve=curve)
    book.add(replayed_fills(events, lenient=lenient))
    return book


def daily_reports(
    events: Iterable[TradeEvent],
    zone: tzinfo,
    first: date | None = None,
    last: date | None = None,
    *,
    lenient: bool = False,
) -> list[DayReport]:
    """One report per day in `zone` (see `DailyBook.reports`), from `first` to `last` inclusive."""
    return _book(events, zone, first, last, curve=False, lenient=lenient).reports()


def equity_curve(
    events: Iterable[TradeEvent],
    zone: tzinfo,
    first: date | None = None,
    last: date | None = None,
    *,
    lenient: bool = False,
) -> list[tuple[datetime, Decimal]]:
    """Cumulative realized P&L after each fill of the range, in ledger order."""
    return _book(events, zone, first, last, curve=True, lenient=lenient).equity_curve()
