"""Position-watcher benchmark: quote ticks per second routed through the quote cache and the position watcher to
1,000 open positions with the exit rules evaluated, against a bare loop that evaluates the same rules on the same
ticks directly, in the same run, with throttling off (interval=0).

One tick is one contract's quote for one position: each position has its own contract, so each tick reaches
exactly one position. Ticks are fed in rounds (every contract quoted once, then the watcher delivers), so that
the watcher's latest-mark mailbox never coalesces a tick away and both paths see every tick. Prices follow a
seeded random walk per contract, prebuilt before timing, so that stop losses, trailing stops and profit targets
fire; both paths record the ExitDecision of every tick and must agree before anything is printed. The bench
never trades: the strategy records its decisions instead of acting on them.

The watcher path times the whole pipeline: `QuoteCache.update` -> `PositionWatcher.on_quote` (mark, mailbox)
-> `deliver_all` -> `Strategy.on_position_update` -> high-water mark + `decide_exit`. The bare path times, per
tick, the quote's mark + the same high-water mark + `decide_exit`, with the same rules and clock. A third path
delivers through the strategy's own worker task (`watcher.run`), as the live runtime does.

Each pass runs the three paths interleaved, 10 rounds at a time in rotating order, so a busy moment of the
machine lands on all of them. `ticks_per_s` (and the other rates) come from the best pass; `overhead_vs_bare`
is the median over passes of watcher seconds / bare seconds in the same pass (lower is better).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterable
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.options.contracts import OptionContract, Right
from bot.options.errors import OrderRejected
from bot.options.ids import new_id
from bot.options.market_hours import MARKET_TZ
from bot.options.order_manager import OptionsOrderManager
from bot.options.orders import Fill, OrderRequest, Side
from bot.options.position_watcher import PositionWatcher
from bot.options.positions import Position, Source
from bot.options.quotes import Quote, QuoteCache
from bot.options.trade_ledger import TradeLedger
from bot.strategies.base import Strategy, StrategyDesk
from bot.strategies.options.exit_rules import ExitAction, ExitDecision, ExitRules, decide_exit, high_water_mark

POSITIONS = 1_000
STRATEGY = "bench"
SEED = 20_240_607
ENTRY = Decimal("1.00")
CENT = Decimal("0.01")
FLOOR = Decimal("0.05")
STEP_VOL = 0.03  # per-round log-return volatility of each contract's walk
# A trading day, mid-session: the 10-minute time stop stays off, the other rules decide.
NOW = datetime(2025, 6, 4, 11, 0, tzinfo=MARKET_TZ)
EXPIRY = date(2025, 6, 20)

Tick = tuple[str, Quote]
Decision = tuple[str, ExitDecision]


class NoTradeExecutor:
    """The manager needs an executor; the bench never trades, so any order is refused."""

    async def execute(self, order: OrderRequest) -> AsyncIterator[Fill]:
        raise OrderRejected("the watcher bench never trades")
        yield  # pragma: no cover - makes this an async generator


class RecordingStrategy(Strategy):
    """`Strategy.on_position_update` with the trade replaced by a record of the decision.

    Same rules, same high-water bookkeeping, same desk clock as the base class. The bare loop calls
    `evaluate` directly; the watcher reaches it through `on_position_update`.
    """

    def __init__(self, name: str, exits: ExitRules) -> None:
        super().__init__(name, exits)
        self.decisions: list[Decision] = []

    def evaluate(self, position: Position, mark: Decimal) -> None:
        high = high_water_mark(position, self._highs.get(position.position_id), mark)
        self._highs[position.position_id] = high
        decision = decide_exit(
            self.exits, position, mark, now=self.desk.now(), session_close=self.desk.session_close(), high_water=high
        )
        self.decisions.append((position.position_id, decision))

    async def on_position_update(self, position: Position, mark: Decimal) -> None:
        self.evaluate(position, mark)


def build_positions(count: int) -> list[Position]:
    """`count` open positions of 10 contracts at 1.00, each on its own contract."""
    positions: list[Position] = []
    for index in range(count):
        right = Right.CALL if index % 2 == 0 else Right.PUT
        contract = OptionContract("SPY", EXPIRY, right, Decimal(100 + index))
        position, _ = Position(new_id("pos"), contract, STRATEGY).with_fill(
            side=Side.BUY,
            qty=10,
            price=ENTRY,
            fees=Decimal(0),
            ts=NOW,
            fill_id=new_id("fill"),
            order_id=new_id("ord"),
            source=Source.STRATEGY,
            actor="bench",
        )
        positions.append(position)
    return positions


def build_rounds(positions: list[Position], rounds: int, seed: int) -> list[list[Tick]]:
    """Per round, one quote per position's contract: a seeded random walk of the mid, 2-place Decimals."""
    rng = random.Random(seed)
    prices = [ENTRY] * len(positions)
    symbols = [position.contract.symbol for position in positions]
    result: list[list[Tick]] = []
    for _ in range(rounds):
        ticks: list[Tick] = []
        for index, symbol in enumerate(symbols):
            moved = Decimal(math.exp(rng.gauss(0.0, STEP_VOL))) * prices[index]
            price = max(FLOOR, moved.quantize(CENT))
            prices[index] = price
            ticks.append((symbol, Quote(bid=price - CENT, ask=price + CENT)))
        result.append(ticks)
    return result


