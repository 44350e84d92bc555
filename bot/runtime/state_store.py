"""The state store: what the bot needs to resume, in SQLite (WAL), rebuilt from the ledger where it can be.

It holds the open positions and the ones closed today, their orders and fills, the outbox of Discord
updates not yet delivered, and the exit-rule levels that fired. The ledger stays the source of truth:
at start-up the store is checked against it and repaired where they differ (see `bot.runtime.resume`).
The trading state is not here but in its own journal (`bot.runtime.trading_journal`).

A corrupt file is set aside and started anew; any other fault of the file is a `StorageError` (see
`bot.runtime.state_file`), and so is a value read back that cannot be used and cannot be rebuilt from the ledger.
A value that can be (the checkpoint, a position) is rebuilt, and that is logged.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

import aiosqlite

from bot import crash
from bot.options.orders import OrderContext, OrderStatus, Side
from bot.options.positions import Position
from bot.options.trade_ledger import TradeEvent
from bot.runtime.state_file import Corrupt, bad_value, connect, faults, pragma, read_only, set_aside

log = logging.getLogger(__name__)

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


class StateStore:
    def __init__(self, db: aiosqlite.Connection, path: Path) -> None:
        self._db = db
        self.path = path
        self.set_aside: Path | None = None  # where a corrupt file found at the open went

    @classmethod
    async def open(cls, path: Path) -> StateStore:
        """Open (creating and migrating as needed). A corrupt file is set aside (see `set_aside`) and started
        anew; any other fault is a StorageError naming the file, which is left as it is."""
        try:
            return cls(await connect(path), path)
        except Corrupt as error:
            aside = set_aside(path)
            log.error("state store %s is corrupt (%s); set aside as %s, rebuilding from the ledger", path, error, aside)
        store = cls(await connect(path), path)
        store.set_aside = aside
        return store

    async def close(self) -> None:
        await self._db.close()

    async def schema_version(self) -> int:
        row = await pragma(self._db, "user_version")
        return int(row[0]) if row else 0

    # Positions and fills -------------------------------------------------------------------------

    async def positions(self) -> dict[str, StoredPosition]:
        """The stored positions; a row whose numbers cannot be read is left out, so the ledger rebuilds it."""
        query = "SELECT position_id, status, qty, avg_entry, realized_pnl, last_event_id FROM positions"
        with faults(self.path):
            async with self._db.execute(query) as cursor:
                rows = await cursor.fetchall()
        stored = {}
        for row in rows:
            avg_entry, realized = _decimal(row[3]), _decimal(row[4])
            if avg_entry is None or realized is None or not isinstance(row[2], int):
                log.warning(
                    "state store %s: table positions, position %s has a value that cannot be read; rebuilt from the "
                    "ledger",
                    self.path,
                    row[0],
                )
                continue
            stored[row[0]] = StoredPosition(row[0], row[1], row[2], avg_entry, realized, row[5])
        return stored

    async def fill_ids(self) -> set[str]:
        with faults(self.path):
            async with self._db.execute("SELECT fill_id FROM fills") as cursor:
                return {row[0] for row in await cursor.fetchall()}

    async def record_fill(self, event: TradeEvent, position: Position) -> None:
        """One fill after its ledger line: the fill, its order, the position as it now is, and its message to
        deliver."""
        with faults(self.path):
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
        kept = [(pid,) for pid in keep]
        not_kept = "position_id NOT IN (SELECT position_id FROM kept)"
        with faults(self.path):
            await self._db.executemany(_UPSERT_POSITION, [_position_row(p, e) for p, e in positions])
            await self._db.executemany(_INSERT_FILL, [_fill_row(event) for event in fills])
            await self._db.execute("CREATE TEMP TABLE IF NOT EXISTS kept (position_id TEXT PRIMARY KEY)")
            await self._db.execute("DELETE FROM kept")
            await self._db.executemany("INSERT OR IGNORE INTO kept VALUES (?)", kept)
            for table in ("positions", "fills", "exit_levels", "exit_highs"):
                await self._db.execute(f"DELETE FROM {table} WHERE {not_kept}")
            before = orders_before.isoformat()
            await self._db.execute(f"DELETE FROM orders WHERE {not_kept} AND updated_at < ?", (before,))
            await self._db.commit()

    # Orders ------------------------------------------------------------------------------------------

    async def save_order(self, order: OrderContext, now: datetime) -> None:
        row = (
            order.order_id,
            order.position_id,
            order.side.value,
            order.requested_qty,
            order.filled_qty,
            order.status.value,
            order.reason,
            now.isoformat(),
        )
        with faults(self.path):
            await self._db.execute("INSERT OR REPLACE INTO orders VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row)
            await self._db.commit()

    async def open_orders(self) -> list[StoredOrder]:
        """Orders not known to have ended; an order whose status or side cannot be read is a StorageError (it may
        be working at a broker: only the operator can tell)."""
        ended = [s.value for s in OrderStatus if s.value not in OPEN_ORDER_STATES]
        query = (
            "SELECT order_id, position_id, side, requested_qty, filled_qty, status FROM orders "
            f"WHERE status NOT IN ({', '.join('?' for _ in ended)})"
        )
        with faults(self.path):
            async with self._db.execute(query, ended) as cursor:
                rows = await cursor.fetchall()
        orders = []
        for r in rows:
            try:
                orders.append(StoredOrder(r[0], r[1], Side(r[2]), int(r[3]), int(r[4]), OrderStatus(r[5])))
            except ValueError:
                raise bad_value(
                    self.path,
                    f"table orders, order {r[0]}: side {r[2]!r} / status {r[5]!r} / quantities {r[3]!r}, {r[4]!r} "
                    "cannot be read",
                    "check whether that order is still working at the broker, then set its status to cancelled or "
                    "filled (or delete the row) and start again",
                ) from None
        return orders

    async def resolve_order(
        self, order_id: str, status: OrderStatus, filled_qty: int, reason: str, now: datetime
    ) -> None:
        with faults(self.path):
            await self._db.execute(
                "UPDATE orders SET status = ?, filled_qty = ?, reason = ?, updated_at = ? WHERE order_id = ?",
                (status.value, filled_qty, reason, now.isoformat(), order_id),
            )
            await self._db.commit()

    # Outbox --------------------------------------------------------------------------------------

    async def delivered(self, position_id: str, event_id: str | None) -> None:
        query = "DELETE FROM outbox WHERE position_id = ? AND event_id IS ?"
        with faults(self.path):
            await self._db.execute(query, (position_id, event_id))
            await self._db.commit()

    # Checkpoint ----------------------------------------------------------------------------------

    async def checkpoint(self) -> Checkpoint | None:
        """The last start's checkpoint; None (so the whole ledger is verified and a new one saved) if there is
        none or it cannot be read."""
        with faults(self.path):
            async with self._db.execute("SELECT ledger_bytes, digest, kept FROM checkpoint WHERE id = 1") as cursor:
                row = await cursor.fetchone()
        if row is None:
            return None
        try:
            kept = json.loads(row[2])
            if not isinstance(row[0], int) or not isinstance(row[1], str) or not isinstance(kept, list):
                raise ValueError("a field has the wrong type")
            return Checkpoint(row[0], row[1], frozenset(str(pid) for pid in kept))
        except (ValueError, TypeError) as error:
            log.warning(
                "state store %s: table checkpoint cannot be read (%s); verifying the whole ledger and saving a new one",
                self.path,
                error,
            )
            return None

    async def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        row = (checkpoint.ledger_bytes, checkpoint.digest, json.dumps(sorted(checkpoint.kept)))
        with faults(self.path):
            await self._db.execute("INSERT OR REPLACE INTO checkpoint VALUES (1, ?, ?, ?)", row)
            await self._db.commit()

    # Exit rules' memory: what no ledger line holds -----------------------------------------------

    async def fire_level(self, position_id: str, rule: str, level: int) -> None:
        with faults(self.path):
            await self._db.execute("INSERT OR IGNORE INTO exit_levels VALUES (?, ?, ?)", (position_id, rule, level))
            await self._db.commit()

    async def save_high(self, position_id: str, high: Decimal) -> None:
        with faults(self.path):
            await self._db.execute("INSERT OR REPLACE INTO exit_highs VALUES (?, ?)", (position_id, str(high)))
            await self._db.commit()

    async def highs(self) -> dict[str, Decimal]:
        with faults(self.path):
            async with self._db.execute("SELECT position_id, high FROM exit_highs") as cursor:
                rows = await cursor.fetchall()
        highs = {}
        for position_id, text in rows:
            high = _decimal(text)
            if high is None or high < 0:
                raise bad_value(
                    self.path,
                    f"table exit_highs, position {position_id}: high {text!r} is not a price",
                    f"no ledger line holds it: delete that row (DELETE FROM exit_highs WHERE position_id = "
                    f"'{position_id}') to restart its trailing stop from the next quote, then start again",
                )
            highs[position_id] = high
        return highs

    async def fired(self) -> dict[str, set[tuple[str, int]]]:
        with faults(self.path):
            async with self._db.execute("SELECT position_id, rule, level FROM exit_levels") as cursor:
                rows = await cursor.fetchall()
        fired: dict[str, set[tuple[str, int]]] = {}
        for position_id, rule, level in rows:
            if not isinstance(level, int):
                raise bad_value(
                    self.path,
                    f"table exit_levels, position {position_id}: level {level!r} of rule {rule!r} is not a number",
                    "no ledger line holds it: correct or delete that row, then start again",
                )
            fired.setdefault(position_id, set()).add((rule, level))
        return fired


def count_outbox(path: Path) -> int | None:
    """Message updates not yet delivered, read without writing anything; None (and a warning) if the store cannot
    be read. No store: none."""
    if not path.exists():
        return 0
    try:
        with read_only(path) as db:
            return int(db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
    except sqlite3.Error as error:
        log.warning("state store %s cannot be read (%s): the Discord backlog is unknown", path, error)
        return None


def _decimal(value: object) -> Decimal | None:
    """A stored decimal text, or None if it is not a finite number."""
    try:
        number = Decimal(value) if isinstance(value, str) else None
    except InvalidOperation:
        return None
    return number if number is not None and number.is_finite() else None
