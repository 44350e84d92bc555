"""Faults of the disk under a running desk: the disk full, the ledger moved, replaced or deleted, the message map
unusable. Each is one clear line (to the log, the trader or the admins), never a traceback, and nothing is written
where it does not belong."""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiosqlite
import pytest
from simcord import assert_error, assert_responded

from bot.options.errors import TradeError
from bot.options.outages import Outages
from bot.options.risk import DeskState, TradingState
from bot.paths import StorageError, write_atomically
from bot.runtime.message_map import MessageMap, PostedMessage
from bot.runtime.trading_journal import journal_path, read_journal
from bot.runtime.trading_state import RISK, TradingSwitch
from tests.core.factories import quote

# The bot under simcord, as the Discord tests build it (a desk with a trader, an admin and a member without a role).
from tests.discord.conftest import QQQ, SPY, Desk, bots, clock, desk, simcord_bot, storage  # noqa: F401
from tests.reliability.checks import assert_nothing_lost, open_offline_desk
from tests.reliability.storage_faults import bot, one_line

MAP_FILE = "message_ids.json"
POSTED = PostedMessage(1, 11, "evt-1", "2026-11-25T15:00:00+00:00")
ENTRY = {"channel_id": 1, "message_id": 11, "event_id": "evt-1", "posted_at": "2026-11-25T15:00:00+00:00"}


@contextmanager
def writes_fail(under: Path, code: int = errno.ENOSPC) -> Iterator[list[str]]:
    """Every os.write and os.fsync of a file under `under` fails with `code`, as on a full disk; yields the names of
    the files that failed."""
    real_write, real_fsync = os.write, os.fsync
    failed: list[str] = []

    def target(fd: int) -> str | None:
        try:
            name = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            return None
        return name if Path(name).is_relative_to(under) and not Path(name).is_dir() else None

    def fail_or(real):  # type: ignore[no-untyped-def]
        def call(fd: int, *args: object) -> object:
            name = target(fd)
            if name is None:
                return real(fd, *args)
            failed.append(name)
            raise OSError(code, os.strerror(code))

        return call

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "write", fail_or(real_write))
        patch.setattr(os, "fsync", fail_or(real_fsync))
        yield failed


def temp_files(folder: Path) -> list[str]:
    return sorted(name for name in os.listdir(folder) if name.startswith(f".{MAP_FILE}."))


# ---------------------------------------------------------------------------------------------------------------
# An atomic write on a full disk


def test_a_failed_atomic_write_keeps_the_old_file_leaves_no_temp_file_and_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / MAP_FILE
    write_atomically(path, b"old")

    with writes_fail(tmp_path) as failed, pytest.raises(OSError) as raised:
        write_atomically(path, b"new")

    assert failed
    assert raised.value.errno == errno.ENOSPC and raised.value.filename == str(path)
    assert str(path) in str(raised.value)
    assert path.read_bytes() == b"old"
    assert temp_files(tmp_path) == []


# ---------------------------------------------------------------------------------------------------------------
# The message map: a full disk, a directory, content it cannot use


def test_message_map_saves_failing_on_a_full_disk_are_one_warning_and_the_map_is_saved_when_space_returns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    messages = MessageMap(tmp_path / MAP_FILE)
    messages.set("pos-a", POSTED)

    with writes_fail(tmp_path):
        for number in range(5):  # five updates while the disk is full: each shown, none saved
            messages.set(f"pos-{number}", POSTED)

    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "No space left on device" in warnings[0].getMessage()
    assert str(tmp_path / MAP_FILE) in warnings[0].getMessage()
    assert not [r for r in caplog.records if r.exc_info]
    assert temp_files(tmp_path) == []
    assert set(MessageMap(tmp_path / MAP_FILE).messages) == {"pos-a"}  # the file still holds the last saved map

    messages.set("pos-b", POSTED)  # space is back: the next update saves the whole map

    assert set(MessageMap(tmp_path / MAP_FILE).messages) == {"pos-a", "pos-b", *(f"pos-{n}" for n in range(5))}
    assert "saved again" in caplog.text


def test_a_message_map_that_is_a_directory_stops_the_start_in_one_line_naming_it(tmp_path: Path) -> None:
    (tmp_path / MAP_FILE).mkdir()

    with pytest.raises(StorageError) as raised:
        MessageMap(tmp_path / MAP_FILE)

    assert str(tmp_path / MAP_FILE) in str(raised.value) and "is a directory" in str(raised.value)
    assert "move it away" in str(raised.value) and "\n" not in str(raised.value)


def test_run_on_a_message_map_that_is_a_directory_ends_in_one_line_naming_it(tmp_path: Path) -> None:
    (tmp_path / MAP_FILE).mkdir()

    line = one_line(bot("run", "--storage", str(tmp_path), "--speed", "600"))

    assert f"the message map {tmp_path / MAP_FILE} is a directory" in line