def _desk(manager: OptionsOrderManager, quotes: QuoteCache) -> StrategyDesk:
    return StrategyDesk(STRATEGY, manager, quotes, clock=lambda: NOW, watch=lambda symbols: None)


def _manager(ledger: TradeLedger, positions: list[Position]) -> OptionsOrderManager:
    return OptionsOrderManager(NoTradeExecutor(), ledger, clock=lambda: NOW, positions=positions)


class WatcherPath:
    """Ticks through `QuoteCache.update` -> `PositionWatcher` -> `RecordingStrategy.on_position_update`.

    Delivery after each round is `await watcher.deliver_all()` (as the stepped demo day does), or with
    `worker=True` the strategy's own `watcher.run` task, as the live runtime does.
    """

    def __init__(self, ledger: TradeLedger, positions: list[Position], *, worker: bool) -> None:
        manager = _manager(ledger, positions)
        self.quotes = QuoteCache()
        self.strategy = RecordingStrategy(STRATEGY, ExitRules())
        self.strategy.bind(_desk(manager, self.quotes))
        self.watcher = PositionWatcher(manager, self.quotes, {STRATEGY: self.strategy}, interval=0.0)
        if self.watcher.watched != len(positions):
            raise AssertionError(f"the watcher watches {self.watcher.watched} positions, not {len(positions)}")
        self._worker = worker
        self._task: asyncio.Task[None] | None = None
        self.fed = 0

    async def start(self) -> None:
        if self._worker:
            self._task = asyncio.create_task(self.watcher.run(STRATEGY))
            await asyncio.sleep(0)  # let the worker reach its mailbox

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self.watcher.delivered != self.fed or self.watcher.pending():
            raise AssertionError(f"the watcher delivered {self.watcher.delivered} of {self.fed} ticks")

    async def feed(self, rounds: list[list[Tick]]) -> float:
        """Seconds to route these rounds to the strategy, each round delivered before the next starts."""
        update = self.quotes.update
        watcher = self.watcher
        deliver_all = watcher.deliver_all
        worker = self._task is not None
        expected = self.fed
        start = time.perf_counter()
        for ticks in rounds:
            for symbol, quote in ticks:
                update(symbol, quote)
            if worker:
                expected += len(ticks)
                # Hand the loop to the worker (same thread, one turn is usually enough) until it caught up.
                while watcher.delivered < expected:  # noqa: ASYNC110
                    await asyncio.sleep(0)
            else:
                await deliver_all()
        elapsed = time.perf_counter() - start
        self.fed += sum(len(ticks) for ticks in rounds)
        return elapsed


class BarePath:
    """The same rule evaluation on the same ticks, called directly: each tick comes with its position."""

    def __init__(self, ledger: TradeLedger, positions: list[Position]) -> None:
        self.strategy = RecordingStrategy(STRATEGY, ExitRules())
        self.strategy.bind(_desk(_manager(ledger, positions), QuoteCache()))

    def feed(self, rounds: list[list[tuple[Position, Quote]]]) -> float:
        evaluate = self.strategy.evaluate
        start = time.perf_counter()
        for ticks in rounds:
            for position, quote in ticks:
                mark = quote.mark
                if mark is not None:
                    evaluate(position, mark)
        return time.perf_counter() - start


def _per_position(decisions: Iterable[Decision]) -> dict[str, list[ExitDecision]]:
    grouped: defaultdict[str, list[ExitDecision]] = defaultdict(list)
    for position_id, decision in decisions:
        grouped[position_id].append(decision)
    return dict(grouped)


def check_same(path: str, watched: list[Decision], bare: list[Decision], ticks: int) -> None:
    if len(watched) != ticks or len(bare) != ticks:
        raise AssertionError(f"decisions: {path} {len(watched)}, bare {len(bare)}, ticks {ticks}")
    if _per_position(watched) != _per_position(bare):
        raise AssertionError(f"the {path} path and the bare loop decided differently")


