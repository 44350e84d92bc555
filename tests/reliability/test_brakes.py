"""The brakes never loosen: a HALT (or REDUCE-ONLY) survives a full disk, a zero-byte or corrupt store, read-only
storage and every restart; a desk that cannot know its trading state, or whose ledger does not verify, starts
halted and says why in one line; a bad value in a store is one line naming the file, never a traceback or a hang.

The commands are the real process (`python -m bot ...`) where the command line is what is tested. A full disk is a
small tmpfs and read-only storage a read-only bind mount, where this machine lets the tests mount them (root);
elsewhere those tests are skipped and the injected faults of tests/resume/test_state_store.py and
tests/risk/test_trading_state.py stand in.
"""

from __future__ import annotations

import asyncio
import errno
import json
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import portalocker
import pytest
from simcord import assert_error, assert_responded

from bot.options.risk import TradingState
from bot.paths import ledger_path
from bot.runtime.state_file import STATE_FILE
from bot.runtime.trading_journal import expected_state, journal_path
from bot.runtime.trading_state import OPERATOR, RISK, StateNotSaved
from tests.core.factories import T0

# The bot under simcord, as the Discord tests build it (a desk with a trader, an admin and a member without a role).
from tests.discord.conftest import Desk, bots, clock, desk, simcord_bot, storage  # noqa: F401
from tests.reliability.checks import open_offline_desk
from tests.reliability.storage_faults import (
    HALT,
    Running,
    bot,
    damage,
    files,
    fill,
    journal_writes_fail,
    mount,
    older_store,
    one_line,
    pad_journal_to_a_page,
    set_aside,
    traded,
    zero_bytes,
)

STARTED = "offline on the simulated market"
BAD_LINES = {
    "unknown state": ('{"state": "paused", "reason": "x", "set_by": "operator", "set_at": null}', "state 'paused'"),
    "bad time": ('{"state": "active", "reason": "x", "set_by": "operator", "set_at": "tuesday"}', "set_at 'tuesday'"),
    "naive time": (
        '{"state": "active", "reason": "x", "set_by": "operator", "set_at": "2026-11-25T10:00:00"}',
        "set_at '2026-11-25T10:00:00' has no time zone",
    ),
}


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Callable[[Path], Running]]:
    started: list[Running] = []

    def start(folder: Path) -> Running:
        started.append(Running(folder, tmp_path))
        return started[-1]

    yield start
    for run in started:
        if run.process.poll() is None:
            run.process.kill()
            run.process.wait()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs, unmounted at the end."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mount("-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(disk))
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


# --- a full disk, a zero-byte store, read-only storage: the halt stays ---------------------------------------------


def test_a_full_disk_keeps_the_halt_in_state_status_and_run_and_moves_nothing_aside(
    tmp_path: Path, small_disk: Path, running: Callable[[Path], Running]
) -> None:
    # Arrange: a halted desk's storage on a small disk, then the disk filled up.
    asyncio.run(traded(tmp_path / "built"))
    folder = small_disk / "storage"
    shutil.copytree(tmp_path / "built", folder)
    pad_journal_to_a_page(folder)
    fill(small_disk)
    before = files(folder)

    # Act / Assert: the reads say halted; setting a state is refused in one line; run stops in one line.
    state, status = bot("state", "--storage", str(folder)), bot("status", "--storage", str(folder))
    assert (state.returncode, state.stdout.splitlines()[0]) == (
        0,
        "Trading: HALTED since 2026-11-25 10:00 New York, set by operator: the operator's halt",
    )
    assert (status.returncode, status.stdout.splitlines()[0]) == (0, state.stdout.splitlines()[0])
    refused = one_line(bot("state", "--storage", str(folder), "--set", "active", "--reason", "back to work"))
    assert f"cannot write the trading state to {journal_path(folder)} (No space left on device)" in refused
    run = running(folder).ended()
    assert f"state store {folder / STATE_FILE}: " in one_line(run) and "the disk is full: free space" in run.stderr

    # Assert: nothing set aside, the journal as it was; with space back the operator's halt is still the state
    assert (
        set_aside(folder) == []
        and files(folder)[str(journal_path(folder).relative_to(folder))]
        == (before[str(journal_path(folder).relative_to(folder))])
    )
    (small_disk / "filler").unlink()
    assert expected_state(folder) == HALT