@pytest.mark.parametrize(
    ("content", "field"),
    [
        ({"version": 1, "reset_at": "2026-12-01T16:15:00", "messages": {}}, "reset_at"),
        (
            {"version": 1, "messages": {"pos-a": {**ENTRY, "posted_at": "2026-12-01T15:00:00"}}},
            "messages.pos-a.posted_at",
        ),
        ({"version": 1, "messages": {"pos-a": {**ENTRY, "channel_id": "general"}}}, "messages.pos-a.channel_id"),
        ({"version": 1, "messages": {"pos-a": {**ENTRY, "channel_id": True}}}, "messages.pos-a.channel_id"),
        ({"version": 1, "messages": {"pos-a": {**ENTRY, "posting": "yes"}}}, "messages.pos-a.posting"),
        ({"messages": {"pos-a": {k: v for k, v in ENTRY.items() if k != "message_id"}}}, "messages.pos-a.message_id"),
        ({"version": 1, "messages": [ENTRY]}, "messages"),
        ("not json", "the file"),
        ([1, 2], "the file"),
    ],
)
def test_message_map_content_it_cannot_use_is_set_aside_in_one_warning_naming_the_field_and_the_desk_starts_empty(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: object, field: str
) -> None:
    path = tmp_path / MAP_FILE
    path.write_text(content if isinstance(content, str) else json.dumps(content))

    messages = MessageMap(path)

    assert (messages.messages, messages.reset_at) == ({}, None)
    [warning] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert str(path) in warning.getMessage() and field in warning.getMessage()
    [aside] = [name for name in os.listdir(tmp_path) if name.startswith(f"{MAP_FILE}.corrupt-")]
    assert aside in warning.getMessage() and not path.exists()


# ---------------------------------------------------------------------------------------------------------------
# The ledger moved, replaced or deleted under a running desk


def when_halted(switch: TradingSwitch) -> asyncio.Event:
    """Set once the switch has taken up a halt (it is journaled first, on a thread)."""
    halted = asyncio.Event()

    async def heard(before: DeskState, after: DeskState) -> None:
        if after.state is TradingState.HALTED:
            halted.set()

    switch.subscribe(heard)
    return halted


@pytest.mark.parametrize("how", ["deleted", "moved", "replaced"])
async def test_the_ledger_moved_replaced_or_deleted_under_a_running_desk_halts_it_tells_the_admins_and_writes_nowhere(
    desk: Desk,  # noqa: F811 (the fixture)
    how: str,
) -> None:
    # Arrange: a position open, an admin channel, and the ledger's file taken away.
    admins = desk.guild.create_text_channel("desk-admins")
    desk.use_settings(admin_channel_id=admins.id)
    position = await desk.open(qty=4)
    ledger, elsewhere = desk.ledger_file, desk.storage / "trade_events.elsewhere.jsonl"
    recorded = ledger.read_bytes()
    if how == "deleted":
        ledger.unlink()
    elif how == "moved":
        ledger.rename(elsewhere)
    else:  # another file with the same lines put in its place, as a restore from a backup would
        elsewhere.write_bytes(recorded)
        os.replace(elsewhere, ledger)

    # Act: a trader trims, and again once the desk has halted.
    halted = when_halted(desk.bot.desk.switch)
    first = await desk.trader.slash(desk.channel, "trim", position=position.position_id, qty=1)
    async with asyncio.timeout(60):
        await halted.wait()
    state = desk.bot.desk.switch.current
    second = await desk.trader.slash(desk.channel, "trim", position=position.position_id, qty=1)
    await desk.bot.alerts.drain()
    await desk.env.settle()

    # Assert: both refused in a sentence, nothing changed, not a byte written anywhere.
    assert_responded(first, ephemeral=True, contains="could not be recorded, so nothing changed")
    assert_responded(second, ephemeral=True, contains="Refused: the desk is halted")
    assert_error(desk.env, TradeError)
    assert desk.manager.get(position.position_id).qty == 4
    if how == "deleted":
        assert not ledger.exists()
        assert os.fstat(desk.bot.desk.ledger._fd or -1).st_size == len(recorded)  # the unlinked file, as it was
    else:
        assert (ledger if how == "replaced" else elsewhere).read_bytes() == recorded
        assert ledger.exists() == (how == "replaced")
    # Halted by risk, saying why; the admins told of the ledger and of the halt.
    assert (state.set_by, str(ledger) in state.reason) == (RISK, True)
    stored = read_journal(journal_path(desk.storage)).state
    assert stored is not None and stored.state is TradingState.HALTED
    told = [m.content for m in admins.history() if m.author.id == desk.bot.user.id]
    assert any("moved, replaced or deleted" in text and str(ledger) in text for text in told), told
    assert any(text.startswith("Trading state: **halted**") for text in told), told


# ---------------------------------------------------------------------------------------------------------------
# A full disk under a running desk: the ledger, the message map and the state store all fail to write


