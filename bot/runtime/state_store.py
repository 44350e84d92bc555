"""The state store: what the bot needs to resume, in SQLite (WAL), always rebuildable from the ledger.

It holds the open positions and the ones closed today, their orders and fills, the outbox of Discord
updates not yet delivered, and the exit-rule levels that fired. The ledger stays the source of truth:
at start-up the store is checked against it and repaired where they differ (see `bot.runtime.resume`).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import aiosqlite

from bot import crash
from bot.options.orders import OrderContext, OrderStatus, Side
from bot.options.positions import Position
from bot.options.risk import NEVER_SET, DeskState, TradingState
from bot.options.trade_ledger import TradeEvent
from bot.paths import private_dir

log = logging.getLogger(__name__)

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
)

OPEN_ORDER_STATES = (OrderStatus.NEW.value, OrderStatus.PARTIALLY_FILLED.value)


@dataclass(frozen=True, slots=True)
class StoredPosition:
    position_id: str
    status: str
    qty: int
    avg_entry: Decimal
    realized_pnl: Decimal
    last_event_id: str

    @classmethod
    def of(cls, position: Position, last_event_id: str) -> StoredPosition:
        return cls(
            position.position_id,
            position.status.value,
            position.qty,
            position.avg_entry,
            position.realized_pnl,
            last_event_id,
        )


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The first `ledger_bytes` of the ledger, verified, with their digest, and the positions then kept
    (open, or closed that day): the only ones a restart must replay from that part of the ledger."""

    ledger_bytes: int
    digest: str
    kept: frozenset[str]


@dataclass(frozen=True, slots=True)
class StoredOrder:
    order_id: str
    position_id: str
    side: Side
    requested_qty: int
    filled_qty: int
    status: OrderStatus


def _position_row(position: Position, last_event_id: str) -> tuple[object, ...]:
    return (
        position.position_id,
        position.contract.symbol,
        position.strategy,
        position.status.value,
        position.qty,
        str(position.avg_entry),
        str(position.realized_pnl),
        str(position.fees),
        position.opened_at.isoformat() if position.opened_at else None,
        position.closed_at.isoformat() if position.closed_at else None,
        last_event_id,
    )


_UPSERT_POSITION = "INSERT OR REPLACE INTO positions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_INSERT_FILL = "INSERT OR IGNORE INTO fills VALUES (?, ?, ?, ?, ?, ?, ?)"
# An open order's filled quantity and status, from its recorded fills (so a fill counts once).
_FILLED = "(SELECT SUM(qty) FROM fills WHERE fills.order_id = orders.order_id)"
_FILL_ORDER = (
    f"UPDATE orders SET filled_qty = {_FILLED}, status = CASE WHEN {_FILLED} >= requested_qty "
    f"THEN '{OrderStatus.FILLED.value}' ELSE '{OrderStatus.PARTIALLY_FILLED.value}' END, updated_at = ? "
    f"WHERE order_id = ? AND status IN ('{OrderStatus.NEW.value}', '{OrderStatus.PARTIALLY_FILLED.value}')"
)


def _fill_row(event: TradeEvent) -> tuple[object, ...]:
    return (
        event.fill_id,
        event.event_id,
        event.order_id,
        event.position_id,
        event.qty,
        str(event.price),
        event.ts.isoformat(),
    )


async def _pragma(db: aiosqlite.Connection, pragma: str) -> sqlite3.Row | None:
    # Read and closed at once: an open statement would block the next COMMIT.
    async with db.execute(f"PRAGMA {pragma}") as cursor:
        return await cursor.fetchone()


def _create_owner_only(path: Path) -> None:
    private_dir(path.parent)
    if not path.exists():
        path.touch(mode=0o600)


def _set_aside(path: Path) -> Path:
    """Move an unreadable database (and its WAL files) out of the way, keeping it for a post-mortem."""
    aside = path.with_name(f"{path.name}.corrupt-{os.getpid()}")
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{path}{suffix}").exists():
            Path(f"{path}{suffix}").replace(f"{aside}{suffix}")
    return aside


