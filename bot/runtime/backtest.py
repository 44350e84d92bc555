"""Backtests: the one desk (`open_desk`, with its strategies, exit rules, risk limits, paper executor, ledger and
message sink) on a simulated clock through every trading day of a range, as fast as the machine goes, on the
simulated market or on recorded quotes; then the tear sheet of the ledger it wrote, in its own folder.

Each day is stepped as the demo steps its day (`Desk.simulate` to the close, each tick handled to the end, expiries
settled at the close), and one desk goes on from one day to the next: a backtest of D1..D3 writes what demo runs of
D1, D2 and D3 on one storage write (tests/backtest). The desk opened again each morning would resume what it held
from the ledger; kept open it also keeps its trailing highs exactly, where a restart takes back the saved ones (up to
1% lower): only a position held overnight under a trailing stop can tell the two apart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TextIO

from bot.analytics.tearsheet import TearSheet, tear_sheet, trades_csv
from bot.options.clock import SimulatedClock
from bot.options.market_hours import is_trading_day, session_close, session_open, trading_day
from bot.options.quotes import Quote
from bot.options.replay_feed import ReplayFeed
from bot.options.sim_market import SimulatedFeed
from bot.options.trade_ledger import TradeEvent, last_event
from bot.paths import StorageError, ledger_path, write_atomically
from bot.render.position_view import PositionView
from bot.render.text import money
from bot.runtime.demo_folder import BACKTEST_MARK, is_demo_folder
from bot.runtime.desk import Desk, open_desk, sim_market
from bot.runtime.message_board import Board, ConsoleBoard
from bot.settings import Settings, SettingsError, unquoted_underlyings

log = logging.getLogger(__name__)

BACKTESTS = "backtests"  # the folder under the storage that holds one folder per backtest
_MARK_TEXT = b"This folder holds a backtest's simulated trades (python -m bot backtest); no desk trades here.\n"
EQUITY_PNG, TRADES_CSV, TEAR_SHEET = "equity.png", "trades.csv", "tearsheet.txt"


class MemoryBoard:
    """A message board in memory: the last view of each position's message, for a backtest to keep."""

    channel_id = 0

    def __init__(self) -> None:
        self.views: dict[str, PositionView] = {}

    async def post(self, view: PositionView, *, silent: bool) -> int:
        self.views[view.position.position_id] = view
        return ConsoleBoard.message_id(view.position.position_id)

    async def edit(self, message_id: int, view: PositionView) -> None:
        self.views[view.position.position_id] = view

    async def find(self, position_id: str, since: datetime) -> int | None:
        return ConsoleBoard.message_id(position_id) if position_id in self.views else None


@dataclass(slots=True)
class BacktestResult:
    folder: Path
    first: date
    last: date
    days: list[date] = field(default_factory=list)  # the trading days run to their close, in order
    fills: list[TradeEvent] = field(default_factory=list)  # every fill of the run, a stopped day's included
    events: int = 0  # quotes the desk handled
    still_open: int = 0  # positions open at the end
    interrupted: bool = False  # stopped (Ctrl-C) before the last day's close
    sheet: TearSheet | None = None  # of the days run to their close (None if there were none)
    board: MemoryBoard | None = None  # the position messages, unless they were printed

    @property
    def files(self) -> dict[str, Path]:
        return {name: self.folder / name for name in (EQUITY_PNG, TRADES_CSV, TEAR_SHEET)} if self.sheet else {}


def trading_days(first: date, last: date) -> list[date]:
    return [d for d in (first + timedelta(days=n) for n in range((last - first).days + 1)) if is_trading_day(d)]


def folder_name(first: date, last: date, source: str, now: datetime) -> str:
    """A new backtest's folder under `backtests/`: its range, its market (`seed3`, or the replay file's name) and
    when it ran, so that runs never share a folder."""
    return f"{first}_{last}_{source}_{now:%Y%m%dT%H%M%SZ}"


def claim_backtest_folder(storage: Path) -> None:
    """Mark `storage` as a backtest's, unless it holds a desk's or the demo's trades (StorageError)."""
    if (storage / BACKTEST_MARK).is_file():
        return
    ledger = ledger_path(storage)
    if is_demo_folder(storage) or (ledger.exists() and ledger.stat().st_size > 0):
        whose = "the demo's" if is_demo_folder(storage) else "a desk's"
        raise StorageError(
            f"storage {storage} holds {whose} trades ({ledger}); a backtest never writes into other books: run it "
            f"without --storage (it makes a folder under {BACKTESTS}/) or give it an empty folder or a backtest's own"
        )
    write_atomically(storage / BACKTEST_MARK, _MARK_TEXT)


def only_strategies(settings: Settings, names: Sequence[str] | None) -> Settings:
    """The settings with only the strategies named (all of them for None)."""
    if not names:
        return settings
    known = {s.name for s in settings.strategies}
    if unknown := [name for name in names if name not in known]:
        raise SettingsError(
            f"no strategy named {', '.join(unknown)} in the settings (they have {', '.join(sorted(known)) or 'none'})"
        )
    return settings.replace(strategies=[s for s in settings.strategies if s.name in names])


