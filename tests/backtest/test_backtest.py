"""Backtests trade as the demo does (one desk, one stepping), settle expiries at the close, write a ledger that
verifies, and stop cleanly on Ctrl-C with the days done."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path

import pytest

from bot.options.market_hours import MARKET_TZ
from bot.options.positions import ActionKind
from bot.options.trade_ledger import TradeEvent, read_ledger
from bot.paths import PROJECT_ROOT, StorageError, ledger_path
from bot.runtime import backtest
from bot.runtime.backtest import BACKTEST_MARK, run_backtest
from bot.runtime.demo import run_demo_day
from bot.runtime.demo_folder import DEMO_MARK, claim_demo_folder
from bot.settings import ExitRuleSettings, OpeningRangeBreakoutSettings, RiskSettings, Settings, SettingsError
from tests.core.factories import BREAKOUT_CALL, record_a_breakout

SEED = 5  # a seed whose days open, add, trim and close (tests/runtime/test_demo_day.py)
MONDAY, TUESDAY, WEDNESDAY, FRIDAY = date(2026, 11, 23), date(2026, 11, 24), date(2026, 11, 25), date(2026, 11, 27)


def trades(events: list[TradeEvent]) -> list[tuple[object, ...]]:
    return [(e.ts, e.kind, e.symbol, e.side, e.qty, e.price) for e in events]


def ledger(storage: Path) -> list[TradeEvent]:
    return read_ledger(ledger_path(storage)).events


async def test_a_day_trades_as_the_demo_of_that_day(tmp_path: Path) -> None:
    await run_demo_day(Settings(), tmp_path / "demo", seed=SEED, day=WEDNESDAY, out=io.StringIO())

    result = await run_backtest(Settings(), tmp_path / "bt", WEDNESDAY, WEDNESDAY, seed=SEED)

    demo = ledger(tmp_path / "demo")
    assert {e.kind for e in demo} == set(ActionKind)
    assert trades(ledger(tmp_path / "bt")) == trades(demo)
    assert result.fills == ledger(tmp_path / "bt")
    assert (result.days, result.interrupted) == ([WEDNESDAY], False)


async def test_days_in_one_backtest_trade_as_demos_of_each_day_on_one_storage(tmp_path: Path) -> None:
    # Thanksgiving (Thursday) is no trading day, and Friday closes at 13:00.
    for day in (TUESDAY, WEDNESDAY, FRIDAY):
        await run_demo_day(Settings(), tmp_path / "demo", seed=SEED, day=day, out=io.StringIO())

    result = await run_backtest(Settings(), tmp_path / "bt", TUESDAY, FRIDAY, seed=SEED)

    assert result.days == [TUESDAY, WEDNESDAY, FRIDAY]
    demo = ledger(tmp_path / "demo")
    assert {e.ts.astimezone(MARKET_TZ).date() for e in demo} == set(result.days)
    assert trades(ledger(tmp_path / "bt")) == trades(demo)


async def test_a_position_open_at_its_expiry_settles_at_that_days_close(tmp_path: Path) -> None:
    zero_dte = OpeningRangeBreakoutSettings(
        name="orb0",
        underlying="SPY",
        days_to_expiry=0,
        exits=ExitRuleSettings(profit_ladder=[], stop_loss_pct=None, trailing_stop_pct=None, time_stop_minutes=None),
    )

    # Held to the close: the expiry-day guard would close one in the money before (tests/broker/test_expiry_guard.py).
    settings = Settings(strategies=[zero_dte], risk=RiskSettings(expiry_guard="off"))
    result = await run_backtest(settings, tmp_path, WEDNESDAY, FRIDAY, seed=SEED)

    settled = [e for e in result.fills if e.actor == "expiry"]
    assert [e.expiry for e in settled] == [WEDNESDAY, FRIDAY]
    assert [e.ts for e in settled] == [
        datetime.combine(WEDNESDAY, time(16), tzinfo=MARKET_TZ),
        datetime.combine(FRIDAY, time(13), tzinfo=MARKET_TZ),  # an early close
    ]
    assert all((e.kind, e.position_qty, e.fees) == (ActionKind.CLOSE, 0, Decimal(0)) for e in settled)
    assert result.still_open == 0


async def test_ctrl_c_stops_the_run_and_keeps_the_days_done(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    done = backtest._done

    def stop_after_the_first_day(result: backtest.BacktestResult, day: date, days: list[date]) -> None:
        done(result, day, days)
        running = asyncio.current_task()
        assert running is not None
        running.cancel()  # what SIGINT does to the command's task (bot/runtime/lifetime.py)

    monkeypatch.setattr(backtest, "_done", stop_after_the_first_day)

    result = await run_backtest(Settings(), tmp_path, TUESDAY, FRIDAY, seed=SEED)

    assert (result.days, result.interrupted) == ([TUESDAY], True)
    assert result.sheet is not None and (result.sheet.period.first, result.sheet.period.last) == (TUESDAY, TUESDAY)
    assert all(path.exists() for path in result.files.values())
    tuesday = [e for e in ledger(tmp_path) if e.ts.astimezone(MARKET_TZ).date() == TUESDAY]
    assert tuesday and trades(tuesday) == trades(result.sheet.events)
    assert verify(tmp_path).returncode == 0  # the desk was closed cleanly


def verify(storage: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "ledger", "verify", "--storage", str(storage)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_a_desks_or_the_demos_folder_is_refused_and_a_backtests_own_goes_on(tmp_path: Path) -> None:
    claim_demo_folder(tmp_path / "demo")  # as `python -m bot demo` does
    await run_demo_day(Settings(), tmp_path / "demo", seed=SEED, day=MONDAY, out=io.StringIO())
    desk = tmp_path / "desk"
    await run_demo_day(Settings(), desk, seed=SEED, day=MONDAY, out=io.StringIO())  # trades without a mark: a desk's

    with pytest.raises(StorageError, match="holds the demo's trades"):
        await run_backtest(Settings(), tmp_path / "demo", TUESDAY, TUESDAY, seed=SEED)
    with pytest.raises(StorageError, match="holds a desk's trades"):
        await run_backtest(Settings(), desk, TUESDAY, TUESDAY, seed=SEED)
    assert not (desk / BACKTEST_MARK).exists()

    own = tmp_path / "bt"
    await run_backtest(Settings(), own, MONDAY, MONDAY, seed=SEED)
    with pytest.raises(SettingsError, match="already has trades after 2026-11-23"):
        await run_backtest(Settings(), own, MONDAY, MONDAY, seed=SEED)
    await run_backtest(Settings(), own, TUESDAY, TUESDAY, seed=SEED)  # a later --from goes on with it
    assert {e.ts.astimezone(MARKET_TZ).date() for e in ledger(own)} == {MONDAY, TUESDAY}


async def test_only_the_strategies_named_trade(tmp_path: Path) -> None:
    result = await run_backtest(Settings(), tmp_path / "a", WEDNESDAY, WEDNESDAY, seed=SEED, strategies=["spy-orb"])

    assert result.fills and {e.strategy for e in result.fills} == {"spy-orb"}
    with pytest.raises(SettingsError, match="no strategy named nope"):
        await run_backtest(Settings(), tmp_path / "b", WEDNESDAY, WEDNESDAY, seed=SEED, strategies=["nope"])


async def test_a_backtest_on_recorded_quotes_trades_on_them(tmp_path: Path) -> None:
    # SPY breaks out of its opening range at 09:50; the call at the money is offered at 2.10.
    call = BREAKOUT_CALL
    recorded = record_a_breakout(tmp_path / "quotes.csv")
    orb = OpeningRangeBreakoutSettings(name="spy-orb", underlying="SPY")

    result = await run_backtest(
        Settings(strategies=[orb]), tmp_path / "bt", WEDNESDAY, WEDNESDAY, replay=recorded, out=io.StringIO()
    )

    [opened, *_] = ledger(tmp_path / "bt")
    assert (opened.kind, opened.symbol, opened.price, opened.strategy) == (
        ActionKind.OPEN,
        call,
        Decimal("2.10"),
        "spy-orb",
    )
    assert opened.ts == datetime(2026, 11, 25, 9, 50, tzinfo=MARKET_TZ)  # on the breakout's quote, its time
    assert (result.days, result.interrupted) == ([WEDNESDAY], False)


async def test_the_demo_refuses_a_backtests_folder_naming_it_so(tmp_path: Path) -> None:
    folder = tmp_path / "bt"
    await run_backtest(Settings(), folder, MONDAY, MONDAY, seed=SEED)

    with pytest.raises(StorageError, match="holds a backtest's trades"):
        claim_demo_folder(folder)
    assert not (folder / DEMO_MARK).exists()