async def test_a_zero_byte_state_store_keeps_the_halt(tmp_path: Path) -> None:
    position_id = await traded(tmp_path)
    zero_bytes(tmp_path / STATE_FILE)

    offline = await open_offline_desk(tmp_path)
    await offline.close()

    assert offline.switch.current == HALT
    assert "was missing or empty and was started anew" in offline.resumed.store_lost and set_aside(tmp_path) == []
    assert offline.manager.get(position_id).qty == 7  # the positions are the ledger's


@pytest.mark.parametrize("view", ["journal", "older store"])
def test_state_and_status_on_read_only_storage_read_and_write_nothing(tmp_path: Path, view: str) -> None:
    # Arrange: a halted desk's storage (its state in the journal, or in an older desk's store), mounted read-only.
    built = tmp_path / "built"
    asyncio.run(traded(built))
    if view == "older store":
        older_store(built, ("halted", HALT.reason, OPERATOR, T0.isoformat()))
    folder = tmp_path / "read-only"
    folder.mkdir()
    mount("--bind", "-o", "ro", str(built), str(folder))
    try:
        before = files(folder)

        # Act
        shown = [
            bot(command, "--storage", str(folder), *more)
            for command in ("state", "status")
            for more in ([], ["--json"])
        ]
        refused = bot("state", "--storage", str(folder), "--set", "active", "--reason", "back to work")

        # Assert: read as it is, halted; the change refused in one line; not a byte written, no file created
        assert [done.returncode for done in shown] == [0, 0, 0, 0], [done.stderr for done in shown]
        assert (
            shown[0].stdout == "Trading: HALTED since 2026-11-25 10:00 New York, set by operator: the operator's halt\n"
        )
        assert json.loads(shown[1].stdout)["state"] == json.loads(shown[3].stdout)["trading_state"]["state"] == "halted"
        assert "Discord backlog: 1 message update(s) waiting" in shown[2].stdout  # the fill's, never delivered
        assert "Read-only file system" in one_line(refused)
        assert files(folder) == before
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


# --- a state that cannot be known, a ledger that does not verify: the desk starts halted ----------------------


def unknown(folder: Path, how: str) -> None:
    """Make the desk's trading state unknowable, as `how` says."""
    path = journal_path(folder)
    if how == "journal missing while the ledger holds fills":
        path.unlink()
    elif how == "journal of zero bytes":
        path.write_bytes(b"")
    else:
        with path.open("a") as journal:
            journal.write(BAD_LINES[how][0] + "\n")


@pytest.mark.parametrize(
    ("how", "why"),
    [
        ("journal missing while the ledger holds fills", "trading_state.jsonl is missing while the ledger"),
        ("journal of zero bytes", "trading_state.jsonl is empty"),
        *[(name, f"trading_state.jsonl line 2: {said}") for name, (_, said) in BAD_LINES.items()],
    ],
)
async def test_a_desk_that_cannot_know_its_state_starts_halted_saying_why_in_one_line_naming_the_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, how: str, why: str
) -> None:
    await traded(tmp_path, halt=False)
    unknown(tmp_path, how)

    offline = await open_offline_desk(tmp_path)
    await offline.close()

    started = offline.switch.current
    assert (started.state, started.set_by) == (TradingState.HALTED, RISK)
    assert f"the trading state could not be known ({journal_path(tmp_path)}" in started.reason and why in started.reason
    assert started.reason.endswith("then resume (/resume, or python -m bot state --set active --reason TEXT)")
    said = [r.getMessage() for r in caplog.records if str(journal_path(tmp_path)) in r.getMessage()]
    assert len(said) == 1 and said[0].startswith("start-up: the desk starts halted: ") and "\n" not in said[0]
    assert expected_state(tmp_path) == started  # journaled: a restart stays halted until an admin resumes


