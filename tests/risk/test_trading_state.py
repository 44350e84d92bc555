"""The trading state in its journal: kept across a reopen, picked up from the shell by the watcher (a torn line
only once it is whole), never loosened by a fault (a journal that cannot be read halts the desk, a tightening that
cannot be written holds in memory, a loosening that cannot be written is refused), moved to reduce-only only by the
fill that crosses the daily-loss limit; and strategies refused by it log once and go on."""

from __future__ import annotations

import asyncio
import errno
import json
import logging
from decimal import Decimal
from pathlib import Path

import pytest

from bot.options.clock import Clock, SimulatedClock
from bot.options.market_hours import session_open
from bot.options.risk import NEVER_SET, DeskState, RiskLimits, TradingState
from bot.options.sim_market import SimulatedFeed
from bot.paths import ledger_path
from bot.runtime.desk import sim_market
from bot.runtime.strategy_runner import StrategyRunner
from bot.runtime.trading_journal import append_journal, expected_state, journal_path, signature
from bot.runtime.trading_state import OPERATOR, RISK, Held, StateNotSaved, TradingSwitch, guard_daily_loss
from bot.settings import MeanReversionSettings, OpeningRangeBreakoutSettings
from bot.strategies.base import StrategyDesk
from bot.strategies.options.mean_reversion import MeanReversion
from bot.strategies.options.opening_range import OpeningRangeBreakout
from tests.reliability.storage_faults import journal_writes_fail
from tests.risk.conftest import SPY, T0, RiskDesk, new_york, only

Changes = asyncio.Queue[tuple[DeskState, DeskState]]


def switch_on(storage: Path, clock: Clock) -> TradingSwitch:
    """A switch holding what a desk starting on `storage` now would take."""
    seen = signature(journal_path(storage))  # before the read: a change racing it shows at the next look
    return TradingSwitch(journal_path(storage), clock, Held(expected_state(storage), seen))


def listening(switch: TradingSwitch) -> Changes:
    heard: Changes = asyncio.Queue()

    async def listener(before: DeskState, after: DeskState) -> None:
        heard.put_nowait((before, after))

    switch.subscribe(listener)
    return heard


async def test_a_state_is_kept_across_a_reopen_and_a_new_desk_trades(tmp_path: Path) -> None:
    switch = switch_on(tmp_path, lambda: T0)
    assert switch.current == NEVER_SET

    await switch.set(TradingState.REDUCE_ONLY, "earnings", OPERATOR)

    assert switch_on(tmp_path, lambda: T0).current == DeskState(TradingState.REDUCE_ONLY, "earnings", OPERATOR, T0)
    assert journal_path(tmp_path).stat().st_mode & 0o077 == 0


async def test_the_watcher_picks_up_a_change_from_the_shell_once_its_line_is_whole(tmp_path: Path) -> None:
    # Arrange: the bot's switch watching, active; the shell's line half written (a writer still at it, or dead).
    switch = switch_on(tmp_path, lambda: T0)
    active = await switch.set(TradingState.ACTIVE, "open", "discord:1")
    heard = listening(switch)
    path = journal_path(tmp_path)
    with path.open("a") as journal:
        journal.write('{"state": "halted", "reason": "fe')
    watcher = asyncio.create_task(switch.watch(every=0.01))
    try:
        assert await switch.load() == active  # a torn line is not a state

        # Act: the shell's own append (which cuts the torn line away), while the desk runs
        await asyncio.to_thread(append_journal, path, DeskState(TradingState.HALTED, "feed down", OPERATOR, T0))
        before, after = await asyncio.wait_for(heard.get(), timeout=30)
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)

    # Assert: announced once, and orders now see it
    assert (before.state, after.state, after.reason) == (TradingState.ACTIVE, TradingState.HALTED, "feed down")
    assert switch.current == after
    assert heard.empty()
    assert [json.loads(line)["state"] for line in path.read_text().splitlines()] == ["active", "halted"]


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"", "trading_state.jsonl is empty"),
        (b'{"state": "active", "reason": "x", "set_by": "operator", "set_at": null}', "holds no complete line"),
        (b"not json\n", "line 1: "),
        (b'{"state": "paused", "reason": "x", "set_by": "operator", "set_at": null}\n', "line 1: state 'paused'"),
        (
            b'{"state": "active", "reason": "", "set_by": "default", "set_at": null}\n'
            b'{"state": "halted", "reason": "x", "set_by": "operator", "set_at": "tuesday"}\n',
            "line 2: set_at 'tuesday' is not an ISO-8601 time",
        ),
        (
            b'{"state": "halted", "reason": "x", "set_by": "operator", "set_at": "2026-11-25T10:00:00"}\n',
            "line 1: set_at '2026-11-25T10:00:00' has no time zone",
        ),
        (b'["halted"]\n', "line 1: it is not a JSON object"),
        (b'{"state": "halted", "reason": "\xff", "set_by": "operator", "set_at": null}\n', "line 1: "),
    ],
    ids=["empty", "torn only", "not json", "unknown state", "bad time", "naive time", "not an object", "bad utf-8"],
)
def test_a_journal_that_does_not_say_which_state_means_halted_naming_the_file(
    tmp_path: Path, content: bytes, why: str
) -> None:
    path = journal_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(content)

    state = expected_state(tmp_path)

    assert (state.state, state.known) == (TradingState.HALTED, False)
    assert str(path) in state.reason and why in state.reason
    assert path.read_bytes() == content  # reading writes nothing


