"""Faults of the disk under a running desk: the disk full, the ledger moved, replaced or deleted, the message map
unusable. Each is one clear line (to the log, the trader or the admins), never a traceback, and nothing is written
where it does not belong."""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from simcord import assert_error, assert_responded

from bot.options.errors import TradeError
from bot.options.risk import DeskState, TradingState
from bot.paths import StorageError, write_atomically
from bot.runtime.message_map import MessageMap, PostedMessage
from bot.runtime.trading_journal import journal_path, read_journal
from bot.runtime.trading_state import RISK, TradingSwitch

# The bot under simcord, as the Discord tests build it (a desk with a trader, an admin and a member without a role).
from tests.discord.conftest import Desk, bots, clock, desk, simcord_bot, storage  # noqa: F401

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


@pytest.mark.parametrize(
    ("content", "field"),
    [
        ({"version": 1, "reset_at": "2026-12-01T16:15:00", "messages": {}}, "reset_at"),
        (
            {"version": 1, "messages": {"pos-a": {**ENTRY, "posted_at": "2026-12-01T15:00:00"}}},
            "messages.pos-a.posted_at",
        ),
        ({"version": 1, "messages": {"pos-a": {**ENTRY, "channel_id": "general"}}}, "messages.pos-a.channel_id"),
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
