"""Charts benchmark: what the charts on position messages cost, in the same run.

- Drawing: milliseconds per PNG for a position chart (a full mark history of 240 samples, open/add/trim/close
  markers) and for an equity curve (200 points), against a bare figure of the same size with nothing on it
  (matplotlib's floor). Medians of `--repeat` draws after a warm-up.
- Marks: quote updates per second through the quote cache with the position watcher and the charts' mark
  history listening, for 250 open positions each quoted every second, against the cache with the watcher alone
  (`overhead_marks_vs_watcher`: median over three passes of our time / its time).
- Bursts: positions traded in bursts (quotes and fills faster than messages go out) through the real order
  manager, ledger, notifier and message sink, on a board that draws each message's chart as Discord's does;
  `charts_per_message` must be 1 (one chart per delivered post or edit, never one per fill).

The ledger and the message map live in a temporary directory. The last line of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.discord.charts import CAPACITY, PositionCharts
from bot.options.contracts import OptionContract, Right
from bot.options.execution_paper import PaperConfig, PaperExecutor
from bot.options.order_manager import OptionsOrderManager
from bot.options.orders import Side
from bot.options.position_watcher import PositionWatcher
from bot.options.positions import Position, Source
from bot.options.quotes import Quote, QuoteCache
from bot.options.trade_ledger import TradeLedger
from bot.render.charts import blank_chart, equity_curve_png, position_chart_png, render_png
from bot.render.position_view import PositionView
from bot.runtime.message_board import BoardSink
from bot.runtime.message_map import MessageMap
from bot.runtime.options_trade_notifier import OptionsTradeNotifier

T0 = datetime(2026, 11, 25, 14, 30, tzinfo=UTC)  # 09:30 in New York
EXPIRY = date(2026, 11, 27)
MARK_POSITIONS = 250
MARK_ROUNDS = 1_800  # half an hour
BURST_POSITIONS = 5
BURST_ROUNDS = 8
QUOTES_PER_BURST = 20


def contract(strike: int) -> OptionContract:
    return OptionContract("SPY", EXPIRY, Right.CALL, Decimal(strike))


def quote(seconds: float, mid: float) -> Quote:
    price = Decimal(f"{mid:.2f}")
    return Quote(
        bid=price - Decimal("0.01"),
        ask=price + Decimal("0.01"),
        bid_size=50,
        ask_size=50,
        ts=T0 + timedelta(seconds=seconds),
    )


def opened(position_id: str, strike: int) -> Position:
    position, _ = Position(position_id, contract(strike), "bench").with_fill(
        side=Side.BUY,
        qty=5,
        price=Decimal("1.00"),
        fees=Decimal(0),
        ts=T0,
        fill_id=f"f-{position_id}",
        order_id=f"o-{position_id}",
        source=Source.STRATEGY,
    )
    return position


def round_trip() -> Position:
    position = opened("pos-chart", 450)
    for minutes, side, qty, price in (
        (60, Side.BUY, 2, "1.40"),
        (150, Side.SELL, 3, "1.90"),
        (240, Side.SELL, 4, "2.10"),
    ):
        position, _ = position.with_fill(
            side=side,
            qty=qty,
            price=Decimal(price),
            fees=Decimal("0.65") * qty,
            ts=T0 + timedelta(minutes=minutes),
            fill_id=f"f{minutes}",
            order_id=f"o{minutes}",
            source=Source.STRATEGY,
        )
    return position


def median_ms(draw: Callable[[], bytes], repeat: int) -> float:
    draw()  # fonts and caches warm
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        draw()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def drawing(repeat: int) -> dict[str, float]:
    position = round_trip()
    marks = [(T0 + timedelta(minutes=m), 1.0 + m / 200) for m in range(0, 240)]
    equity = [(T0 + timedelta(minutes=2 * n), Decimal(n * 3 - (n % 4) * 7)) for n in range(200)]
    bare_ms = median_ms(lambda: render_png(blank_chart()[0]), repeat)
    position_ms = median_ms(lambda: position_chart_png(position, marks), repeat)
    equity_ms = median_ms(lambda: equity_curve_png(equity, "P&L"), repeat)
    return {
        "position_chart_ms": round(position_ms, 1),
        "equity_curve_ms": round(equity_ms, 1),
        "bare_figure_ms": round(bare_ms, 1),
        "position_vs_bare": round(position_ms / bare_ms, 2),
    }


def marks(storage: Path) -> dict[str, float]:
    positions = [opened(f"pos-{n}", 300 + n) for n in range(MARK_POSITIONS)]
    # A quote a second per contract: above the history's sampling rate, as a live options feed is.
    rounds = [[(p.contract.symbol, quote(r, 1.0 + r / 1000)) for p in positions] for r in range(MARK_ROUNDS)]
    ledger = TradeLedger.open(storage / "marks.jsonl")

    def feed(with_marks: bool) -> tuple[float, PositionCharts | None]:
        quotes = QuoteCache()
        manager = OptionsOrderManager(PaperExecutor(quotes), ledger, positions=positions)
        PositionWatcher(manager, quotes, {"bench": Idle()})  # what listens to every quote today
        charts = PositionCharts(quotes, manager) if with_marks else None
        start = time.perf_counter()
        for ticks in rounds:
            for symbol, tick in ticks:
                quotes.update(symbol, tick)
        return time.perf_counter() - start, charts

    passes = [(feed(False)[0], *feed(True)) for _ in range(3)]
    ledger.close()
    charts = passes[-1][2]
    assert charts is not None
    if charts.samples_held > MARK_POSITIONS * CAPACITY:
        raise AssertionError(f"{charts.samples_held} samples held for {MARK_POSITIONS} positions")
    ticks = MARK_POSITIONS * MARK_ROUNDS
    return {
        "marks_ticks_per_s": round(ticks / min(ours for _, ours, _ in passes)),
        "overhead_marks_vs_watcher": round(statistics.median(ours / bare for bare, ours, _ in passes), 2),
        "samples_per_position": round(charts.samples_held / MARK_POSITIONS, 1),
    }


class Idle:
    """A strategy that is never handed its marks: the bench times the quote path, not the strategies."""

    async def on_position_update(self, position: Position, mark: Decimal) -> None:
        return None


class ChartingBoard:
    """A message board that draws each message's chart as the Discord board does, and counts what it sends."""

    channel_id = 1

    def __init__(self, charts: PositionCharts) -> None:
        self._charts = charts
        self.messages = 0

    async def post(self, view: PositionView, *, silent: bool) -> int:
        await self._charts.png(view)
        self.messages += 1
        return self.messages

    async def edit(self, message_id: int, view: PositionView) -> None:
        await self._charts.png(view)
        self.messages += 1

    async def find(self, position_id: str, since: datetime) -> int | None:
        return None


