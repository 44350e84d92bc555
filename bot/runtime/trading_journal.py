"""`storage/options/trading_state.jsonl`: the desk's trading state, an append-only journal beside the ledger.

One JSON line per change (`state`, `reason`, `set_by`, `set_at`), fsync'd before the change counts; the last
complete line is the state. A last line without its newline was cut short by a crash and never acknowledged: it
is ignored, and the next append cuts it away. Writers (the desk, `python -m bot state --set`) hold the journal's
own OS lock (flock) only while they append, so the shell can set the state while a desk runs: the desk's lock on
the storage folder is another lock.

Reading never writes. A journal that is there but cannot be read, is empty, or ends in a line that is not a valid
state means the state cannot be known: the reader gets `unknown_state(why)` (halted), never something looser.
"""

import fcntl
import json
import os
import stat
import time
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from bot.options.risk import NEVER_SET, DeskState, TradingState, unknown_state
from bot.paths import StorageError, fsync_dir, ledger_path, private_dir

JOURNAL_NAME = "trading_state.jsonl"
LOCK_WAIT_SECONDS = 10.0  # an append holds the lock for one write and fsync: far longer means a stuck holder

# What a reader saw of the file, to tell whether it changed since: (inode, size, mtime ns); None: no file.
Signature = tuple[int, int, int] | None
_STATES = ", ".join(s.value for s in TradingState)


def journal_path(storage: Path) -> Path:
    return ledger_path(storage).parent / JOURNAL_NAME


# Not a frozen dataclass, which `state` and `status` would take 0.8 ms to make; no annotations from __future__ in this
# module, as typing would compile each field's type given as text (~30 us a field).
class Reading(NamedTuple):
    state: DeskState | None  # None: there is no journal
    signature: Signature


def signature(path: Path) -> Signature:
    try:
        return _signature(os.stat(path))
    except FileNotFoundError:
        return None
    except OSError:
        return (-1, -1, -1)  # unreadable: differs from what any successful read saw


def _signature(info: os.stat_result) -> Signature:
    return (info.st_ino, info.st_size, info.st_mtime_ns)


def read_journal(path: Path) -> Reading:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return Reading(None, None)
    except OSError as error:
        return Reading(unknown_state(f"{path} cannot be read ({_why(error)})"), signature(path))
    try:
        info = os.fstat(fd)  # before the read: an append racing it shows as a change at the next look
        if not stat.S_ISREG(info.st_mode):
            return Reading(unknown_state(f"{path} is not a file"), _signature(info))
        data = _read_all(fd, info.st_size)
    except OSError as error:
        return Reading(unknown_state(f"{path} cannot be read ({_why(error)})"), signature(path))
    finally:
        os.close(fd)
    return Reading(parse_journal(path, data), _signature(info))


def _read_all(fd: int, size: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, max(size, 1 << 16)):
        chunks.append(chunk)
    return b"".join(chunks)


def parse_journal(path: Path, data: bytes) -> DeskState:
    """The state the journal's last complete line holds."""
    if not data:
        return unknown_state(f"{path} is empty")
    end = data.rfind(b"\n")
    if end < 0:
        return unknown_state(f"{path} holds no complete line")
    start = data.rfind(b"\n", 0, end) + 1
    number = data.count(b"\n", 0, end) + 1
    try:
        raw = json.loads(data[start:end])
        if not isinstance(raw, dict):
            raise ValueError("it is not a JSON object")
        return desk_state(raw.get("state"), raw.get("reason"), raw.get("set_by"), raw.get("set_at"))
    except ValueError as problem:  # bad JSON and bad UTF-8 included
        return unknown_state(f"{path} line {number}: {problem}")


def desk_state(state: object, reason: object, set_by: object, set_at: object) -> DeskState:
    """A trading state from stored fields; ValueError naming the field that is not valid."""
    if not isinstance(state, str) or state not in {s.value for s in TradingState}:
        raise ValueError(f"state {state!r} is not one of {_STATES}")
    if not isinstance(reason, str):
        raise ValueError(f"reason {reason!r} is not text")
    if not isinstance(set_by, str) or not set_by:
        raise ValueError(f"set_by {set_by!r} is not a name")
    return DeskState(TradingState(state), reason, set_by, _time(set_at))


def _time(value: object) -> datetime | None:
    if value is None:
        return None  # never changed
    try:
        when = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        when = None
    if when is None:
        raise ValueError(f"set_at {value!r} is not an ISO-8601 time")
    if when.utcoffset() is None:
        raise ValueError(f"set_at {value!r} has no time zone")
    return when


def _line(desk: DeskState) -> bytes:
    fields = {
        "state": desk.state.value,
        "reason": desk.reason,
        "set_by": desk.set_by,
        "set_at": desk.set_at.isoformat() if desk.set_at else None,
    }
    return json.dumps(fields).encode() + b"\n"


