"""The state store: what a restart needs that no ledger line holds, in SQLite (WAL). Each table has its reader:

- `orders`: each order's intent, on disk before the order is sent, and its end (written with the next commit: nothing
  waits for it); a restart reads the orders that did not end (`open_orders`) and resolves them from the ledger or
  follows them at the broker.
- `exit_highs`: the trailing stop's high per position; the strategies take them back at start.
- `checkpoint`: how much of the ledger the last start verified; the next start trusts that part by its digest.

The positions are the ledger's replay (`bot.runtime.resume`), which messages are out of date is the message map's
(`bot.runtime.message_map`), and the trading state is in its own journal (`bot.runtime.trading_journal`).

A corrupt file is set aside and started anew; any other fault of the file is a `StorageError` (see
`bot.runtime.state_file`), and so is a value read back that cannot be used (an order, a high). A checkpoint that
cannot be read is dropped, so that the whole ledger is verified, and that is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import aiosqlite

from bot import crash
from bot.options.contracts import OptionContract
from bot.options.errors import TradeError
from bot.options.order_record import StoredOrder
from bot.options.orders import OrderContext, OrderRequest, OrderStatus, Side
from bot.paths import StorageError
from bot.runtime.state_file import Corrupt, bad_value, connect, faults, pragma, set_aside

log = logging.getLogger(__name__)

OPEN_ORDER_STATES = (OrderStatus.NEW.value, OrderStatus.PARTIALLY_FILLED.value)
_ENDED = tuple(s.value for s in OrderStatus if s.value not in OPEN_ORDER_STATES)
_IN_ENDED = ", ".join("?" for _ in _ENDED)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The first `ledger_bytes` of the ledger, verified, with their digest, and the positions then kept
    (open, or closed that day): the only ones a restart must replay from that part of the ledger."""

    ledger_bytes: int
    digest: str
    kept: frozenset[str]


@dataclass(frozen=True, slots=True)
class _Statement:
    sql: str  # '' for none: a commit of the orders' ends alone
    row: Sequence[object]
    crash_at: str | None
    written: asyncio.Future[None]


_INSERT_INTENT = (
    "INSERT INTO orders (order_id, position_id, side, requested_qty, filled_qty, status, updated_at, symbol, "
    "multiplier, strategy, limit_price) VALUES (?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?)"
)
_END = "UPDATE orders SET status = ?, filled_qty = ?, reason = ?, updated_at = ? WHERE order_id = ?"
_OPEN_ORDERS = (
    "SELECT order_id, position_id, side, requested_qty, filled_qty, status, symbol, multiplier, strategy, limit_price "
    f"FROM orders WHERE status NOT IN ({', '.join('?' for _ in _ENDED)})"
)


