"""One writer per storage folder: an OS lock held for as long as a command that writes runs.

A desk (offline or on Discord), the demo and `reconcile --apply` take their folder's lock before they open a
file in it; a second writer is refused at once, with one line naming the holder. The kernel holds the lock
(flock, through portalocker), so a process that dies releases it: no stale pid file ever blocks a start. The
holder's note in the lock file (pid, command, since, and how its Discord link is) only names the holder to
whoever is refused, and shows the link in `python -m bot status`; it never decides who holds the lock.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NamedTuple

from bot.paths import StorageError

if TYPE_CHECKING:
    import portalocker

LOCK_FILE = "desk.lock"


class Holder(NamedTuple):
    """Who writes to a storage folder now. (A NamedTuple: `status` reads it, and a frozen dataclass would take 1 ms of
    its start to make.)"""

    pid: int
    command: str
    since: str  # UTC ISO time the lock was taken
    discord: str | None = None  # how the desk's Discord link is, when it has one ("connected", "unreachable ...")
    broker: str | None = None  # the desk's broker account, when it has one ("Alpaca paper, options level 2")

    def describe(self) -> str:
        if not self.pid:
            return "another process"
        return f"pid {self.pid} ({self.command}, since {self.since})"


UNKNOWN_HOLDER = Holder(pid=0, command="unknown", since="unknown")


def _private_opener(path: str, flags: int) -> int:
    return os.open(path, flags, 0o600)


class StorageLock:
    """The exclusive lock of one storage folder; `acquire` raises StorageError naming the holder if it is taken."""

    def __init__(self, storage: Path, command: str) -> None:
        import portalocker  # here, not above: `status` reads the holder's note without it (40 ms to import)

        self.path = storage / LOCK_FILE
        self._holder = Holder(os.getpid(), command, datetime.now(UTC).isoformat(timespec="seconds"))
        self._lock: portalocker.Lock[IO[str]] = portalocker.Lock(
            self.path,
            "w",
            timeout=0,
            fail_when_locked=True,
            flags=portalocker.LockFlags.EXCLUSIVE | portalocker.LockFlags.NON_BLOCKING,
            opener=_private_opener,
        )
        self._file: IO[str] | None = None

    def acquire(self) -> StorageLock:
        import portalocker

        try:
            self._file = self._lock.acquire()
        except portalocker.AlreadyLocked:
            holder = read_holder(self.path.parent) or UNKNOWN_HOLDER
            raise StorageError(
                f"storage {self.path.parent} is in use by {holder.describe()}; stop it first, or give this command "
                "another --storage"
            ) from None
        except OSError as error:
            raise StorageError(_cannot_lock(self.path, error)) from None
        self.note()  # a full disk must not stop the start here: the note only informs
        return self

    def note(self, **changes: Any) -> None:
        """Update the holder's note (e.g. `discord="unreachable since ..."`); a failed write is not a fault of the
        desk (the note only informs), so it is dropped."""
        self._holder = self._holder._replace(**changes)
        try:
            self._write()
        except OSError:
            pass

    def _write(self) -> None:
        if self._file is None:
            return
        self._file.seek(0)
        self._file.truncate()
        self._file.write(json.dumps(self._holder._asdict()) + "\n")
        self._file.flush()

    def release(self) -> None:
        if self._file is not None:
            self._file = None
            self._lock.release()

    def __enter__(self) -> StorageLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _cannot_lock(path: Path, error: OSError) -> str:
    if error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return f"storage {path.parent} is read-only ({error.strerror}); a command that writes needs it writable"
    return f"cannot lock the storage {path.parent} ({path.name}: {error.strerror or error}); check the folder"


def read_holder(storage: Path) -> Holder | None:
    """The process that holds `storage`'s lock now, or None if none does. Reads only: a read-only folder is fine."""
    path = storage / LOCK_FILE
    try:
        with path.open("r") as file:
            try:
                # Free to share means nobody holds it exclusively: the note is a dead holder's, and says nothing.
                fcntl.flock(file.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                pass
            else:
                fcntl.flock(file.fileno(), fcntl.LOCK_UN)
                return None
            return Holder(**json.loads(file.read()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError):
        # Held, but the note is unreadable (being rewritten this instant, or damaged): the holder is still real.
        return UNKNOWN_HOLDER
