"""What every command shares: exit statuses, the usage error, the date and storage arguments."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from bot.paths import StorageError, private_dir

if TYPE_CHECKING:
    from bot.storage_lock import StorageLock

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports a process the signal ended


class UsageError(Exception):
    """Arguments that cannot be taken (bad dates, flags that cannot go together); the message is the one line shown,
    and the exit status 2."""


def warn(message: str, *args: object) -> None:
    """A read-only command's warning: one line on stderr like its other lines. Logging is set up only for the commands
    that run a desk or write (a read-only command starts without it, some 8 ms)."""
    print(f"optiondesk: warning: {message % args}", file=sys.stderr)


def market_day(value: str) -> date:
    """A `--date` argument: a day the market calendar answers for."""
    from bot.options.market_hours import FIRST_DAY, LAST_DAY

    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date in the form YYYY-MM-DD") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise argparse.ArgumentTypeError(f"{value} is outside the market calendar ({FIRST_DAY} to {LAST_DAY})")
    return day


def folder(storage: Path) -> Path:
    """`storage` if it is a folder or does not exist yet; anything else is one line."""
    if storage.exists() and not storage.is_dir():
        raise StorageError(f"storage {storage} is not a folder; give --storage a folder (or a path to create)")
    return storage


def writable_folder(storage: Path) -> Path:
    """The folder of a command that writes: created if missing, and owner-only like every file the bot makes."""
    try:
        private_dir(folder(storage))
        if storage.stat().st_mode & 0o077:
            storage.chmod(0o700)  # a clone's storage/ has git's 0755
    except OSError as error:
        raise StorageError(f"cannot use storage {storage} ({error.strerror or error}); check the folder") from None
    return storage


def holding(storage: Path, command: str) -> StorageLock:
    """The storage's writer lock for `command`, the folder made first."""
    from bot.storage_lock import StorageLock

    return StorageLock(writable_folder(storage), f"python -m bot {command}")