@contextmanager
def full_disk(folder: Path, how: str) -> Iterator[None]:
    """The disk under `folder` full: a small tmpfs filled to the last byte (where this machine lets a test mount
    one), or ENOSPC injected at every os.write and os.fsync there and SQLite's "database or disk is full" at every
    commit. Space comes back on leaving."""
    if how == "tmpfs":
        filler = folder / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while True:
                os.write(fd, bytes(1 << 16))
        except OSError as error:
            assert error.errno == errno.ENOSPC
        finally:
            os.close(fd)
        try:
            yield
        finally:
            filler.unlink()
        return

    async def commit(self: aiosqlite.Connection) -> None:
        error = sqlite3.OperationalError("database or disk is full")
        error.sqlite_errorcode = sqlite3.SQLITE_FULL  # type: ignore[attr-defined]
        raise error

    with writes_fail(folder), pytest.MonkeyPatch.context() as patch:
        patch.setattr(aiosqlite.Connection, "commit", commit)
        yield


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MB tmpfs (root only; skipped where this machine does not allow mounting one)."""
    folder = tmp_path / "disk"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


@pytest.mark.parametrize("how", ["tmpfs", "injected"])
async def test_a_full_disk_refuses_each_trade_in_one_line_and_one_sentence_with_no_traceback_and_no_temp_file(
    request: pytest.FixtureRequest, tmp_path: Path, caplog: pytest.LogCaptureFixture, how: str
) -> None:
    # Arrange: a desk with a position, its message shown.
    folder = request.getfixturevalue("small_disk") if how == "tmpfs" else tmp_path
    offline = await open_offline_desk(folder)
    try:
        offline.quotes.update(SPY.symbol, quote("1.00", "1.10", size=1000))
        offline.quotes.update(QQQ.symbol, quote("2.00", "2.10", size=1000))
        position = await offline.manager.open_position(SPY, 40, strategy="orb")
        await offline.notifier.flush()
        caplog.clear()

        # Act: the disk fills up; trims are asked for until three are refused (on a real disk a few lines may still
        # fit in the ledger's last block), then a new position, with the messages delivered in between.
        refusals: list[str] = []
        with full_disk(folder, how):
            for _ in range(30):
                try:
                    await offline.manager.trim(position.position_id, qty=1)
                except TradeError as refused:
                    refusals.append(str(refused))
                await offline.notifier.flush()
                if len(refusals) == 3:
                    break
            with pytest.raises(TradeError) as opening:
                await offline.manager.open_position(QQQ, 1, strategy="mr")
            refusals.append(str(opening.value))
            await offline.notifier.flush()
            records = list(caplog.records)
            leftovers = [name for name in os.listdir(folder) if name.startswith(".")]

        # Assert: each refusal one sentence to the trader and one line in the log (the order's intent or its fill could
        # not be recorded); the stores' own failures one line each, once; no traceback; no temp file left behind.
        assert len(refusals) == 4
        assert all(
            "could not be recorded, so it was not sent" in text or "could not be recorded, so nothing changed" in text
            for text in refusals
        ), refusals
        refused_lines = [r for r in records if "not recorded" in r.getMessage()]
        assert len(refused_lines) == 4, [r.getMessage() for r in refused_lines]
        assert all(
            "No space left on device" in r.getMessage() or "database or disk is full" in r.getMessage()
            for r in refused_lines
        )
        other = [r.getMessage() for r in records if r.levelno >= logging.WARNING and r not in refused_lines]
        assert len(other) == len(set(other)) <= 2, other  # each store's failure once (the map, an order's end)
        assert not [r for r in records if r.exc_info], "a traceback was logged"
        assert all("\n" not in r.getMessage() for r in records)
        assert leftovers == []
        assert len(offline.manager.all_positions()) == 1

        # Space is back: trading goes on, and the ledger holds every fill that was recorded, once.
        await offline.manager.trim(position.position_id, qty=1)
        await offline.notifier.flush()
        assert_nothing_lost(folder, offline.manager.all_positions())
    finally:
        await offline.close()


def test_a_failing_store_is_said_once_then_once_per_interval_counting_the_rest_and_once_when_it_works_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    now = [0.0]
    outages = Outages(logging.getLogger("test"), interval=300, clock=lambda: now[0])
    full = StorageError("state store s.sqlite3: database or disk is full")

    for second in range(0, 610, 10):  # a failure every 10 s for ten minutes
        now[0] = second
        outages.failed("StateStore.save_high", "event %s not stored: %s", f"evt-{second}", full)
    outages.worked("StateStore.save_high")
    outages.worked("StateStore.save_high")

    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 4, lines  # at 0, 300 and 600 s, then back
    assert lines[0].startswith("event evt-0 not stored: state store s.sqlite3: database or disk is full")
    assert "; 29 more since" in lines[1] and "; 29 more since" in lines[2]
    assert lines[3] == "StateStore.save_high works again"


@pytest.mark.parametrize("code", [errno.EPERM, errno.EROFS])
def test_a_ledger_that_cannot_be_opened_for_writing_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    from bot.options.trade_ledger import LedgerError, TradeLedger

    real_open = os.open
    path = tmp_path / "options" / "trade_events.jsonl"

    def refusing(file: object, flags: int, *args: object) -> int:
        if str(file) == str(path) and flags & os.O_WRONLY:
            raise OSError(code, os.strerror(code))  # an immutable file (chattr +i), a read-only mount
        return real_open(file, flags, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", refusing)

    with pytest.raises(LedgerError, match=f"cannot open the trade ledger {path} for writing"):
        TradeLedger.open(path)