async def bursts(storage: Path) -> dict[str, float]:
    quotes = QuoteCache()
    now = [T0]
    ledger = TradeLedger.open(storage / "bursts.jsonl")
    manager = OptionsOrderManager(
        PaperExecutor(quotes, PaperConfig(), clock=lambda: now[0]), ledger, clock=lambda: now[0]
    )
    charts = PositionCharts(quotes, manager)
    board = ChartingBoard(charts)
    notifier = OptionsTradeNotifier(BoardSink(board, MessageMap(storage / "message_ids.json"), lambda: {}), quotes)
    manager.subscribe(notifier.on_fill)
    contracts = [contract(440 + n) for n in range(BURST_POSITIONS)]
    ids: list[str] = []
    fills = 0
    seconds = 0.0
    for number in range(BURST_ROUNDS):
        for n, traded in enumerate(contracts):
            for _ in range(QUOTES_PER_BURST):
                seconds += 1
                now[0] = T0 + timedelta(seconds=seconds)
                quotes.update(traded.symbol, quote(seconds, 1.0 + number / 20 + n / 100))
            if number == 0:
                ids.append((await manager.open_position(traded, 20, strategy="bench")).position_id)
                fills += 1
                continue
            await manager.add(ids[n], 1)
            await manager.trim(ids[n], qty=2)
            fills += 2
        await notifier.flush()
    ledger.close()
    return {
        "burst_fills": fills,
        "burst_messages": board.messages,
        "charts_per_message": round(charts.rendered / board.messages, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15, help="draws per chart kind (default 15)")
    args = parser.parse_args()
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="optiondesk-charts-") as tmp:
        storage = Path(tmp)
        results |= drawing(args.repeat)
        print(f"drawing: {results}", file=sys.stderr)
        results |= marks(storage)
        results |= asyncio.run(bursts(storage))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