class StateStore:
    def __init__(self, db: aiosqlite.Connection, path: Path, *, anew: bool = False) -> None:
        self._db = db
        self.path = path
        self.anew = anew  # no file, an empty one or a corrupt one was found at the open: a new store was started
        self.set_aside: Path | None = None  # where a corrupt file found at the open went
        self._ends: dict[str, tuple[object, ...]] = {}  # order id -> its end, not yet committed
        # One transaction at a time on the one connection: another's commit (or rollback) must never take this one's
        # statements with it, or an intent could count as written when it was not.
        self._writing = asyncio.Lock()
        self._waiting: list[_Statement] = []  # asked for while a commit was under way: the next commit's
        self._held: list[tuple[str, Sequence[object]]] | None = None  # see `hold_writes`

    @classmethod
    async def open(cls, path: Path) -> StateStore:
        """Open (creating and migrating as needed). A corrupt file is set aside (see `set_aside`) and started
        anew; any other fault is a StorageError naming the file, which is left as it is."""
        anew = _empty(path)
        try:
            return cls(await connect(path), path, anew=anew)
        except Corrupt as error:
            aside = set_aside(path)
            log.error("state store %s is corrupt (%s); set aside as %s, starting a new one", path, error, aside)
        store = cls(await connect(path), path, anew=True)
        store.set_aside = aside
        return store

    async def close(self) -> None:
        try:
            await self._write_held()
            if self._ends:
                await self._write()
        except StorageError as error:
            log.warning("%s; the next start resolves the %d order(s) whose end it missed", error, len(self._ends))
        finally:
            await self._db.close()

    async def skip_syncs(self) -> None:
        """Commits no longer wait for the disk (SQLite's synchronous=OFF): for a backtest's store, which a stopped run
        never resumes; SQLite syncs once at the close."""
        await pragma(self._db, "synchronous=OFF")

    def hold_writes(self) -> None:
        """Writes are kept in memory, in order, and made in one commit at the close: for a backtest's store, which
        nothing reads while it runs and a stopped run never resumes (a year's round trips to SQLite's thread for each
        order and trailing high were a seventh of its time)."""
        self._held = []

    async def _write_held(self) -> None:
        if self._held is None:
            return
        held = [*self._held, *((_END, end) for end in self._ends.values())]  # the last orders' ends after them
        self._held = None
        self._ends.clear()
        if held:
            loop = asyncio.get_running_loop()
            batch = [_Statement(sql, row, None, loop.create_future()) for sql, row in held]
            await self._commit(batch)
            for statement in batch:
                statement.written.result()  # the commit's StorageError, if any

    async def schema_version(self) -> int:
        row = await pragma(self._db, "user_version")
        return int(row[0]) if row else 0

    async def _write(self, sql: str = "", row: Sequence[object] = (), *, crash_at: str | None = None) -> None:
        """One statement and the orders' ends noted since the last commit, committed (on disk when this returns);
        nothing of it is left behind if it fails (the ends are tried again with the next).

        Group commit: the statements asked for while a commit is under way go together in the next one, so orders
        sent side by side share a sync instead of queueing for one each."""
        if self._held is not None:  # as a commit would take them: the orders' ends first
            self._held += [(_END, end) for end in self._ends.values()]
            self._ends.clear()
            if sql:
                self._held.append((sql, row))
            return
        written: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        written.add_done_callback(_seen)  # a writer cancelled meanwhile never asks how it went
        self._waiting.append(_Statement(sql, row, crash_at, written))
        async with self._writing:
            if not written.done():
                batch, self._waiting = self._waiting, []
                await self._commit(batch)
        await written

    async def _commit(self, batch: list[_Statement]) -> None:
        ends = list(self._ends.items())
        try:
            with faults(self.path):
                try:
                    if ends:
                        await self._db.executemany(_END, [end for _, end in ends])
                    for statement in batch:
                        if statement.sql:
                            await self._db.execute(statement.sql, statement.row)
                        if statement.crash_at is not None:
                            crash.crash_point(statement.crash_at)
                    await self._db.commit()
                except sqlite3.Error:
                    # Else a later commit would carry it: an order refused for want of its record would show as sent.
                    with contextlib.suppress(sqlite3.Error):
                        await self._db.rollback()
                    raise
        except StorageError as error:
            for statement in batch:
                if not statement.written.done():  # its writer may have been cancelled meanwhile
                    statement.written.set_exception(error)
            return
        for order_id, _ in ends:
            del self._ends[order_id]
        for statement in batch:
            if not statement.written.done():
                statement.written.set_result(None)

    # Orders ------------------------------------------------------------------------------------------

    async def record_intent(self, request: OrderRequest, strategy: str, at: datetime) -> None:
        """An order about to be sent, with what a restart needs to follow it (its contract and strategy)."""
        contract = request.contract
        limit = None if request.limit_price is None else str(request.limit_price)
        row = (
            request.order_id,
            request.position_id,
            request.side.value,
            request.qty,
            OrderStatus.NEW.value,
            _utc(at),
            contract.symbol,
            contract.multiplier,
            strategy,
            limit,
        )
        await self._write(_INSERT_INTENT, row, crash_at="state-mid-write")

    async def record_end(self, order: OrderContext, at: datetime) -> None:
        """The order filled, or was cancelled or rejected: a restart has nothing left to follow. Written with the next
        commit (the next order's intent, or the close), so that no trade waits for it: one lost to a crash costs the
        restart a look at the ledger (or a question to the broker)."""
        self._ends[order.order_id] = (order.status.value, order.filled_qty, order.reason, _utc(at), order.order_id)

    async def resolve_order(
        self, order_id: str, status: OrderStatus, filled_qty: int, reason: str | None, at: datetime
    ) -> None:
        await self._write(_END, (status.value, filled_qty, reason, _utc(at), order_id))

    async def open_orders(self) -> list[StoredOrder]:
        """Orders not known to have ended; an order whose fields cannot be read is a StorageError (it may be working
        at a broker: only the operator can tell)."""
        if self._ends:
            await self._write()
        with faults(self.path):
            async with self._db.execute(_OPEN_ORDERS, _ENDED) as cursor:
                rows = await cursor.fetchall()
        return [self._order(row) for row in rows]

    def _order(self, r: Sequence[Any]) -> StoredOrder:
        try:
            contract = None if r[6] is None else OptionContract.parse(str(r[6]), int(str(r[7])))
            limit = None if r[9] is None else _decimal(r[9])
            if r[9] is not None and limit is None:
                raise ValueError("limit price")
            return StoredOrder(
                str(r[0]),
                str(r[1]),
                Side(r[2]),
                int(str(r[3])),
                int(str(r[4])),
                OrderStatus(r[5]),
                contract,
                None if r[8] is None else str(r[8]),
                limit,
            )
        except (ValueError, TradeError):
            raise bad_value(
                self.path,
                f"table orders, order {r[0]}: side {r[2]!r} / status {r[5]!r} / quantities {r[3]!r}, {r[4]!r} / "
                f"contract {r[6]!r} x {r[7]!r} / limit {r[9]!r} cannot be read",
                "check whether that order is still working at the broker, then set its status to cancelled or "
                "filled (or delete the row) and start again",
            ) from None

    async def note_contracts(self, contracts: dict[str, tuple[OptionContract, str]]) -> None:
        """Order id -> (contract, strategy) for orders an older desk recorded without them."""
        sql = "UPDATE orders SET symbol = ?, multiplier = ?, strategy = ? WHERE order_id = ? AND symbol IS NULL"
        rows = [(c.symbol, c.multiplier, strategy, oid) for oid, (c, strategy) in contracts.items()]
        async with self._writing:
            with faults(self.path):
                await self._db.executemany(sql, rows)
                await self._db.commit()

    # Start-up ------------------------------------------------------------------------------------------

    async def prune(self, kept: Iterable[str], ended_before: datetime) -> None:
        """Drop what no restart reads: the highs of positions not kept (closed before today), and orders that ended
        before `ended_before` (the day's stay for the operator to look up)."""
        async with self._writing:
            with faults(self.path):
                async with self._db.execute("SELECT position_id FROM exit_highs") as cursor:
                    gone = {row[0] for row in await cursor.fetchall()} - set(kept)
                await self._db.executemany("DELETE FROM exit_highs WHERE position_id = ?", [(pid,) for pid in gone])
                await self._db.execute(
                    f"DELETE FROM orders WHERE status IN ({', '.join('?' for _ in _ENDED)}) AND updated_at < ?",
                    (*_ENDED, _utc(ended_before)),
                )
                await self._db.commit()

    async def filled_orders(self) -> dict[str, tuple[str, int]]:
        """Order id -> (position id, contracts filled) of the ended orders this store saw fill (kept for the day). The
        ledger holds at least as many fills of each: its lines are written before the order's end."""
        sql = f"SELECT order_id, position_id, filled_qty FROM orders WHERE filled_qty > 0 AND status IN ({_IN_ENDED})"
        with faults(self.path):
            async with self._db.execute(sql, _ENDED) as cursor:
                return {str(row[0]): (str(row[1]), int(row[2])) for row in await cursor.fetchall()}

    async def forget(self, position_ids: Iterable[str], order_ids: Iterable[str] = ()) -> None:
        """Drop the highs and the ended orders of positions the ledger lost, and the ended orders whose fills it lost,
        so that they are said once, at the start that found them. An order still open stays: a broker's fills of it
        are still followed."""
        positions = [(pid,) for pid in position_ids]
        ended = f"status IN ({_IN_ENDED})"
        async with self._writing:
            with faults(self.path):
                await self._db.executemany("DELETE FROM exit_highs WHERE position_id = ?", positions)
                await self._db.executemany(
                    f"DELETE FROM orders WHERE position_id = ? AND {ended}", [(*row, *_ENDED) for row in positions]
                )
                await self._db.executemany(
                    f"DELETE FROM orders WHERE order_id = ? AND {ended}", [(oid, *_ENDED) for oid in order_ids]
                )
                await self._db.commit()

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
        await self._write("INSERT OR REPLACE INTO checkpoint VALUES (1, ?, ?, ?)", row)

    # The trailing stop's memory ------------------------------------------------------------------

    async def save_high(self, position_id: str, high: Decimal) -> None:
        await self._write("INSERT OR REPLACE INTO exit_highs VALUES (?, ?)", (position_id, str(high)))

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


def _seen(written: asyncio.Future[None]) -> None:
    if not written.cancelled():
        written.exception()


def _empty(path: Path) -> bool:
    try:
        return not path.exists() or path.stat().st_size == 0
    except OSError:
        return False  # the open says what is wrong with it


def _utc(at: datetime) -> str:
    # One offset for every row, so that times compare as text.
    return at.astimezone(UTC).isoformat()


def _decimal(value: object) -> Decimal | None:
    """A stored decimal text, or None if it is not a finite number."""
    try:
        number = Decimal(value) if isinstance(value, str) else None
    except InvalidOperation:
        return None
    return number if number is not None and number.is_finite() else None
