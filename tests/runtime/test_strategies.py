import logging
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from bot.options.contracts import OptionContract, Right
from bot.options.market_hours import session_open
from bot.options.positions import ActionKind
from bot.options.quotes import Quote
from bot.options.risk import NEVER_SET, DeskState, RiskCheck, RiskLimits, TradingState
from bot.runtime.supervisor import supervise
from bot.settings import MeanReversionSettings, OpeningRangeBreakoutSettings
from bot.strategies.base import StrategyDesk, expiry_after
from bot.strategies.options.mean_reversion import MeanReversion
from bot.strategies.options.opening_range import OpeningRangeBreakout

DAY = date(2026, 11, 25)


class MarketTime:
    def __init__(self):
        self.now = session_open(DAY).astimezone(UTC)

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return MarketTime()


def option_quote(price="2.00"):
    return Quote(bid=Decimal(price), ask=Decimal(price), bid_size=50, ask_size=50)


def bind(strategy, manager, quotes, clock):
    def watch(symbols):
        for symbol in symbols:
            if quotes.get(symbol) is None:
                quotes.update(symbol, option_quote())

    strategy.bind(StrategyDesk(strategy.name, manager, quotes, clock=clock, watch=watch))
    return strategy


async def tick(strategy, clock, price, minutes=1):
    clock.now += timedelta(minutes=minutes)
    await strategy.on_quote(strategy.underlying, Quote(last=Decimal(price), ts=clock.now))


def orb(manager, quotes, clock, **overrides):
    config = OpeningRangeBreakoutSettings(name="orb", underlying="SPY", contracts=4, **overrides)
    return bind(OpeningRangeBreakout(config), manager, quotes, clock)


async def test_orb_buys_an_at_the_money_call_on_a_break_above_the_range_then_adds_once(manager, quotes, clock):
    strategy = orb(manager, quotes, clock)
    await tick(strategy, clock, "600.00", minutes=0)
    for price in ("600.50", "599.40", "600.90"):  # the first 15 minutes set the range
        await tick(strategy, clock, price, minutes=4)
    assert manager.open_positions() == []

    await tick(strategy, clock, "600.80", minutes=4)  # 09:46, inside the range: nothing
    assert manager.open_positions() == []
    await tick(strategy, clock, "601.20")

    [position] = manager.open_positions()
    assert position.contract == OptionContract("SPY", expiry_after(DAY, 2), Right.CALL, Decimal(601))
    assert (position.qty, position.strategy) == (4, "orb")

    await tick(strategy, clock, "602.50")  # +0.3 % beyond the breakout: add half
    await tick(strategy, clock, "605.00")  # only once
    position = manager.get(position.position_id)
    assert [a.kind for a in position.actions] == [ActionKind.OPEN, ActionKind.ADD]
    assert position.qty == 6


async def test_orb_buys_a_put_below_the_range_and_never_enters_twice_a_day_even_after_a_restart(manager, quotes, clock):
    strategy = orb(manager, quotes, clock)
    await tick(strategy, clock, "600.00", minutes=0)
    await tick(strategy, clock, "599.00", minutes=16)
    await tick(strategy, clock, "598.00")
    [position] = manager.open_positions()
    assert position.contract.right is Right.PUT
    await manager.close(position.position_id)

    restarted = orb(manager, quotes, clock)
    await tick(restarted, clock, "600.00", minutes=0)
    await tick(restarted, clock, "590.00")

    assert manager.open_positions() == []
    assert len(manager.all_positions()) == 1


async def test_orb_joined_after_the_range_does_not_trade_on_a_partial_range(manager, quotes, clock):
    clock.now += timedelta(minutes=20)
    strategy = orb(manager, quotes, clock)

    await tick(strategy, clock, "600.00", minutes=0)
    await tick(strategy, clock, "610.00")

    assert manager.all_positions() == []


