"""Faults of the disk under a running desk: the disk full, the ledger moved, replaced or deleted, the message map
unusable. Each is one clear line (to the log, the trader or the admins), never a traceback, and nothing is written
where it does not belong."""

from __future__ import annotations

import errno
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bot.paths import StorageError, write_atomically
from bot.runtime.message_map import MessageMap, PostedMessage

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


def temp_files(storage: Path) -> list[str]:
    return sorted(name for name in os.listdir(storage) if name.startswith(f".{MAP_FILE}."))


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
