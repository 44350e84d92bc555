"""The trading state in the state store: kept across a reopen, picked up from another connection (the shell)
by the watcher, moved to reduce-only only by the fill that crosses the daily-loss limit; and strategies
refused by it log once and go on."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from pathlib import Path

import pytest

from bot.options.market_hours import session_open
from bot.options.risk import NEVER_SET, DeskState, RiskLimits, TradingState
from bot.runtime.demo import sim_market, watch_in
from bot.runtime.state_store import StateStore
from bot.runtime.strategy_runner import StrategyRunner
from bot.runtime.trading_state import OPERATOR, RISK, TradingSwitch, guard_daily_loss
from bot.settings import MeanReversionSettings, OpeningRangeBreakoutSettings
from bot.strategies.base import StrategyDesk
from bot.strategies.options.mean_reversion import MeanReversion
from bot.strategies.options.opening_range import OpeningRangeBreakout
from tests.risk.conftest import SPY, T0, RiskDesk, new_york, only


async def test_a_state_is_kept_across_a_reopen_and_a_new_store_trades(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    store = await StateStore.open(path)
    assert await store.trading_state() == NEVER_SET
    switch = await TradingSwitch.open(store, lambda: T0)
    await switch.set(TradingState.REDUCE_ONLY, "earnings", OPERATOR)
    await store.close()

    reopened = await StateStore.open(path)
    try:
        assert await reopened.trading_state() == DeskState(TradingState.REDUCE_ONLY, "earnings", OPERATOR, T0)
    finally:
        await reopened.close()


async def test_the_watcher_picks_up_a_change_from_another_connection_and_announces_it(tmp_path: Path) -> None:
    # Arrange: the bot's store and switch, and the shell's own connection to the same file.
    path = tmp_path / "state.sqlite3"
    bot_store, shell_store = await StateStore.open(path), await StateStore.open(path)
    switch = await TradingSwitch.open(bot_store, lambda: T0)
    heard: asyncio.Queue[tuple[DeskState, DeskState]] = asyncio.Queue()

    async def listener(before: DeskState, after: DeskState) -> None:
        heard.put_nowait((before, after))

    switch.subscribe(listener)
    watcher = asyncio.create_task(switch.watch(every=0.01))
    try:
        # Act
        await shell_store.save_trading_state(DeskState(TradingState.HALTED, "feed down", OPERATOR, T0))
        before, after = await asyncio.wait_for(heard.get(), timeout=5)
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        await shell_store.close()
        await bot_store.close()

    # Assert: announced once, and orders now see it
    assert (before.state, after.state, after.reason) == (TradingState.ACTIVE, TradingState.HALTED, "feed down")
    assert switch.current == after
    assert heard.empty()


async def test_only_the_fill_that_crosses_the_loss_limit_moves_the_desk(risk_desk: RiskDesk, tmp_path: Path) -> None:
    # Arrange: a desk with a 100.00 loss limit, the guard listening to its fills.
    store = await StateStore.open(tmp_path / "state.sqlite3")
    switch = await TradingSwitch.open(store, lambda: risk_desk.now)
    limits = only(max_daily_loss=Decimal(100))
    manager = risk_desk.build(limits)
    manager.subscribe(guard_daily_loss(switch, manager.all_positions, limits))
    try:
        risk_desk.quote(SPY, "1.95", "2.00")
        position = await manager.open_position(SPY, 3, strategy="orb")
        risk_desk.quote(SPY, "1.50", "2.00")

        # Act / Assert: -50.00 stays active; -100.00 reaches the limit; an admin resumes, and a further loss
        # (which crosses nothing) leaves the desk as the admin set it.
        await manager.trim(position.position_id, qty=1)
        assert switch.current.state is TradingState.ACTIVE
        await manager.trim(position.position_id, qty=1)
        assert (switch.current.state, switch.current.set_by) == (TradingState.REDUCE_ONLY, RISK)
        assert (
            switch.current.reason == "today's realized P&L -100.00 reached the max daily loss limit (a loss of 100.00)"
        )
        await switch.set(TradingState.ACTIVE, "seen, go on", "discord:1")
        await manager.close(position.position_id)
        assert switch.current.set_by == "discord:1"
    finally:
        await store.close()


@pytest.mark.parametrize("kind", ["opening_range_breakout", "mean_reversion"])
async def test_refused_strategies_log_once_and_go_on(
    risk_desk: RiskDesk, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Arrange: a halted desk, and a strategy fed a whole simulated morning that makes it want to enter.
    caplog.set_level(logging.DEBUG)
    manager = risk_desk.build(RiskLimits())
    risk_desk.set_state(TradingState.HALTED)
    if kind == "opening_range_breakout":
        strategy = OpeningRangeBreakout(OpeningRangeBreakoutSettings(name="s", underlying="SPY"))
    else:
        strategy = MeanReversion(MeanReversionSettings(name="s", underlying="SPY", lookback_minutes=5, entry_z=0.5))
    market = sim_market_for_spy()
    watch = watch_in(market)
    strategy.bind(
        StrategyDesk(
            "s", manager, risk_desk.quotes, clock=lambda: market.now, watch=lambda s: watch(risk_desk.quotes, s)
        )
    )
    runner = StrategyRunner([strategy], risk_desk.quotes)
    risk_desk.now = market.now

    # Act: 3 hours of ticks, each handed to the strategy
    ticks = market.snapshot()
    for _ in range(360):
        for symbol, quote in ticks:
            risk_desk.quotes.update(symbol, quote)
        risk_desk.now = market.now
        await runner.process_all()
        ticks = market.step()

    # Assert: it asked, was refused, said so once at INFO, and no exception escaped
    said = [r for r in caplog.records if "strategy s could not" in r.getMessage()]
    assert said and "the desk is halted" in said[0].getMessage()
    assert [r.levelno for r in said].count(logging.INFO) == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert risk_desk.ledger_bytes() == b""


def sim_market_for_spy():  # type: ignore[no-untyped-def]
    from bot.settings import Settings

    market = sim_market(Settings(), 3)
    market.start(session_open(new_york(2026, 11, 25, 9, 30).date()))
    return market
