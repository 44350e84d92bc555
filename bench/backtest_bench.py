"""Backtest benchmark: one simulated year (252 trading days) of the default configuration through the backtest,
against the bare simulated feed producing the same quotes with no desk, in the same run.

The backtest is `run_backtest` whole (the desk opened, every day stepped tick by tick, the tear sheet and its files
written). The feed alone steps the same simulated market through the same ticks into a quote cache nobody listens
to, quoting the contracts the backtest quoted: each from the moment a position opened on it (as the desk subscribes
it), dropped at the first close with no position left on it (as the desk does). `events` counts the quotes the desk
handled; `feed_events` the bare feed's, which should be the same (a refused open's contract is not in it).

Last line: {"year_s", "events", "events_per_s", "feed_s", "feed_events", "vs_feed": year_s / feed_s, "days",
"fills"}. Targets: vs_feed <= 3, a year in under a minute. `--profile` prints where the backtest's time goes
(pyinstrument) to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from datetime import date, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.options.clock import SimulatedClock
from bot.options.market_hours import next_trading_day, session_close, session_open
from bot.options.quotes import QuoteCache
from bot.options.sim_market import SimulatedFeed
from bot.options.trade_ledger import TradeEvent
from bot.runtime.backtest import BacktestResult, run_backtest
from bot.runtime.desk import sim_market
from bot.settings import CONFIG_FILE_VARIABLE, Settings

DAYS = 252
FIRST = date(2025, 1, 2)
SEED = 3


def default_settings(folder: Path) -> Settings:
    """The shipped defaults: neither the machine's OPTIONDESK_ variables nor its config file."""
    for name in [n for n in os.environ if n.upper().startswith("OPTIONDESK_")]:
        del os.environ[name]
    os.environ[CONFIG_FILE_VARIABLE] = str(folder / "no-settings.toml")
    return Settings()


def days_from(first: date, days: int) -> tuple[date, date]:
    last = first
    for _ in range(days - 1):
        last = next_trading_day(last)
    return first, last


def bare_feed(settings: Settings, first: date, last: date, fills: list[TradeEvent]) -> tuple[float, int]:
    """The simulated market alone through the backtest's ticks, quoting what it quoted; (seconds, quotes)."""
    opens: defaultdict[datetime, list[str]] = defaultdict(list)
    closes: dict[str, datetime] = {}
    for event in fills:
        if event.kind.value == "open":
            opens[event.ts].append(event.symbol)
        if event.position_qty == 0:
            closes[event.position_id] = event.ts
    held: dict[str, tuple[str, datetime | None]] = {}  # position -> (contract, closed at)
    for event in fills:
        if event.kind.value == "open":
            held[event.position_id] = (event.symbol, closes.get(event.position_id))
    count = 0

    class Counting(QuoteCache):
        def update(self, symbol: str, quote: object) -> None:  # type: ignore[override]
            nonlocal count
            count += 1

    started = time.perf_counter()
    clock = SimulatedClock(session_open(first))
    feed = SimulatedFeed(sim_market(settings, SEED), clock)
    feed.attach(Counting())
    end = session_close(last)
    while True:
        if clock() in opens:
            feed.subscribe(opens[clock()])
        close = feed.market.session_close
        if clock() + feed.market.tick >= close:
            if close >= end:
                break
            now = clock()
            feed.market.quote_only(symbol for symbol, closed in held.values() if closed is None or closed > now)
        feed.tick()
    return time.perf_counter() - started, count


async def backtest(settings: Settings, folder: Path, first: date, last: date) -> tuple[float, BacktestResult]:
    started = time.perf_counter()
    result = await run_backtest(settings, folder, first, last, seed=SEED)
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", action="store_true", help="print the backtest's profile (pyinstrument)")
    parser.add_argument("--days", type=int, default=DAYS, help=argparse.SUPPRESS)  # a quick look, not the bench
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="optiondesk-backtest-bench-") as temp:
        folder = Path(temp)
        settings = default_settings(folder)
        first, last = days_from(FIRST, args.days)
        if args.profile:
            from pyinstrument import Profiler

            with Profiler() as profiler:
                year_s, result = asyncio.run(backtest(settings, folder / "bt", first, last))
            profiler.print(file=sys.stderr, show_all=False)
        else:
            year_s, result = asyncio.run(backtest(settings, folder / "bt", first, last))
        feed_s, feed_events = bare_feed(settings, first, last, result.fills)
    print(
        json.dumps(
            {
                "year_s": round(year_s, 3),
                "events": result.events,
                "events_per_s": round(result.events / year_s),
                "feed_s": round(feed_s, 3),
                "feed_events": feed_events,
                "vs_feed": round(year_s / feed_s, 3),
                "days": len(result.days),
                "fills": len(result.fills),
            }
        )
    )


if __name__ == "__main__":
    main()
