"""`python -m bot run` without a token: the bot offline until SIGINT/SIGTERM, on the simulated market or
on recorded quotes (`--replay FILE`).

The simulated market clock starts at 09:30 New York of the latest trading day, or just after the
ledger's last event, runs `speed` times faster than real time and walks on through the following trading
days. A replay plays the file's quotes at `speed` times their recorded pace; its clock is the time of
the latest quote.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path

from bot.options.clock import utc_now
from bot.options.market_data import QuoteFeed
from bot.options.market_hours import latest_trading_day, session_open
from bot.options.quotes import Quote, QuoteCache
from bot.options.replay_feed import ReplayFeed
from bot.options.sim_market import SimulatedFeed
from bot.options.trade_ledger import last_event
from bot.paths import ledger_path
from bot.runtime.demo import sim_market
from bot.runtime.desk import MESSAGE_FILE, open_desk
from bot.runtime.eod import latest_reset_time
from bot.runtime.message_board import ConsoleBoard
from bot.runtime.message_map import MessageMap
from bot.runtime.supervisor import supervise
from bot.settings import Settings, unquoted_underlyings

log = logging.getLogger(__name__)


def market_start(storage: Path) -> datetime:
    last = last_event(ledger_path(storage))
    if last is not None:
        return last.ts + timedelta(seconds=1)
    return session_open(latest_trading_day(utc_now()))


class QuoteClock:
    """Market time on recorded quotes: the time of the latest quote seen."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def saw(self, symbol: str, quote: Quote) -> None:
        if quote.ts is not None and quote.ts > self.now:
            self.now = quote.ts


async def run_offline(
    settings: Settings,
    storage: Path,
    *,
    speed: float,
    seed: int | None,
    replay: Path | None = None,
) -> None:
    """Trade until cancelled (SIGINT/SIGTERM), then stop the background work and close the desk."""
    feed: QuoteFeed
    if replay is None:
        market = sim_market(settings, seed)
        market.start(market_start(storage))
        feed, clock, source = SimulatedFeed(market, speed=speed), (lambda: market.now), "the simulated market"
    else:
        feed = ReplayFeed(replay, speed=speed)
        if problem := unquoted_underlyings(settings, feed.underlyings, f"the replay file {replay}"):
            log.warning("%s: it will not trade", problem)  # a recording holds what it holds: no refusal
        clock = replay_clock = QuoteClock(feed.quotes[0][1].ts or utc_now() if feed.quotes else utc_now())
        source = f"recorded quotes from {replay}"

    def watch(quotes: QuoteCache, symbols: Iterable[str]) -> None:
        feed.subscribe(symbols)  # the simulated feed quotes new contracts into the cache it runs on

    desk = await open_desk(
        settings,
        storage,
        board=ConsoleBoard(),
        messages=MessageMap(storage / MESSAGE_FILE),
        notify=lambda: settings.discord.notify,
        clock=clock,
        watch=watch,
        throttle_clock=time.monotonic,
    )
    tasks: list[asyncio.Task[None]] = []
    try:
        if replay is not None:
            desk.quotes.subscribe(replay_clock.saw)
        # Messages a crash left out of date (a fill durable in the ledger but never shown, a post whose id was
        # not recorded) are delivered now, by the notifier's worker, not at the position's next fill.
        desk.resume_messages(latest_reset_time(settings, clock()))
        log.info(
            "offline on %s from %s at %sx speed; %d open positions",
            source,
            clock(),
            speed,
            len(desk.manager.open_positions()),
        )
        tasks = [asyncio.create_task(supervise(name, start), name=name) for name, start in desk.workers(feed).items()]
        await asyncio.Event().wait()  # until cancelled
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        try:
            await desk.notifier.flush()
        finally:
            await desk.close()
        if (current := asyncio.current_task()) is not None and current.cancelling():
            log.info("stopped cleanly; %d positions open", len(desk.manager.open_positions()))
