"""The offline demo day: one simulated trading day through the real pipeline, stepped as fast as it goes.

feed -> strategies -> order manager -> paper executor -> ledger -> notifier (position messages in the
terminal). Every tick is handled to the end before the next, so the same seed gives the same trades.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TextIO

from bot.analytics.ledger_scan import scan_ledger
from bot.analytics.tally import PeriodReport
from bot.options.clock import SimulatedClock, utc_now
from bot.options.market_hours import (
    MARKET_TZ,
    is_trading_day,
    latest_trading_day,
    next_trading_day,
    session_close,
    session_open,
)
from bot.options.sim_market import SimulatedFeed
from bot.options.trade_ledger import TradeEvent, last_event
from bot.paths import ledger_path
from bot.runtime.desk import open_desk, sim_market
from bot.runtime.message_board import ConsoleBoard
from bot.settings import Settings, SettingsError


@dataclass(frozen=True, slots=True)
class DaySummary:
    day: date
    fills: list[TradeEvent]
    still_open: int
    report: PeriodReport  # the day as `python -m bot report daily` reads it from the ledger


def demo_day_for(last: TradeEvent | None) -> date:
    """The latest trading day, or the trading day after the ledger's last event, so days never overlap."""
    if last is not None:
        return next_trading_day(last.ts.astimezone(MARKET_TZ).date())
    return latest_trading_day(utc_now())


async def run_demo_day(
    settings: Settings,
    storage: Path,
    *,
    seed: int | None = None,
    day: date | None = None,
    out: TextIO | None = None,
) -> DaySummary:
    last = last_event(ledger_path(storage))
    day = day or demo_day_for(last)
    if not is_trading_day(day):
        raise SettingsError(f"{day} is not a trading day")
    if last is not None and last.ts >= session_open(day):
        raise SettingsError(f"the ledger already has trades after {day} 09:30; pick a later day or another storage")
    clock = SimulatedClock(session_open(day))
    feed = SimulatedFeed(sim_market(settings, seed), clock)
    desk = await open_desk(settings, storage, clock=clock, feed=feed, board=ConsoleBoard(out))
    fills: list[TradeEvent] = []

    async def count(event: TradeEvent, position: object) -> None:
        fills.append(event)

    desk.manager.subscribe(count)
    try:
        await desk.simulate(until=session_close(day))
    finally:
        await desk.close()
    scan = await asyncio.to_thread(scan_ledger, ledger_path(storage), settings.zone, day, day)
    return DaySummary(day, fills, len(desk.manager.open_positions()), PeriodReport(day, day, scan.reports))