@pytest.mark.parametrize("how", list(BAD_LINES))
def test_state_and_status_say_a_bad_journal_line_means_halted_naming_file_and_line(tmp_path: Path, how: str) -> None:
    asyncio.run(traded(tmp_path, halt=False))
    unknown(tmp_path, how)
    before = files(tmp_path)

    state, status = bot("state", "--storage", str(tmp_path)), bot("status", "--storage", str(tmp_path))

    expected = f"Trading: HALTED (unknown: {journal_path(tmp_path)} line 2: {BAD_LINES[how][1]}"
    assert (state.returncode, status.returncode) == (1, 1)
    assert state.stdout.startswith(expected) and status.stdout.startswith(expected)
    assert state.stdout.count("\n") == 1 and "Traceback" not in state.stderr + status.stderr
    assert files(tmp_path) == before


def test_a_ledger_that_does_not_verify_starts_run_halted_naming_the_line(
    tmp_path: Path, running: Callable[[Path], Running]
) -> None:
    # Arrange: an active desk's ledger whose middle line (the trim) was changed by hand: 4 contracts, not 3.
    asyncio.run(traded(tmp_path, halt=False))
    ledger = ledger_path(tmp_path)
    lines = ledger.read_text().splitlines(keepends=True)
    trim = json.loads(lines[1])
    lines[1] = json.dumps({**trim, "qty": 4}, separators=(",", ":")) + "\n"
    ledger.write_text("".join(lines))
    damaged = ledger.read_bytes()

    # Act
    run = running(tmp_path)
    run.wait_for(STARTED)
    run.stop()

    # Assert: halted from the start, set by risk, the line named; nothing traded
    said = [line for line in run.stderr.splitlines() if "the desk starts halted" in line]
    assert len(said) == 1 and f"the ledger does not verify (line 2 ({trim['event_id']}): " in said[0]
    state = expected_state(tmp_path)
    assert (state.state, state.set_by) == (TradingState.HALTED, RISK) and "line 2 (" in state.reason
    assert ledger.read_bytes() == damaged


# --- bad values in the stores: one line naming the file, or rebuilt and said -----------------------------------


@pytest.mark.parametrize(
    ("sql", "named"),
    [
        ("DROP TABLE exit_highs", "table exit_highs is missing"),
        ("UPDATE exit_highs SET high = '1.1O'", "table exit_highs, position "),
        ("UPDATE orders SET status = 'paused'", "table orders, order "),
    ],
    ids=["dropped table", "bad decimal in a saved high", "bad order status"],
)
def test_a_bad_value_the_ledger_cannot_rebuild_stops_run_in_one_line_naming_file_and_field(
    tmp_path: Path, running: Callable[[Path], Running], sql: str, named: str
) -> None:
    asyncio.run(traded(tmp_path))
    damage(tmp_path, sql)

    ended = running(tmp_path).ended()

    assert one_line(ended).startswith(f"optiondesk: state store {tmp_path / STATE_FILE}: {named}")
    assert set_aside(tmp_path) == [] and expected_state(tmp_path) == HALT


def test_a_bad_checkpoint_is_rebuilt_from_the_ledger_and_said(
    tmp_path: Path, running: Callable[[Path], Running]
) -> None:
    asyncio.run(traded(tmp_path))
    damage(tmp_path, "UPDATE checkpoint SET kept = '{not json'")

    run = running(tmp_path)
    run.wait_for(STARTED)
    run.stop()

    said = [line for line in run.stderr.splitlines() if "table checkpoint cannot be read" in line]
    assert len(said) == 1 and f"state store {tmp_path / STATE_FILE}: " in said[0]
    assert "verifying the whole ledger and saving a new one" in said[0]
    assert expected_state(tmp_path) == HALT


