"""The state store's SQLite file: its schema and migrations, how it is opened, and what its faults mean.

Only a corrupt file (SQLite says so, or its quick check fails) is `Corrupt`, to be set aside and started anew. A
full disk, an I/O error, a read-only or locked file (waited for BUSY_SECONDS), a schema newer than this bot or a
table missing is a `StorageError`: one line naming the file and what to do, the file left as it is.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from bot.paths import StorageError, private_dir

if TYPE_CHECKING:
    import aiosqlite

log = logging.getLogger(__name__)

STATE_FILE = "state.sqlite3"
BUSY_SECONDS = 10.0  # how long a statement waits for a lock another program holds on the file
FULL_BELOW = 64 * 1024  # free bytes under which an I/O error is taken for a full disk (SQLite writes in pages)

# Each entry moves the schema one version up; `PRAGMA user_version` records where a file stands.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE positions (
        position_id TEXT PRIMARY KEY,
        symbol TEXT NOT NULL,
        strategy TEXT NOT NULL,
        status TEXT NOT NULL,
        qty INTEGER NOT NULL,
        avg_entry TEXT NOT NULL,
        realized_pnl TEXT NOT NULL,
        fees TEXT NOT NULL,
        opened_at TEXT,
        closed_at TEXT,
        last_event_id TEXT NOT NULL
    );
    CREATE TABLE orders (
        order_id TEXT PRIMARY KEY,
        position_id TEXT NOT NULL,
        side TEXT NOT NULL,
        requested_qty INTEGER NOT NULL,
        filled_qty INTEGER NOT NULL,
        status TEXT NOT NULL,
        reason TEXT,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX orders_by_status ON orders (status);
    CREATE TABLE fills (
        fill_id TEXT PRIMARY KEY,
        event_id TEXT NOT NULL UNIQUE,
        order_id TEXT NOT NULL,
        position_id TEXT NOT NULL,
        qty INTEGER NOT NULL,
        price TEXT NOT NULL,
        ts TEXT NOT NULL
    );
    CREATE TABLE outbox (
        position_id TEXT PRIMARY KEY,
        event_id TEXT NOT NULL
    );
    CREATE TABLE exit_levels (
        position_id TEXT NOT NULL,
        rule TEXT NOT NULL,
        level INTEGER NOT NULL,
        PRIMARY KEY (position_id, rule, level)
    );
    """,
    # 2: the trailing stop's high-water mark per position, which no ledger line holds.
    """
    CREATE TABLE exit_highs (
        position_id TEXT PRIMARY KEY,
        high TEXT NOT NULL
    );
    """,
    # 3: the ledger as verified at the last start-up: a restart trusts that much of it if its digest holds.
    """
    CREATE TABLE checkpoint (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        ledger_bytes INTEGER NOT NULL,
        digest TEXT NOT NULL,
        kept TEXT NOT NULL
    );
    """,
    # 4: the desk's trading state (active / reduce-only / halted), which no ledger line holds.
    """
    CREATE TABLE trading_state (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        state TEXT NOT NULL,
        reason TEXT NOT NULL,
        set_by TEXT NOT NULL,
        set_at TEXT NOT NULL
    );
    """,
    # 5: the trading state moved to its journal, which start-up fills from this table before the store opens.
    """
    DROP TABLE trading_state;
    """,
    # 6: only what no ledger line holds and a restart reads. An order's intent is written before it is sent, with
    # what a restart needs to follow it at the broker (broker_orders.json held that before); the positions and
    # fills mirrored the ledger, the outbox the message map, and the fired exit levels were never read.
    """
    ALTER TABLE orders ADD COLUMN symbol TEXT;
    ALTER TABLE orders ADD COLUMN multiplier INTEGER;
    ALTER TABLE orders ADD COLUMN strategy TEXT;
    ALTER TABLE orders ADD COLUMN limit_price TEXT;
    DROP TABLE positions;
    DROP TABLE fills;
    DROP TABLE outbox;
    DROP TABLE exit_levels;
    """,
)
TABLES = ("orders", "exit_highs", "checkpoint")


async def pragma(db: aiosqlite.Connection, pragma: str) -> sqlite3.Row | None:
    # Read and closed at once: an open statement would block the next COMMIT.
    async with db.execute(f"PRAGMA {pragma}") as cursor:
        return await cursor.fetchone()


class Corrupt(Exception):
    """The file is not a sound SQLite database: set it aside."""


_CORRUPT_CODES = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)
_WHAT_TO_DO = {
    sqlite3.SQLITE_BUSY: f"another program holds it locked (waited {BUSY_SECONDS:.0f} s): stop that program, then "
    "start again",
    sqlite3.SQLITE_FULL: "the disk is full: free space, then start again",
    sqlite3.SQLITE_IOERR: "the disk reported an I/O error: check the disk, then start again",
    sqlite3.SQLITE_READONLY: "it cannot be written: make the file and its folder writable, then start again",
    sqlite3.SQLITE_CANTOPEN: "it cannot be opened: make the file and its folder readable and writable, then start "
    "again",
}
_WHAT_TO_DO[sqlite3.SQLITE_LOCKED] = _WHAT_TO_DO[sqlite3.SQLITE_BUSY]
_WHAT_TO_DO[sqlite3.SQLITE_PERM] = _WHAT_TO_DO[sqlite3.SQLITE_READONLY]