def append_journal(path: Path, desk: DeskState, *, wait: float = LOCK_WAIT_SECONDS) -> Signature:
    """Add `desk` as the journal's last line, on disk before this returns; returns the journal's signature then.

    StorageError (one line naming the file and what to do) when it cannot be written; the journal is then as it
    was (a part written before a failure is cut away, or at worst left as a torn line, which readers ignore).
    """
    try:
        private_dir(path.parent)
        created = not path.exists()
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    except OSError as error:
        raise _cannot_write(path, error) from None
    try:
        _lock(fd, path, wait)
        kept = _complete_length(fd)
        try:
            if kept != os.fstat(fd).st_size:
                os.ftruncate(fd, kept)  # a line torn by a crashed writer: never acknowledged
            data = _line(desk)
            while data:
                data = data[os.write(fd, data) :]
            os.fsync(fd)
            seen = _signature(os.fstat(fd))  # under the lock: another writer's line shows as a change later
        except OSError as error:
            _cut_back(fd, kept)
            raise _cannot_write(path, error) from None
    finally:
        os.close(fd)  # releases the lock
    if created:
        try:
            fsync_dir(path.parent)
        except OSError as error:
            raise _cannot_write(path, error) from None
    return seen


def _lock(fd: int, path: Path, wait: float) -> None:
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise StorageError(
                    f"cannot write the trading state to {path}: another process has held its lock for {wait:.0f} s; "
                    "find it (fuser on the file), stop it, then set the state again"
                ) from None
            time.sleep(0.05)


def _complete_length(fd: int) -> int:
    """The file's length up to and including its last newline."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return size
    return os.pread(fd, size, 0).rfind(b"\n") + 1


def _cut_back(fd: int, length: int) -> None:
    try:
        os.ftruncate(fd, length)
    except OSError:
        pass  # the part written has no newline: a torn line, which readers ignore and the next append cuts away


def _cannot_write(path: Path, error: OSError) -> StorageError:
    return StorageError(
        f"cannot write the trading state to {path} ({_why(error)}): free space or make it writable, "
        "then set the state again"
    )


def _why(error: OSError) -> str:
    return error.strerror or str(error)


# Before the journal ------------------------------------------------------------------------------------------


def legacy_state(storage: Path) -> DeskState | None:
    """The trading state an older desk kept in its state store's `trading_state` table, read without writing
    anything; None when there is none (no file, an empty one, or a store without that table)."""
    # Here, not above: only a storage without a journal looks in its old store; the read-only commands skip sqlite3.
    import sqlite3

    from bot.runtime.state_file import STATE_FILE, read_only

    store = storage / STATE_FILE
    try:
        if store.stat().st_size == 0:
            return None
    except FileNotFoundError:
        return None
    except OSError as error:
        return unknown_state(f"{store} cannot be read ({_why(error)})")
    try:
        with read_only(store) as db:
            table = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'trading_state'"
            if db.execute(table).fetchone() is None:
                return None
            row = db.execute("SELECT state, reason, set_by, set_at FROM trading_state WHERE id = 1").fetchone()
    except sqlite3.Error as error:
        return unknown_state(f"{store}, which held the trading state before, cannot be read ({error})")
    if row is None:
        return NEVER_SET
    try:
        return desk_state(row[0], row[1], row[2], row[3] or None)  # the store wrote "" for never changed
    except ValueError as problem:
        return unknown_state(f"{store} table trading_state: {problem}")


def expected_state(storage: Path) -> DeskState:
    """The state a desk starting on `storage` now would take, read without writing anything: the journal's; before
    there is one, an older desk's store's, or for a new desk (no fill in the ledger) never changed; else unknown."""
    path = journal_path(storage)
    state = read_journal(path).state
    if state is None:
        state = legacy_state(storage)
    if state is None:
        ledger = ledger_path(storage)
        if not _has_lines(ledger):
            return NEVER_SET
        state = unknown_state(f"{path} is missing while the ledger {ledger} holds fills")
    return state


def _has_lines(ledger: Path) -> bool:
    try:
        with ledger.open("rb") as file:
            return file.readline().endswith(b"\n")
    except FileNotFoundError:
        return False
    except OSError:
        return True  # unreadable: it may hold fills


def first_line(storage: Path) -> DeskState:
    """Start a desk's journal when it has none: with the state an older desk kept in its state store (before the
    store's migration drops that table), or never changed for a new desk. Returns the state as it stands
    (`unknown_state(why)` when it cannot be known; nothing is written then); StorageError if the line could not
    be written."""
    state = expected_state(storage)
    path = journal_path(storage)
    if state.known and not path.exists():
        append_journal(path, state)
    return state