async def test_an_older_desks_halt_is_taken_over_into_the_journal_once(tmp_path: Path) -> None:
    await traded(tmp_path)
    older_store(tmp_path, ("halted", HALT.reason, OPERATOR, T0.isoformat()))

    for _ in range(2):
        offline = await open_offline_desk(tmp_path)
        await offline.close()
        assert offline.switch.current == HALT

    assert journal_path(tmp_path).read_text().count("\n") == 1  # taken over once
    with sqlite3.connect(tmp_path / STATE_FILE) as db:
        assert db.execute("SELECT name FROM sqlite_master WHERE name = 'trading_state'").fetchall() == []


@pytest.mark.parametrize(
    ("row", "said"),
    [
        (("paused", "x", OPERATOR, T0.isoformat()), "state 'paused' is not one of active, reduce-only, halted"),
        (("halted", "x", OPERATOR, "tuesday"), "set_at 'tuesday' is not an ISO-8601 time"),
    ],
    ids=["unknown state", "bad time"],
)
def test_a_bad_trading_state_in_an_older_store_is_named_and_the_desk_starts_halted(
    tmp_path: Path, running: Callable[[Path], Running], row: tuple[str, str, str, str], said: str
) -> None:
    asyncio.run(traded(tmp_path))
    older_store(tmp_path, row)
    where = f"{tmp_path / STATE_FILE} table trading_state: {said}"

    state = bot("state", "--storage", str(tmp_path))
    run = running(tmp_path)
    run.wait_for(STARTED)
    run.stop()

    assert state.returncode == 1 and state.stdout.startswith(f"Trading: HALTED (unknown: {where})")
    assert len([line for line in run.stderr.splitlines() if where in line]) == 1
    started = expected_state(tmp_path)
    assert (started.state, started.set_by) == (TradingState.HALTED, RISK) and where in started.reason


# --- the shell beside a running desk; a store another program holds locked ---------------------------------------


def test_state_set_works_while_a_desk_holds_the_storage_lock_and_the_desk_takes_it(
    tmp_path: Path, running: Callable[[Path], Running]
) -> None:
    run = running(tmp_path)
    run.wait_for(STARTED)
    with pytest.raises(portalocker.LockException), portalocker.Lock(tmp_path / "desk.lock", "a", timeout=0):
        pass  # the desk holds its folder's lock

    done = bot("state", "--storage", str(tmp_path), "--set", "halted", "--reason", "from the shell")
    run.wait_for("trading state active -> halted, set by operator: from the shell")
    run.stop()

    assert done.returncode == 0 and done.stdout.startswith("Trading: HALTED since ")
    assert expected_state(tmp_path).reason == "from the shell"


def test_a_state_store_another_program_holds_locked_is_waited_for_then_named_and_state_set_still_works(
    tmp_path: Path, running: Callable[[Path], Running]
) -> None:
    asyncio.run(traded(tmp_path, halt=False))
    other = sqlite3.connect(tmp_path / STATE_FILE)
    try:
        other.execute("BEGIN EXCLUSIVE")
        other.execute("DELETE FROM exit_highs")

        halted = bot("state", "--storage", str(tmp_path), "--set", "halted", "--reason", "store locked")
        ended = running(tmp_path).ended()
    finally:
        other.rollback()
        other.close()

    assert halted.returncode == 0 and expected_state(tmp_path).reason == "store locked"
    assert "database is locked: another program holds it locked (waited 10 s)" in one_line(ended)
    assert set_aside(tmp_path) == []


# --- Discord: the admins hear why ------------------------------------------------------------------------------


async def test_the_admin_channel_hears_why_the_desk_starts_halted_and_resume_lets_it_trade(desk: Desk) -> None:  # noqa: F811
    admins = desk.guild.create_text_channel("desk-admins")
    await desk.open()
    desk.use_settings(admin_channel_id=admins.id)
    journal_path(desk.storage).unlink()  # lost while the bot is down

    await desk.restart()
    await desk.env.settle()

    [notice] = [m.content for m in admins.history() if m.author.id == desk.bot.user.id]
    assert notice.startswith("optiondesk restarted: the desk starts halted: the trading state could not be known (")
    assert "trading_state.jsonl is missing while the ledger" in notice
    assert desk.bot.desk.switch.current.state is TradingState.HALTED
    resumed = await desk.admin.slash(desk.channel, "resume", reason="checked the books")
    assert_responded(resumed, ephemeral=True, contains="The desk is now active")
    assert expected_state(desk.storage).state is TradingState.ACTIVE


