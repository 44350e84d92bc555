"""The offline demo day: one simulated trading day through the real pipeline, stepped as fast as it goes.

feed -> strategies -> order manager -> paper executor -> ledger -> notifier (position messages in the
terminal). Every tick is handled to the end before the next, so the same seed gives the same trades.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TextIO

from bot.analytics.ledger_scan import scan_ledger
from bot.analytics.tally import PeriodReport
from bot.options.clock import utc_now
from bot.options.market_hours import (
    MARKET_TZ,
    is_trading_day,
    latest_trading_day,
    next_trading_day,
    session_close,
    session_open,
)
from bot.options.quotes import QuoteCache
from bot.options.sim_market import SimulatedMarket, UnderlyingSpec
from bot.options.trade_ledger import TradeEvent, last_event
from bot.paths import ledger_path
from bot.render import daily_table
from bot.runtime.desk import MESSAGE_FILE, open_desk
from bot.runtime.message_board import ConsoleBoard
from bot.runtime.message_map import MessageMap
from bot.settings import Settings, SettingsError, unquoted_underlyings


@dataclass(frozen=True, slots=True)
class DaySummary:
    day: date
    fills: list[TradeEvent]
    still_open: int
    report: PeriodReport  # the day as `python -m bot report daily` reads it from the ledger

    def render(self) -> str:
        kinds = Counter(event.kind.value for event in self.fills)
        return "\n".join(
            [
                f"Day {self.day}: {len(self.fills)} trades ("
                + ", ".join(f"{kinds[k]} {k}" for k in ("open", "add", "trim", "close"))
                + f"), {self.still_open} positions still open",
                daily_table(self.report),
            ]
        )


def demo_day_for(last: TradeEvent | None) -> date:
    """The latest trading day, or the trading day after the ledger's last event, so days never overlap."""
    if last is not None:
        return next_trading_day(last.ts.astimezone(MARKET_TZ).date())
    return latest_trading_day(utc_now())


def sim_market(settings: Settings, seed: int | None) -> SimulatedMarket:
    specs = [UnderlyingSpec(u.symbol, u.price, u.vol) for u in settings.market.underlyings]
    # On the paper executor this market quotes the desk (a broker's desk is quoted by the broker).
    where = "the simulated market ([[market.underlyings]])"
    if settings.executor == "paper" and (problem := unquoted_underlyings(settings, {s.symbol for s in specs}, where)):
        raise SettingsError(f"bad setting strategies: {problem}; add it there or change the strategy")
    tick = timedelta(seconds=settings.market.tick_seconds)
    return SimulatedMarket(specs, settings.market.seed if seed is None else seed, tick=tick)


def watch_in(market: SimulatedMarket) -> Callable[[QuoteCache, Iterable[str]], None]:
    """Subscribe contracts in the market and quote them at once, so a strategy can trade them right away."""

    def watch(quotes: QuoteCache, symbols: Iterable[str]) -> None:
        for symbol in market.subscribe(symbols):
            quotes.update(symbol, market.quote(symbol))

    return watch


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
    market = sim_market(settings, seed)
    market.start(session_open(day))
    desk = await open_desk(
        settings,
        storage,
        board=ConsoleBoard(out),
        messages=MessageMap(storage / MESSAGE_FILE),
        notify=lambda: settings.discord.notify,
        clock=lambda: market.now,
        watch=watch_in(market),
        throttle_clock=lambda: market.now.timestamp(),
    )
    fills: list[TradeEvent] = []

    async def count(event: TradeEvent, position: object) -> None:
        fills.append(event)

    desk.manager.subscribe(count)
    try:
        ticks = market.snapshot()
        while market.now < session_close(day):
            for symbol, quote in ticks:
                desk.quotes.update(symbol, quote)
            await desk.step()
            ticks = market.step()
        # The market jumped to the next session: what expires today settles on today's last prices.
        desk.queue_expired(session_close(day))
        await desk.step()
    finally:
        await desk.close()
    scan = await asyncio.to_thread(scan_ledger, ledger_path(storage), settings.zone, day, day)
    return DaySummary(day, fills, len(desk.manager.open_positions()), PeriodReport(day, day, scan.reports))