def test_the_last_whole_valid_line_is_the_state(tmp_path: Path) -> None:
    path = journal_path(tmp_path)
    path.parent.mkdir(parents=True)
    halted = {"state": "halted", "reason": "x", "set_by": "operator", "set_at": T0.isoformat()}
    path.write_text('{"state": "paused"}\n' + json.dumps(halted) + '\n{"state": "active", "rea')

    assert expected_state(tmp_path) == DeskState(TradingState.HALTED, "x", OPERATOR, T0)


def test_no_journal_is_a_new_desk_only_while_the_ledger_holds_no_fill(tmp_path: Path) -> None:
    assert expected_state(tmp_path) == NEVER_SET
    ledger_path(tmp_path).parent.mkdir(parents=True)
    ledger_path(tmp_path).write_text('{"a torn first line')
    assert expected_state(tmp_path) == NEVER_SET  # a torn line is no fill

    ledger_path(tmp_path).write_text('{"v": 1}\n')

    state = expected_state(tmp_path)
    assert not state.known and state.state is TradingState.HALTED
    assert f"{journal_path(tmp_path)} is missing while the ledger" in state.reason


async def test_a_running_desk_whose_journal_goes_bad_halts_and_journals_why(tmp_path: Path) -> None:
    switch = switch_on(tmp_path, lambda: T0)
    await switch.set(TradingState.ACTIVE, "open", "discord:1")
    heard = listening(switch)
    with journal_path(tmp_path).open("a") as journal:
        journal.write('{"state": "paused", "reason": "x", "set_by": "someone", "set_at": null}\n')

    await switch.load()

    _, after = heard.get_nowait()
    assert (after.state, after.set_by) == (TradingState.HALTED, RISK)
    assert f"{journal_path(tmp_path)} line 2: state 'paused'" in after.reason
    assert expected_state(tmp_path) == after  # journaled: it stays halted until an admin resumes
    assert await switch.load() == after and heard.empty()


async def test_a_tightening_the_disk_cannot_take_holds_in_memory_and_a_loosening_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    switch = switch_on(tmp_path, lambda: T0)
    await switch.set(TradingState.ACTIVE, "open", "discord:1")
    journaled = journal_path(tmp_path).read_bytes()

    with journal_writes_fail(errno.ENOSPC):
        halted = await switch.set(TradingState.HALTED, "feed down", "discord:1")
        assert switch.current == halted and switch.unsaved is not None
        assert await switch.load() == halted  # the journal's older, looser line is not taken back
        with pytest.raises(StateNotSaved, match=r"Nothing changed: .* the desk stays halted"):
            await switch.set(TradingState.ACTIVE, "all good", "discord:1")
        assert switch.current == halted
    assert journal_path(tmp_path).read_bytes() == journaled
    failures = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(failures) == 2 and all(str(journal_path(tmp_path)) in line for line in failures)
    assert "No space left on device" in failures[0] and "\n" not in failures[0]

    resumed = await switch.set(TradingState.ACTIVE, "all good", "discord:1")  # space is back

    assert switch.unsaved is None and expected_state(tmp_path) == resumed


async def test_only_the_fill_that_crosses_the_loss_limit_moves_the_desk(risk_desk: RiskDesk, tmp_path: Path) -> None:
    # Arrange: a desk with a 100.00 loss limit, the guard listening to its fills.
    switch = switch_on(tmp_path, lambda: risk_desk.now)
    limits = only(max_daily_loss=Decimal(100))
    manager = risk_desk.build(limits)
    manager.subscribe(guard_daily_loss(switch, manager.all_positions, limits))
    risk_desk.quote(SPY, "1.95", "2.00")
    position = await manager.open_position(SPY, 3, strategy="orb")
    risk_desk.quote(SPY, "1.50", "2.00")

    # Act / Assert: -50.00 stays active; -100.00 reaches the limit; an admin resumes, and a further loss
    # (which crosses nothing) leaves the desk as the admin set it.
    await manager.trim(position.position_id, qty=1)
    assert switch.current.state is TradingState.ACTIVE
    await manager.trim(position.position_id, qty=1)
    assert (switch.current.state, switch.current.set_by) == (TradingState.REDUCE_ONLY, RISK)
    assert switch.current.reason == "today's realized P&L -100.00 reached the max daily loss limit (a loss of 100.00)"
    await switch.set(TradingState.ACTIVE, "seen, go on", "discord:1")
    await manager.close(position.position_id)
    assert switch.current.set_by == "discord:1"


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
    clock = SimulatedClock(market.now)
    feed = SimulatedFeed(market, clock)
    feed.attach(risk_desk.quotes)
    strategy.bind(StrategyDesk("s", manager, risk_desk.quotes, clock=clock, watch=feed.subscribe))
    runner = StrategyRunner([strategy], risk_desk.quotes)

    # Act: 3 hours of ticks, each handed to the strategy
    for _ in range(360):
        risk_desk.now = clock()
        await runner.process_all()
        feed.tick()

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