async def test_a_halt_the_disk_cannot_save_holds_and_says_so_and_a_resume_then_is_refused(desk: Desk) -> None:  # noqa: F811
    journaled = journal_path(desk.storage).read_bytes()

    with journal_writes_fail(errno.ENOSPC):
        halt = await desk.admin.slash(desk.channel, "halt", reason="feed down")
        resume = await desk.admin.slash(desk.channel, "resume", reason="all clear")

    assert_responded(halt, ephemeral=True, contains="It could not be saved, so a restart would forget it")
    assert_responded(
        resume,
        ephemeral=True,
        content="Nothing changed: the trading state could not be saved, so the desk stays halted (the log says why).",
    )
    assert_error(desk.env, StateNotSaved)
    assert desk.bot.desk.switch.current.state is TradingState.HALTED
    assert journal_path(desk.storage).read_bytes() == journaled


# --- a ledger that lost fills: deleted, cut short, an older copy put back -----------------------------------------


async def start_and_stop(folder: Path) -> TradingState:
    offline = await open_offline_desk(folder)
    state = offline.switch.current.state
    await offline.close()
    return state


@pytest.mark.parametrize("loss", ["deleted", "emptied"])
async def test_a_desk_whose_ledger_lost_its_fills_starts_halted_saying_why_once(tmp_path: Path, loss: str) -> None:
    position_id = await traded(tmp_path, halt=False)
    if loss == "deleted":
        ledger_path(tmp_path).unlink()
    else:
        ledger_path(tmp_path).write_bytes(b"")

    assert await start_and_stop(tmp_path) is TradingState.HALTED
    reason = expected_state(tmp_path).reason
    assert "the ledger has lost fills" in reason and position_id in reason
    assert "put back the whole ledger from a copy" in reason

    # The operator checked the (empty) books and resumed: the next start holds that, saying nothing again.
    assert bot("state", "--set", "active", "--reason", "books checked", "--storage", str(tmp_path)).returncode == 0
    assert await start_and_stop(tmp_path) is TradingState.ACTIVE


async def test_a_ledger_cut_shorter_than_the_last_start_verified_halts_the_desk(tmp_path: Path) -> None:
    await traded(tmp_path, halt=False)
    assert await start_and_stop(tmp_path) is TradingState.ACTIVE  # a restart: its checkpoint covers every line
    path = ledger_path(tmp_path)
    whole = path.read_bytes()
    path.write_bytes(whole.split(b"\n", 1)[0] + b"\n")  # the open's line alone: the trim is gone

    assert await start_and_stop(tmp_path) is TradingState.HALTED
    assert f"bytes long where the last start verified {len(whole)}" in expected_state(tmp_path).reason


async def test_a_whole_ledger_restarts_as_it_was(tmp_path: Path) -> None:
    await traded(tmp_path, halt=False)

    for _ in range(2):
        assert await start_and_stop(tmp_path) is TradingState.ACTIVE


async def test_a_ledger_cut_among_todays_fills_before_any_restart_halts_the_desk(tmp_path: Path) -> None:
    await traded(tmp_path, halt=False)  # an open of 10, then a trim of 3, with no restart since
    path = ledger_path(tmp_path)
    opened, trimmed = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(opened)  # the trim's line gone: the position would show 10 contracts, not 7

    assert await start_and_stop(tmp_path) is TradingState.HALTED
    reason = expected_state(tmp_path).reason
    assert "fewer fills than 1 order(s) recorded" in reason and json.loads(trimmed)["order_id"] in reason

    path.write_bytes(opened + trimmed)  # put back whole, and resumed: the next start holds
    assert bot("state", "--set", "active", "--reason", "ledger put back", "--storage", str(tmp_path)).returncode == 0
    assert await start_and_stop(tmp_path) is TradingState.ACTIVE
