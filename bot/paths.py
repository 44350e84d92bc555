"""Where the bot keeps its files: one storage directory, `storage/` at the project root by default, readable by its
owner only."""

import contextlib
import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


DEFAULT_STORAGE = PROJECT_ROOT / "storage"


class StorageError(Exception):
    """A file or folder of the storage cannot be used as it is; the message names it and says what to do.

    Every command ends on it with that one line and exit status 1 (no traceback)."""


def private_dir(path: Path) -> Path:
    """Create `path` and every missing parent owner-only (0700): `mkdir(parents=True)` would make the parents with
    the default mode. (A umask only takes bits away, so it cannot widen them.)"""
    for directory in reversed([p for p in (path, *path.parents) if not p.exists()]):
        directory.mkdir(mode=0o700, exist_ok=True)
    return path


def write_atomically(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Replace `path` with `data` so that a crash leaves either the old file or the new one, whole (`durable=False`:
    the process's stop leaves one or the other; a machine's crash may leave neither, for no sync waits).

    A write that fails (a full disk) leaves the old file and no temp file behind, and raises an OSError naming
    `path`, whichever step failed."""
    import tempfile  # here: most commands only read, and tempfile brings random and shutil

    private_dir(path.parent)
    temp: str | None = None
    try:
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # created owner-only
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            if durable:
                os.fsync(file.fileno())
        os.replace(temp, path)
        temp = None
        if durable:
            fsync_dir(path.parent)
    except OSError as error:
        raise OSError(error.errno, error.strerror, str(path)) from error
    finally:
        if temp is not None:
            with contextlib.suppress(OSError):
                os.unlink(temp)


def fsync_dir(directory: Path) -> None:
    """Make a file's creation or rename in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ledger_path(storage: Path) -> Path:
    return storage / "options" / "trade_events.jsonl"