async def test_no_new_entries_near_the_close(manager, quotes, clock):
    strategy = orb(manager, quotes, clock)
    await tick(strategy, clock, "600.00", minutes=0)
    clock.now = session_open(DAY).astimezone(UTC) + timedelta(hours=6, minutes=1)  # 15:31, 29 min to the close

    await tick(strategy, clock, "601.00")

    assert manager.all_positions() == []


async def test_no_adds_near_the_close_either(manager, quotes, clock):
    strategy = orb(manager, quotes, clock)
    await tick(strategy, clock, "600.00", minutes=0)
    await tick(strategy, clock, "601.00", minutes=16)  # the breakout: an open
    clock.now = session_open(DAY).astimezone(UTC) + timedelta(hours=6, minutes=1)  # 15:31, 29 min to the close

    await tick(strategy, clock, "610.00")  # far beyond the breakout: an add, were it not so late

    [position] = manager.open_positions()
    assert [a.kind for a in position.actions] == [ActionKind.OPEN]


async def test_exit_rules_trim_at_the_profit_target_once(manager, quotes, clock):
    strategy = orb(manager, quotes, clock)
    await tick(strategy, clock, "600.00", minutes=0)
    await tick(strategy, clock, "601.00", minutes=16)
    [position] = manager.open_positions()  # bought 4 at 2.00
    quotes.update(position.contract.symbol, option_quote("2.60"))

    await strategy.on_position_update(position, Decimal("2.60"))  # +30 %
    await strategy.on_position_update(manager.get(position.position_id), Decimal("2.60"))

    position = manager.get(position.position_id)
    assert [(a.kind, a.qty) for a in position.actions] == [(ActionKind.OPEN, 4), (ActionKind.TRIM, 2)]


async def test_exit_rules_close_at_the_stop_loss(manager, quotes, clock):
    strategy = orb(manager, quotes, clock)
    await tick(strategy, clock, "600.00", minutes=0)
    await tick(strategy, clock, "601.00", minutes=16)
    [position] = manager.open_positions()
    quotes.update(position.contract.symbol, option_quote("1.20"))

    await strategy.on_position_update(position, Decimal("1.20"))  # -40 %

    assert not manager.get(position.position_id).is_open


async def test_mean_reversion_buys_a_call_on_a_stretch_below_the_mean(manager, quotes, clock):
    config = MeanReversionSettings(name="mr", underlying="QQQ", contracts=2, lookback_minutes=10, entry_z=2.0)
    strategy = bind(MeanReversion(config), manager, quotes, clock)
    for minute in range(12):
        await tick(strategy, clock, "520.00" if minute % 2 else "520.10")
    assert manager.open_positions() == []

    await tick(strategy, clock, "518.00")

    [position] = manager.open_positions()
    assert (position.contract.underlying, position.contract.right, position.qty) == ("QQQ", Right.CALL, 2)


async def test_supervise_restarts_a_crashed_task_with_growing_backoff():
    runs, sleeps = [], []

    async def flaky():
        runs.append(len(runs))
        if len(runs) < 4:
            raise RuntimeError("boom")

    async def fake_sleep(seconds):
        sleeps.append(seconds)

    await supervise("flaky", flaky, first_delay=1, max_delay=3, sleep=fake_sleep, clock=lambda: 0.0)

    assert len(runs) == 4
    assert sleeps == [1, 2, 3]


async def test_supervise_forgets_old_crashes_after_a_healthy_run():
    sleeps, times = [], iter([0, 0, 0, 100, 100, 100])

    async def crash_twice():
        if len(sleeps) < 2:
            raise RuntimeError("boom")

    async def fake_sleep(seconds):
        sleeps.append(seconds)

    await supervise("t", crash_twice, first_delay=1, healthy_after=60, sleep=fake_sleep, clock=lambda: next(times))

    assert sleeps == [1, 1]


def test_a_strategy_time_is_market_time():
    assert MarketTime()().tzinfo is UTC
    assert MarketTime()() == datetime(2026, 11, 25, 14, 30, tzinfo=UTC)