def _code(error: sqlite3.Error) -> int:
    """The primary result code (extended codes such as SQLITE_IOERR_WRITE carry it in their low byte)."""
    return (getattr(error, "sqlite_errorcode", None) or 0) & 0xFF


def storage_error(path: Path, error: sqlite3.Error | OSError) -> StorageError:
    """A fault of the store's file that is not corruption, as the one line the operator reads."""
    if isinstance(error, OSError):
        return StorageError(f"state store {path}: {error.strerror or error}: check the disk and the file's rights")
    code = _code(error)
    if code == sqlite3.SQLITE_IOERR and _disk_full(path):
        code = sqlite3.SQLITE_FULL  # SQLite says I/O error when the disk has no room for its shared-memory file
    what = _WHAT_TO_DO.get(code, "check the disk and the file, then start again")
    return StorageError(f"state store {path}: {error}: {what} (the file was left as it is)")


def _disk_full(path: Path) -> bool:
    try:
        return shutil.disk_usage(path.parent).free < FULL_BELOW
    except OSError:
        return False


def bad_value(path: Path, where: str, what_to_do: str) -> StorageError:
    return StorageError(f"state store {path}: {where}; {what_to_do}")


@contextmanager
def faults(path: Path) -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as error:
        raise storage_error(path, error) from None


def set_aside(path: Path) -> Path:
    """Move a corrupt database (and its WAL files) out of the way, keeping it for a post-mortem."""
    aside = path.with_name(f"{path.name}.corrupt-{os.getpid()}")
    try:
        for suffix in ("", "-wal", "-shm"):
            if Path(f"{path}{suffix}").exists():
                Path(f"{path}{suffix}").replace(f"{aside}{suffix}")
    except OSError as error:
        raise storage_error(path, error) from None
    return aside


async def connect(path: Path) -> aiosqlite.Connection:
    """Open the file (creating it owner-only), in WAL mode, checked and migrated to the latest schema."""
    import aiosqlite  # here: the read-only commands read the file with sqlite3 and start without it

    try:
        _create_owner_only(path)
        db = await aiosqlite.connect(path, timeout=BUSY_SECONDS)
    except (OSError, sqlite3.Error) as error:
        raise storage_error(path, error) from None
    try:
        await pragma(db, "journal_mode=WAL")
        # WAL with synchronous=FULL: each commit is on disk when it returns, as an order's intent must be before
        # the order is sent (no ledger line could put it back). Its writes are few: one per order sent or ended.
        await pragma(db, "synchronous=FULL")
        row = await pragma(db, "quick_check")
        if row is None or row[0] != "ok":
            raise Corrupt(f"quick_check says {row[0] if row else 'nothing'}")
        await _migrate(db, path)
    except sqlite3.DatabaseError as error:
        await db.close()
        if _code(error) in _CORRUPT_CODES:
            raise Corrupt(str(error)) from None
        raise storage_error(path, error) from None
    except OSError as error:
        await db.close()
        raise storage_error(path, error) from None
    except BaseException:
        await db.close()
        raise
    return db


@contextmanager
def read_only(path: Path) -> Iterator[sqlite3.Connection]:
    """The file opened so that nothing is written or created, as read-only commands need (on read-only storage
    too). Without a WAL file it is read as immutable, as SQLite would otherwise create its -shm file."""
    mode = "mode=ro" if Path(f"{path}-wal").exists() else "immutable=1"
    with closing(sqlite3.connect(f"{path.resolve().as_uri()}?{mode}", uri=True)) as db:
        yield db


def _create_owner_only(path: Path) -> None:
    private_dir(path.parent)
    if not path.exists():
        path.touch(mode=0o600)  # SQLite would create it (and its -wal, -shm) with the umask's mode


async def _migrate(db: aiosqlite.Connection, path: Path) -> None:
    row = await pragma(db, "user_version")
    version = int(row[0]) if row else 0
    if version > len(MIGRATIONS):
        raise StorageError(
            f"state store {path} is at schema version {version}, newer than this bot's {len(MIGRATIONS)}: run "
            "the newer bot, or move the file aside (a new one is started; its trailing highs and orders in flight "
            "are lost)"
        )
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        await db.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")
        log.info("state store migrated to schema version %d", number)
    async with db.execute("SELECT name FROM sqlite_master WHERE type = 'table'") as cursor:
        names = {row[0] for row in await cursor.fetchall()}
    missing = [table for table in TABLES if table not in names]
    if missing:
        raise bad_value(
            path,
            f"table {missing[0]} is missing (the file was changed outside the bot)",
            "move the file aside and start again: a new one is started (the trailing highs and orders in flight it "
            "held are lost)",
        )
