"""`python -m bot run` without a token: the bot offline until SIGINT/SIGTERM, on the simulated market or
on recorded quotes (`--replay FILE`).

The desk's clock is simulated: on the simulated market it starts at 09:30 New York of the latest trading day, or
just after the ledger's last event, runs `speed` times faster than real time and walks on through the following
trading days; on a replay it is the time of the latest quote, played at `speed` times the recorded pace.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from pathlib import Path

from bot.options.clock import SimulatedClock, utc_now
from bot.options.market_data import QuoteFeed
from bot.options.market_hours import latest_trading_day, session_open
from bot.options.replay_feed import ReplayFeed
from bot.options.sim_market import SimulatedFeed
from bot.options.trade_ledger import last_event
from bot.paths import ledger_path
from bot.runtime.desk import open_desk, sim_market
from bot.runtime.eod import latest_reset_time
from bot.runtime.message_board import ConsoleBoard
from bot.runtime.supervisor import supervise
from bot.settings import Settings, unquoted_underlyings

log = logging.getLogger(__name__)


def market_start(storage: Path) -> datetime:
    last = last_event(ledger_path(storage))
    if last is not None:
        return last.ts + timedelta(seconds=1)
    return session_open(latest_trading_day(utc_now()))


async def run_offline(
    settings: Settings,
    storage: Path,
    *,
    speed: float,
    seed: int | None,
    replay: Path | None = None,
) -> None:
    """Trade until cancelled (SIGINT/SIGTERM), then stop the background work and close the desk."""
    feed: QuoteFeed | SimulatedFeed
    if replay is None:
        clock = SimulatedClock(market_start(storage))
        feed, source = SimulatedFeed(sim_market(settings, seed), clock, speed=speed), "the simulated market"
    else:
        feed = ReplayFeed(replay, speed=speed)
        if problem := unquoted_underlyings(settings, feed.underlyings, f"the replay file {replay}"):
            log.warning("%s: it will not trade", problem)  # a recording holds what it holds: no refusal
        # On recorded quotes the desk's clock is the time of the latest quote.
        clock = feed.clock = SimulatedClock(feed.starts_at or utc_now())
        source = f"recorded quotes from {replay}"

    desk = await open_desk(settings, storage, clock=clock, feed=feed, board=ConsoleBoard())
    tasks: list[asyncio.Task[None]] = []
    try:
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
        tasks = [asyncio.create_task(supervise(name, start), name=name) for name, start in desk.workers().items()]
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