async def test_a_high_saved_before_a_restart_arms_the_trailing_stop_after_it(manager, quotes, clock):
    strategy = orb(manager, quotes, clock)
    await tick(strategy, clock, "600.00", minutes=0)
    await tick(strategy, clock, "601.00", minutes=16)
    [position] = manager.open_positions()  # bought 4 at 2.00
    quotes.update(position.contract.symbol, option_quote("2.40"))
    restarted = orb(manager, quotes, clock)

    await restarted.on_position_update(position, Decimal("2.40"))  # +20 %: no rule fires without a memory
    assert manager.get(position.position_id).is_open
    restarted.resume({position.position_id: Decimal("3.00")})  # the high seen before the restart
    await restarted.on_position_update(position, Decimal("2.40"))  # 20 % below 3.00: the trailing stop

    assert not manager.get(position.position_id).is_open


async def test_an_exit_a_halted_desk_refuses_at_every_quote_is_said_once(manager, quotes, clock, caplog):
    strategy = orb(manager, quotes, clock)
    await tick(strategy, clock, "600.00", minutes=0)
    await tick(strategy, clock, "601.00", minutes=16)
    [position] = manager.open_positions()
    state = [NEVER_SET]
    manager._risk = RiskCheck(RiskLimits()._replace(market_hours_only=False), quotes.get, state=lambda: state[0])
    state[0] = DeskState(TradingState.HALTED, "the operator's halt", "operator", clock.now)
    quotes.update(position.contract.symbol, option_quote("1.20"))
    caplog.set_level(logging.DEBUG)

    for _ in range(5):
        await strategy.on_position_update(manager.get(position.position_id), Decimal("1.20"))  # -40 %: stop loss

    said = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert [r.name for r in said] == ["bot.strategies.base", "bot.options.risk", "bot.strategies.base"]
    assert "stop loss" in said[0].getMessage() and "halted" in said[1].getMessage()
    assert "could not close" in said[2].getMessage()
    assert manager.get(position.position_id).is_open

    state[0] = NEVER_SET  # resumed: the stop goes through
    await strategy.on_position_update(manager.get(position.position_id), Decimal("1.20"))
    assert not manager.get(position.position_id).is_open


async def test_a_refused_exit_is_said_once_at_moving_marks_for_each_position_and_again_after_it_went_through(
    manager, quotes, clock, caplog
):
    strategy = orb(manager, quotes, clock)
    await tick(strategy, clock, "600.00", minutes=0)
    await tick(strategy, clock, "601.00", minutes=16)
    [first] = manager.open_positions()
    second = await manager.open_position(first.contract, 2, strategy="orb")
    state = [DeskState(TradingState.HALTED, "the operator's halt", "operator", clock.now)]
    manager._risk = RiskCheck(RiskLimits()._replace(market_hours_only=False), quotes.get, state=lambda: state[0])
    caplog.set_level(logging.DEBUG)

    def said() -> list[str]:
        lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
        caplog.clear()
        return lines

    for mark in ("1.20", "1.19", "1.18", "1.17"):  # the stop loss at a new mark each quote, for each position
        for position in (first, second):
            quotes.update(position.contract.symbol, option_quote(mark))
            await strategy.on_position_update(manager.get(position.position_id), Decimal(mark))
    lines = said()
    for position in (first, second):
        mine = [line for line in lines if position.position_id in line]
        assert len(mine) == 3, lines  # the rule, risk's refusal, the strategy's: once each
        assert "stop loss" in mine[0] and "halted" in mine[1] and "could not close" in mine[2]

    # A trim of the first goes through (the desk reduces only), then its close is refused again: said again.
    state[0] = DeskState(TradingState.REDUCE_ONLY, "the operator's brake", "operator", clock.now)
    assert await strategy.desk.trim(manager.get(first.position_id), 1) is not None
    state[0] = DeskState(TradingState.HALTED, "the operator's halt", "operator", clock.now)
    said()
    assert await strategy.desk.close(manager.get(first.position_id)) is None
    assert [line for line in said() if "could not close" in line]
