"""Expiry on a running desk (`run`, Discord): the settlement worker sleeps on the desk's clock until the close of
the expiry day and settles there, at intrinsic value from the underlying's last price at or before the close,
stamped at the close, whatever the clock does next (a simulated market jumps to the next open)."""

from __future__ import annotations

import asyncio
import io
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from bot.options.clock import SimulatedClock
from bot.options.contracts import OptionContract, Right
from bot.options.market_hours import MARKET_TZ, next_session_open, session_close
from bot.options.quotes import Quote
from bot.options.trade_ledger import read_ledger
from bot.paths import ledger_path
from bot.runtime.desk import Desk, open_desk
from bot.runtime.message_board import ConsoleBoard
from bot.settings import Settings
from tests.core.factories import QuietFeed

EXPIRY = date(2026, 11, 27)  # the day after Thanksgiving: the session closes at 13:00
PUT = OptionContract("SPY", EXPIRY, Right.PUT, Decimal(600))


def spot(price: str, at: datetime) -> Quote:
    return Quote(bid=Decimal(price), ask=Decimal(price), last=Decimal(price), bid_size=1, ask_size=1, ts=at)


async def open_a_put(storage: Path, clock: SimulatedClock) -> Desk:
    desk = await open_desk(
        Settings(strategies=[]), storage, clock=clock, feed=QuietFeed(), board=ConsoleBoard(io.StringIO())
    )
    desk.quotes.update(PUT.symbol, Quote(bid=Decimal("3.00"), ask=Decimal("3.10"), bid_size=9, ask_size=9, ts=clock()))
    await desk.manager.open_position(PUT, 2, strategy="manual")
    return desk


async def test_a_position_held_to_expiry_settles_at_the_close_on_the_last_price_before_it(tmp_path: Path) -> None:
    close = session_close(EXPIRY)
    clock = SimulatedClock(close - timedelta(hours=2))
    desk = await open_a_put(tmp_path, clock)
    expiry = asyncio.create_task(desk.run_expiry())
    try:
        desk.quotes.update("SPY", spot("590.00", close - timedelta(minutes=1)))  # the last price before the close
        clock.advance(close - timedelta(seconds=1))
        await asyncio.sleep(0)
        assert desk.manager.open_positions()  # not before the close

        # The simulated market jumps to the next open, where SPY has moved.
        opens = next_session_open(close)
        clock.advance(opens)
        desk.quotes.update("SPY", spot("605.00", opens))
        for _ in range(50):
            await asyncio.sleep(0)
    finally:
        expiry.cancel()
        await asyncio.gather(expiry, return_exceptions=True)
        await desk.close()

    *_, settlement = read_ledger(ledger_path(tmp_path)).events
    assert (settlement.kind.value, settlement.actor) == ("close", "expiry")
    assert settlement.price == Decimal("10.00")  # 600 put on 590.00, the last price at or before the close
    assert settlement.ts == datetime(2026, 11, 27, 13, 0, tzinfo=MARKET_TZ)
    assert desk.manager.open_positions() == []


async def test_a_desk_started_after_an_expiry_settles_on_the_markets_price_at_that_close(tmp_path: Path) -> None:
    close = session_close(EXPIRY)
    first = await open_a_put(tmp_path, SimulatedClock(close - timedelta(hours=2)))
    await first.close()

    # Restarted on Monday: no quote before Friday's close reaches this run.
    clock = SimulatedClock(next_session_open(close) + timedelta(minutes=5))
    desk = await open_desk(
        Settings(strategies=[]), tmp_path, clock=clock, feed=QuietFeed(), board=ConsoleBoard(io.StringIO())
    )
    desk.quotes.update("SPY", spot("700.00", clock()))
    try:
        await desk.settle_expired(close)
    finally:
        await desk.close()

    *_, settlement = read_ledger(ledger_path(tmp_path)).events
    assert settlement.ts == close
    assert settlement.price == Decimal(0)  # the latest quote (700: out of the money) stands in, no history here