async def run_backtest(
    settings: Settings,
    storage: Path,
    first: date,
    last: date,
    *,
    seed: int | None = None,
    replay: Path | None = None,
    strategies: Sequence[str] | None = None,
    out: TextIO | None = None,
) -> BacktestResult:
    """Run the desk in `storage` (a backtest's folder: see `claim_backtest_folder`) through the trading days from
    `first` to `last` on the simulated market (`seed`, default the settings') or on the quotes recorded in `replay`,
    then write the tear sheet's files there. Position messages are kept in memory, or printed to `out`.

    Cancelled (Ctrl-C), it stops at once and returns the days done so far, their tear sheet written."""
    days = trading_days(first, last)
    if not days:
        raise SettingsError(f"there is no trading day from {first} to {last}")
    settings = only_strategies(settings, strategies)
    claim_backtest_folder(storage)
    previous = last_event(ledger_path(storage))
    if previous is not None and previous.ts >= session_open(days[0]):
        raise SettingsError(
            f"the backtest in {storage} already has trades after {days[0]} 09:30; give a later --from to go on with "
            "it, or let the backtest make a new folder"
        )
    clock = SimulatedClock(session_open(days[0]))
    feed: SimulatedFeed | ReplayFeed
    if replay is None:
        feed = SimulatedFeed(sim_market(settings, seed), clock)
    else:
        feed = ReplayFeed(replay, clock=clock)
        if problem := unquoted_underlyings(settings, feed.underlyings, f"the replay file {replay}"):
            log.warning("%s: it will not trade", problem)
    memory = MemoryBoard() if out is None else None
    board: Board = memory or ConsoleBoard(out)
    desk = await open_desk(settings, storage, clock=clock, feed=feed, board=board)
    # A backtest stopped half-way is run again, not resumed: nothing waits for the disk but the close.
    desk.ledger.durable = desk.messages.durable = False
    await desk.store.skip_syncs()
    desk.store.hold_writes()
    result = BacktestResult(storage, first, last, board=memory)

    async def keep(event: TradeEvent, position: object) -> None:
        result.fills.append(event)

    def count(symbol: str, quote: Quote) -> None:
        result.events += 1

    desk.manager.subscribe(keep)
    desk.quotes.subscribe(count)
    try:
        if isinstance(feed, SimulatedFeed):
            for day in days:
                await desk.simulate(until=session_close(day))
                _done(result, day, days)
        else:
            await _replay(desk, feed.quotes, days, result)
    except asyncio.CancelledError:
        # Ctrl-C: what is done is kept, and reported below; nothing waits on this task but its caller.
        result.interrupted = True
        log.info("backtest stopped after %d of %d trading days", len(result.days), len(days))
    finally:
        result.still_open = len(desk.manager.open_positions())
        await desk.close()
    if result.days:
        result.sheet = await asyncio.to_thread(_write_sheet, settings, storage, result.days[0], result.days[-1])
    return result


def _done(result: BacktestResult, day: date, days: list[date]) -> None:
    """One line on stderr per simulated week (at its last trading day in the range), and at the end."""
    result.days.append(day)
    following = days[len(result.days)] if len(result.days) < len(days) else None
    if following is None or following.isocalendar()[:2] != day.isocalendar()[:2]:
        pnl = sum((e.realized_pnl for e in result.fills), Decimal(0))
        log.info(
            "backtest: %s done, %d of %d trading days, %d fills, realized P&L %s",
            day,
            len(result.days),
            len(days),
            len(result.fills),
            money(pnl),
        )


async def _replay(desk: Desk, quotes: list[tuple[str, Quote]], days: list[date], result: BacktestResult) -> None:
    """Step the desk through the recorded quotes of `days` as `Desk.simulate` steps the simulated market: the quotes
    of one moment arrive together and are handled to the end before the next, each close settles what expired."""
    clock = desk.clock
    assert isinstance(clock, SimulatedClock)
    wanted = set(days)
    moments: dict[datetime, list[tuple[str, Quote]]] = {}
    for symbol, quote in quotes:
        if quote.ts is not None and trading_day(quote.ts) in wanted:
            moments.setdefault(quote.ts, []).append((symbol, quote))
    if not moments:
        raise SettingsError(f"the replay file has no quotes from {days[0]} to {days[-1]}")
    times = iter(sorted(moments))
    at = next(times, None)
    for day in days:
        close = session_close(day)
        while at is not None and at < close:
            clock.advance(at)
            for symbol, quote in moments[at]:
                desk.quotes.update(symbol, quote)
            await desk.step()
            await asyncio.sleep(0)  # a long recording still lets a Ctrl-C in
            at = next(times, None)
        await desk.settle_expired(close)
        await desk.step()
        _done(result, day, days)


def _write_sheet(settings: Settings, storage: Path, first: date, last: date) -> TearSheet:
    from bot.render.tearsheet import equity_png, render_tear_sheet

    sheet = tear_sheet(ledger_path(storage), settings.zone, first, last)
    write_atomically(storage / EQUITY_PNG, equity_png(sheet, f"backtest {first} to {last}: realized P&L"))
    write_atomically(storage / TRADES_CSV, trades_csv(sheet.events).encode())
    write_atomically(storage / TEAR_SHEET, (render_tear_sheet(sheet) + "\n").encode())
    return sheet
