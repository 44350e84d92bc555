"""Kill the real bot (`python -m bot run`) with SIGKILL at each named crash point, restart it with the same
command, and check that nothing was lost, nothing was written twice and no position got a second message.

The runs are independent, so they run side by side (threads, each waiting on its own processes); the whole
module takes about a minute here.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from bot.crash import POINTS
from bot.options.orders import Side
from bot.options.risk import TradingState
from bot.options.trade_ledger import read_ledger
from bot.paths import PROJECT_ROOT, ledger_path
from bot.runtime.resume import UNANSWERED
from bot.runtime.trading_journal import expected_state
from tests.resume.harness import (
    STATE_FILE,
    BotRun,
    CliReport,
    CrashRun,
    assert_resumed_consistently,
    bot_env,
    complete_lines,
    crash_and_restart,
    ledger_bytes,
    line_count,
    read_state,
    run_and_stop,
    run_cli,
)

T = TypeVar("T")

# Every point at its first hit, and later hits where the crash lands mid-day with several positions.
# (No later hit of ledger-mid-write: see test_a_later_hit_of_ledger_mid_write_crashes_there.)
SCENARIOS = (
    *POINTS,
    "fill-before-ledger:3",
    "after-ledger:3",
    "state-mid-write:2",
    "after-post:2",
)
# Where the n-th hit of a point is in the ledger: before the n-th fill's line, or after it. (Exactly there
# when fills come one at a time and each order fills at once; a fill of another position may be on its way at the
# same moment.) An order's intent is written before the order is sent, so before its fill's line.
BEFORE_THE_LINE = ("state-mid-write", "fill-before-ledger", "ledger-mid-write")
AFTER_THE_LINE = ("after-ledger",)


def cut_last_line_in_half(storage: Path) -> None:
    data = ledger_bytes(storage)
    last_line = data.rfind(b"\n", 0, len(data) - 1) + 1
    ledger_path(storage).write_bytes(data[: last_line + (len(data) - last_line) // 2])


def delete_state(storage: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        (storage / f"{STATE_FILE}{suffix}").unlink(missing_ok=True)


def overwrite_state_with_garbage(storage: Path) -> None:
    (storage / STATE_FILE).write_bytes(b"\x00garbage, not a database\n" * 400)


# Damage done to a cleanly stopped bot's storage before its restart.
DAMAGES: dict[str, Callable[[Path], None]] = {
    "ledger cut mid-record": cut_last_line_in_half,
    "state deleted": delete_state,
    "state overwritten with garbage": overwrite_state_with_garbage,
}


@dataclass
class Traded:
    storage: Path
    first: BotRun


@dataclass
class Damaged:
    storage: Path
    ledger_before: bytes  # the ledger as the clean stop left it, before the damage
    ledger_damaged: bytes
    restarted: BotRun
    cli: CliReport


def trade_and_stop(base: Path) -> Traded:
    """A bot that traded (two fills at least) and stopped cleanly."""
    first = run_and_stop(base / "storage", base / "logs", "first", more_lines=2, timeout=30)
    assert line_count(base / "storage") >= 2, "fewer than two fills within 30 s at --speed 600"
    return Traded(base / "storage", first)


def damage_and_restart(traded: Future[Traded], base: Path, damage: str) -> Damaged:
    storage = base / "storage"
    shutil.copytree(traded.result().storage, storage)
    before = ledger_bytes(storage)
    DAMAGES[damage](storage)
    damaged = ledger_bytes(storage)
    restarted = run_and_stop(storage, base / "logs", "restarted", timeout=20)  # until it trades again
    return Damaged(storage, before, damaged, restarted, run_cli(storage))


def crash_in(base: Path, crash_at: str) -> CrashRun:
    return crash_and_restart(base / "storage", base / "logs", crash_at)


@dataclass
class Runs:
    crashes: dict[str, Future[CrashRun]]
    traded: Future[Traded]
    damaged: dict[str, Future[Damaged]]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    """Every real-process run of this module, side by side (threads, each waiting on its own processes):
    a test waits only for the runs it checks."""
    base = tmp_path_factory.mktemp
    pool = ThreadPoolExecutor(max_workers=1 + len(SCENARIOS) + len(DAMAGES))
    try:
        traded = pool.submit(trade_and_stop, base("traded"))
        crashes = {crash_at: pool.submit(crash_in, base(crash_at), crash_at) for crash_at in SCENARIOS}
        damaged = {name: pool.submit(damage_and_restart, traded, base(name), name) for name in DAMAGES}
        yield Runs(crashes, traded, damaged)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def outcome(name: str, future: Future[T]) -> T:
    try:
        return future.result()
    except AssertionError as error:  # the run went wrong (did not die, did not start, did not stop cleanly)
        pytest.fail(f"{name}: {error}", pytrace=False)


def torn_side_files(storage: Path) -> list[Path]:
    return sorted(ledger_path(storage).parent.glob(f"{ledger_path(storage).name}.torn-*"))


@pytest.mark.parametrize("crash_at", SCENARIOS)
def test_a_kill_at_a_crash_point_loses_nothing_writes_nothing_twice_and_posts_no_second_message(runs, crash_at):
    run = outcome(crash_at, runs.crashes[crash_at])
    point, _, nth = crash_at.partition(":")
    whole = complete_lines(run.at_kill)
    torn = run.at_kill[len(whole) :]
    if point in BEFORE_THE_LINE:
        assert whole.count(b"\n") < int(nth or 1), "the crash came after the fill's line"
    if point in AFTER_THE_LINE:
        assert whole.count(b"\n") >= int(nth or 1), "the crash came before the fill's line"

    # Every line written before the kill is still there, unchanged and in the same order.
    assert ledger_bytes(run.storage).startswith(whole)
    if point == "ledger-mid-write":
        assert torn, "the kill mid-write left no half line"
        assert [side.read_bytes() for side in torn_side_files(run.storage)] == [torn]
        assert "torn last line" in run.restarted.stderr
    else:
        assert torn == b""
        assert torn_side_files(run.storage) == []

    assert_resumed_consistently(run.storage, [run.crashed.stdout, run.restarted.stdout], run.cli)


@pytest.mark.parametrize("crash_at", [c for c in SCENARIOS if c.startswith("fill-before-ledger")])
def test_an_order_unanswered_at_the_crash_is_cancelled_on_start_and_its_fill_never_written(runs, crash_at):
    run = outcome(crash_at, runs.crashes[crash_at])
    whole = complete_lines(run.at_kill)
    open_states = "SELECT order_id FROM orders WHERE status IN ('new', 'partially_filled')"
    # At the kill the order was sent and filled by the executor, but neither the ledger nor the store knew.
    open_at_kill = [order_id for (order_id,) in read_state(run.state_at_kill, open_states, read_only=False)]
    unanswered = [order_id for order_id in open_at_kill if order_id.encode() not in whole]
    assert unanswered, f"no order left open by the kill: {open_at_kill}"

    assert read_state(run.storage, open_states) == []
    rows = read_state(run.storage, "SELECT order_id, status, filled_qty, reason FROM orders")
    orders = {row[0]: row[1:] for row in rows}
    for order_id in unanswered:
        assert orders.get(order_id) == ("cancelled", 0, UNANSWERED)
        assert f"order {order_id} was cancelled at the restart" in run.restarted.stderr
    # Never submitted again: no fill of that order reached the ledger, before or after the restart.
    events = assert_resumed_consistently(run.storage, [run.crashed.stdout, run.restarted.stdout], run.cli)
    assert not {event.order_id for event in events} & set(unanswered)


def test_a_ledger_cut_mid_record_is_repaired_on_start(runs):
    traded = outcome("traded", runs.traded)
    run = outcome("ledger cut mid-record", runs.damaged["ledger cut mid-record"])
    whole = complete_lines(run.ledger_damaged)
    assert whole != run.ledger_damaged and run.ledger_before.startswith(run.ledger_damaged)

    assert [side.read_bytes() for side in torn_side_files(run.storage)] == [run.ledger_damaged[len(whole) :]]
    assert "torn last line" in run.restarted.stderr
    assert ledger_bytes(run.storage).startswith(whole)
    assert_resumed_consistently(run.storage, [traded.first.stdout, run.restarted.stdout], run.cli)


@pytest.mark.parametrize("damage", ["state deleted", "state overwritten with garbage"])
def test_a_lost_or_corrupt_state_store_is_started_anew_and_the_positions_come_from_the_ledger(runs, damage):
    """A deleted store is a fresh start, said in one line, and trading goes on; a corrupt one held the trailing highs
    and orders in flight, so the new desk is reduce-only: no new position until an admin resumes."""
    traded = outcome("traded", runs.traded)
    run = outcome(damage, runs.damaged[damage])

    assert ledger_bytes(run.storage).startswith(run.ledger_before)
    after = read_ledger(ledger_path(run.storage)).events[run.ledger_before.count(b"\n") :]
    if damage == "state overwritten with garbage":
        assert "is corrupt" in run.restarted.stderr and "starting a new one" in run.restarted.stderr
        [aside] = run.storage.glob(f"{STATE_FILE}.corrupt-*")
        assert aside.read_bytes().startswith(b"\x00garbage")
        assert expected_state(run.storage).state is TradingState.REDUCE_ONLY
        assert all(event.side is Side.SELL for event in after)
    else:
        assert "was missing or empty and was started anew" in run.restarted.stderr
        assert after, "no trade after the new start"
    assert_resumed_consistently(run.storage, [traded.first.stdout, run.restarted.stdout], run.cli)


LEDGER_COPY = """
import asyncio, sys
from pathlib import Path
from bot.options.trade_ledger import TradeLedger, read_ledger

async def copy():
    ledger = TradeLedger.open(Path(sys.argv[2]))
    for event in read_ledger(Path(sys.argv[1])).events:
        await ledger.append(event)

asyncio.run(copy())
"""


def test_a_later_hit_of_ledger_mid_write_crashes_there(runs, tmp_path):
    source = ledger_path(outcome("traded", runs.traded).storage)
    target = tmp_path / "trade_events.jsonl"
    copied = subprocess.run(
        [sys.executable, "-c", LEDGER_COPY, str(source), str(target)],
        cwd=PROJECT_ROOT,
        env=bot_env("ledger-mid-write:2"),
        capture_output=True,
        timeout=30,
    )
    assert copied.returncode == -signal.SIGKILL, copied.stderr
    first, second = source.read_bytes().splitlines(keepends=True)[:2]
    assert target.read_bytes() == first + second[: len(second) // 2]