async def one_pass(
    ledger: TradeLedger,
    positions: list[Position],
    rounds: list[list[Tick]],
    paired: list[list[tuple[Position, Quote]]],
    chunk: int,
) -> tuple[dict[str, float], Counter[ExitAction]]:
    """Seconds per path for all rounds, the paths interleaved chunk by chunk; and the decisions by action.

    Each path keeps its own state (cache, watcher, high-water marks) from chunk to chunk; the order of the
    three paths rotates every chunk so that a busy moment of the machine is shared between them.
    """
    stepped = WatcherPath(ledger, positions, worker=False)
    worker = WatcherPath(ledger, positions, worker=True)
    bare = BarePath(ledger, positions)
    await stepped.start()
    await worker.start()
    seconds = {"watcher": 0.0, "worker": 0.0, "bare": 0.0}
    try:
        for number, first in enumerate(range(0, len(rounds), chunk)):
            part = slice(first, first + chunk)
            order = ["watcher", "worker", "bare"]
            shift = number % len(order)
            for name in order[shift:] + order[:shift]:
                if name == "watcher":
                    seconds[name] += await stepped.feed(rounds[part])
                elif name == "worker":
                    seconds[name] += await worker.feed(rounds[part])
                else:
                    seconds[name] += bare.feed(paired[part])
    finally:
        await stepped.stop()
        await worker.stop()
    ticks = sum(len(ticks) for ticks in rounds)
    check_same("watcher", stepped.strategy.decisions, bare.strategy.decisions, ticks)
    check_same("worker", worker.strategy.decisions, bare.strategy.decisions, ticks)
    counts = Counter(decision.action for _, decision in bare.strategy.decisions)
    return seconds, counts


async def run(quick: bool, repeats: int, profile: bool) -> dict[str, float]:
    rounds_count = 30 if quick else 150
    repeats = 2 if quick else repeats
    chunk = 10
    positions = build_positions(POSITIONS)
    rounds = build_rounds(positions, rounds_count, SEED)
    by_symbol = {position.contract.symbol: position for position in positions}
    paired = [[(by_symbol[symbol], quote) for symbol, quote in ticks] for ticks in rounds]
    ticks = POSITIONS * rounds_count
    passes: list[dict[str, float]] = []
    counts: Counter[ExitAction] = Counter()
    with tempfile.TemporaryDirectory(prefix="watcher_bench_") as tmp:
        ledger = TradeLedger.open(Path(tmp) / "ledger.jsonl")
        try:
            if profile:
                await _profile(ledger, positions, rounds)
            await one_pass(ledger, positions, rounds[:chunk], paired[:chunk], chunk)  # warm-up, untimed
            for _ in range(repeats):
                seconds, counts = await one_pass(ledger, positions, rounds, paired, chunk)
                passes.append(seconds)
        finally:
            ledger.close()
    non_none = counts[ExitAction.TRIM] + counts[ExitAction.CLOSE]
    if non_none == 0:
        raise AssertionError("no tick crossed an exit threshold; the walk needs more volatility")
    best = {name: min(seconds[name] for seconds in passes) for name in ("watcher", "worker", "bare")}

    def overhead(name: str) -> float:
        # Median over passes of the paired ratio: both sides of a ratio ran interleaved in the same pass.
        return round(statistics.median(seconds[name] / seconds["bare"] for seconds in passes), 3)

    return {
        "ticks_per_s": round(ticks / best["watcher"], 1),
        "bare_ticks_per_s": round(ticks / best["bare"], 1),
        "worker_ticks_per_s": round(ticks / best["worker"], 1),
        "overhead_vs_bare": overhead("watcher"),
        "overhead_worker_vs_bare": overhead("worker"),
        "watcher_us_per_tick": round(best["watcher"] / ticks * 1e6, 3),
        "bare_us_per_tick": round(best["bare"] / ticks * 1e6, 3),
        "ticks": ticks,
        "positions": POSITIONS,
        "rounds": rounds_count,
        "passes": repeats,
        "decisions_non_none": non_none,
        "decisions_trim": counts[ExitAction.TRIM],
        "decisions_close": counts[ExitAction.CLOSE],
    }


async def _profile(ledger: TradeLedger, positions: list[Position], rounds: list[list[Tick]]) -> None:
    """cProfile of one watcher pass, to stderr (stdout keeps its JSON last line)."""
    import cProfile
    import pstats

    path = WatcherPath(ledger, positions, worker=False)
    await path.start()
    profiler = cProfile.Profile()
    profiler.enable()
    await path.feed(rounds)
    profiler.disable()
    await path.stop()
    pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer rounds and repeats, for a smoke run")
    parser.add_argument("--repeats", type=int, default=5, help="timed passes of each path (default 5)")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of one watcher pass to stderr")
    args = parser.parse_args()
    result = asyncio.run(run(args.quick, max(1, args.repeats), args.profile))
    print(json.dumps(result, separators=(",", ":")))


if __name__ == "__main__":
    main()