class StateStore:
    def __init__(self, db: aiosqlite.Connection, path: Path) -> None:
        self._db = db
        self.path = path

    @classmethod
    async def open(cls, path: Path) -> StateStore:
        """Open (creating and migrating as needed); an unreadable file is set aside and started anew."""
        try:
            return await cls._open(path)
        except sqlite3.DatabaseError as error:
            aside = _set_aside(path)
            log.error(
                "state store %s is unreadable (%s); set aside as %s, rebuilding from the ledger; the desk starts "
                "reduce-only, as the trading state set before (maybe halted) was in it",
                path,
                error,
                aside,
            )
            store = await cls._open(path)
            # The ledger holds fills, not the kill switch: start with no new risk but exits allowed, until an admin
            # has looked and resumed.
            reason = "the state store was unreadable and rebuilt from the ledger; check the desk, then /resume"
            await store.save_trading_state(DeskState(TradingState.REDUCE_ONLY, reason, "risk", datetime.now(UTC)))
            return store

    @classmethod
    async def _open(cls, path: Path) -> StateStore:
        _create_owner_only(path)
        db = await aiosqlite.connect(path)
        try:
            await _pragma(db, "journal_mode=WAL")
            # WAL with synchronous=NORMAL: a crash never corrupts the file; the last commits may be lost, and
            # the ledger puts them back at the next start.
            await _pragma(db, "synchronous=NORMAL")
            row = await _pragma(db, "quick_check")
            if row is None or row[0] != "ok":
                raise sqlite3.DatabaseError(f"quick_check says {row[0] if row else 'nothing'}")
            await cls._migrate(db)
        except BaseException:
            await db.close()
            raise
        return cls(db, path)

    @staticmethod
    async def _migrate(db: aiosqlite.Connection) -> None:
        row = await _pragma(db, "user_version")
        version = int(row[0]) if row else 0
        if version > len(MIGRATIONS):
            raise sqlite3.DatabaseError(f"schema version {version} is newer than this bot ({len(MIGRATIONS)})")
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            await db.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")
            log.info("state store migrated to schema version %d", number)

    async def close(self) -> None:
        await self._db.close()

    async def schema_version(self) -> int:
        row = await _pragma(self._db, "user_version")
        return int(row[0]) if row else 0

    # Positions and fills -------------------------------------------------------------------------

    async def positions(self) -> dict[str, StoredPosition]:
        query = "SELECT position_id, status, qty, avg_entry, realized_pnl, last_event_id FROM positions"
        async with self._db.execute(query) as cursor:
            rows = await cursor.fetchall()
        return {
            row[0]: StoredPosition(row[0], row[1], row[2], Decimal(row[3]), Decimal(row[4]), row[5]) for row in rows
        }

    async def fill_ids(self) -> set[str]:
        async with self._db.execute("SELECT fill_id FROM fills") as cursor:
            return {row[0] for row in await cursor.fetchall()}

    async def record_fill(self, event: TradeEvent, position: Position) -> None:
        """One fill after its ledger line: the fill, its order, the position as it now is, and its message to
        deliver."""
        await self._db.execute(_INSERT_FILL, _fill_row(event))
        await self._db.execute(_FILL_ORDER, (event.ts.isoformat(), event.order_id))
        await self._db.execute(_UPSERT_POSITION, _position_row(position, event.event_id))
        crash.crash_point("state-mid-write")
        await self._db.execute("INSERT OR REPLACE INTO outbox VALUES (?, ?)", (event.position_id, event.event_id))
        await self._db.commit()

    async def rewrite(
        self,
        positions: Iterable[tuple[Position, str]],
        fills: Iterable[TradeEvent],
        keep: Iterable[str],
        orders_before: datetime,
    ) -> None:
        """Bring positions and fills in line with the ledger: upsert these, drop rows of positions not kept
        (their orders only when older than `orders_before`: today's refused opening orders have no position)."""
        await self._db.executemany(_UPSERT_POSITION, [_position_row(p, e) for p, e in positions])
        await self._db.executemany(_INSERT_FILL, [_fill_row(event) for event in fills])
        kept = list(keep)
        await self._db.execute("CREATE TEMP TABLE IF NOT EXISTS kept (position_id TEXT PRIMARY KEY)")
        await self._db.execute("DELETE FROM kept")
        await self._db.executemany("INSERT OR IGNORE INTO kept VALUES (?)", [(pid,) for pid in kept])
        not_kept = "position_id NOT IN (SELECT position_id FROM kept)"
        for table in ("positions", "fills", "exit_levels", "exit_highs"):
            await self._db.execute(f"DELETE FROM {table} WHERE {not_kept}")
        await self._db.execute(f"DELETE FROM orders WHERE {not_kept} AND updated_at < ?", (orders_before.isoformat(),))
        await self._db.commit()

    # Orders ------------------------------------------------------------------------------------------

    async def save_order(self, order: OrderContext, now: datetime) -> None:
        await self._db.execute(
            "INSERT OR REPLACE INTO orders VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                order.order_id,
                order.position_id,
                order.side.value,
                order.requested_qty,
                order.filled_qty,
                order.status.value,
                order.reason,
                now.isoformat(),
            ),
        )
        await self._db.commit()

    async def open_orders(self) -> list[StoredOrder]:
        query = (
            "SELECT order_id, position_id, side, requested_qty, filled_qty, status FROM orders "
            f"WHERE status IN ({', '.join('?' for _ in OPEN_ORDER_STATES)})"
        )
        async with self._db.execute(query, OPEN_ORDER_STATES) as cursor:
            rows = await cursor.fetchall()
        return [StoredOrder(r[0], r[1], Side(r[2]), r[3], r[4], OrderStatus(r[5])) for r in rows]

    async def resolve_order(
        self, order_id: str, status: OrderStatus, filled_qty: int, reason: str, now: datetime
    ) -> None:
        await self._db.execute(
            "UPDATE orders SET status = ?, filled_qty = ?, reason = ?, updated_at = ? WHERE order_id = ?",
            (status.value, filled_qty, reason, now.isoformat(), order_id),
        )
        await self._db.commit()

    # Outbox --------------------------------------------------------------------------------------

    async def outbox(self) -> dict[str, str]:
        """Position id -> the last event its message must show but may not yet."""
        async with self._db.execute("SELECT position_id, event_id FROM outbox") as cursor:
            return {row[0]: row[1] for row in await cursor.fetchall()}

    async def delivered(self, position_id: str, event_id: str | None) -> None:
        await self._db.execute("DELETE FROM outbox WHERE position_id = ? AND event_id IS ?", (position_id, event_id))
        await self._db.commit()

    # Exit levels ---------------------------------------------------------------------------------

    async def fire_level(self, position_id: str, rule: str, level: int) -> None:
        await self._db.execute("INSERT OR IGNORE INTO exit_levels VALUES (?, ?, ?)", (position_id, rule, level))
        await self._db.commit()

    async def checkpoint(self) -> Checkpoint | None:
        async with self._db.execute("SELECT ledger_bytes, digest, kept FROM checkpoint WHERE id = 1") as cursor:
            row = await cursor.fetchone()
        return None if row is None else Checkpoint(row[0], row[1], frozenset(json.loads(row[2])))

    async def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        await self._db.execute(
            "INSERT OR REPLACE INTO checkpoint VALUES (1, ?, ?, ?)",
            (checkpoint.ledger_bytes, checkpoint.digest, json.dumps(sorted(checkpoint.kept))),
        )
        await self._db.commit()

    async def save_high(self, position_id: str, high: Decimal) -> None:
        await self._db.execute("INSERT OR REPLACE INTO exit_highs VALUES (?, ?)", (position_id, str(high)))
        await self._db.commit()

    async def highs(self) -> dict[str, Decimal]:
        async with self._db.execute("SELECT position_id, high FROM exit_highs") as cursor:
            return {row[0]: Decimal(row[1]) for row in await cursor.fetchall()}

    async def fired(self) -> dict[str, set[tuple[str, int]]]:
        async with self._db.execute("SELECT position_id, rule, level FROM exit_levels") as cursor:
            rows = await cursor.fetchall()
        fired: dict[str, set[tuple[str, int]]] = {}
        for position_id, rule, level in rows:
            fired.setdefault(position_id, set()).add((rule, level))
        return fired

    # Trading state -------------------------------------------------------------------------------

    async def trading_state(self) -> DeskState:
        async with self._db.execute("SELECT state, reason, set_by, set_at FROM trading_state WHERE id = 1") as cursor:
            row = await cursor.fetchone()
        if row is None:
            return NEVER_SET
        return DeskState(TradingState(row[0]), row[1], row[2], datetime.fromisoformat(row[3]) if row[3] else None)

    async def save_trading_state(self, desk: DeskState) -> None:
        set_at = desk.set_at.isoformat() if desk.set_at else ""
        await self._db.execute(
            "INSERT OR REPLACE INTO trading_state VALUES (1, ?, ?, ?, ?)",
            (desk.state.value, desk.reason, desk.set_by, set_at),
        )
        await self._db.commit()
