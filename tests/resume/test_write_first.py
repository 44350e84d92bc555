"""Write-first for orders: an order's intent is on disk before any executor sees it, and one whose intent cannot be
written is refused with a sentence and never sent. Fills wait for no store write: the ledger is their record."""

from __future__ import annotations

import asyncio
import errno
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from bot.options.errors import TradeError
from bot.options.execution_paper import PaperConfig, PaperExecutor
from bot.options.order_manager import OptionsOrderManager
from bot.options.orders import Fill, OrderContext, OrderRequest, OrderStatus
from bot.options.positions import Position
from bot.options.quotes import QuoteCache
from bot.options.trade_ledger import TradeLedger
from bot.paths import StorageError
from bot.runtime.state_file import STATE_FILE
from tests.core.factories import T0, quote
from tests.discord.conftest import QQQ, SPY
from tests.reliability.checks import open_offline_desk

REFUSED = "could not be recorded, so it was not sent"
BOUND = 30.0  # generous: what is waited for happens at once unless something blocks it


async def wait_for(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(BOUND):
        while not condition():  # noqa: ASYNC110 - what the desk shows, polled
            await asyncio.sleep(0.01)


class Record:
    """An order record that takes intents until `failing` is set, then raises it."""

    def __init__(self) -> None:
        self.intents: list[tuple[str, str]] = []
        self.ended: list[tuple[str, OrderStatus]] = []
        self.failing: Exception | None = None

    async def record_intent(self, request: OrderRequest, strategy: str, at: object) -> None:
        if self.failing is not None:
            raise self.failing
        self.intents.append((request.order_id, strategy))

    async def record_end(self, order: OrderContext, at: object) -> None:
        self.ended.append((order.order_id, order.status))


class Sent(PaperExecutor):
    """The paper executor, keeping every order that reached it and whether its intent was recorded by then."""

    def __init__(self, quotes: QuoteCache, record: Record) -> None:
        super().__init__(quotes, PaperConfig(), clock=lambda: T0)
        self.record = record
        self.sent: list[tuple[str, bool]] = []

    def execute(self, request: OrderRequest) -> AsyncIterator[Fill]:
        recorded = (request.order_id, "orb") in self.record.intents
        self.sent.append((request.order_id, recorded))
        return super().execute(request)


@pytest.mark.parametrize(
    "failing",
    [
        StorageError("state store storage/state.sqlite3: database or disk is full: the disk is full: free space"),
        OSError(errno.EROFS, "Read-only file system"),
    ],
    ids=["store full", "read-only"],
)
async def test_an_order_whose_intent_cannot_be_recorded_is_refused_and_never_reaches_the_executor(
    ledger: TradeLedger, quotes: QuoteCache, caplog: pytest.LogCaptureFixture, failing: Exception
) -> None:
    # Arrange: a position opened while the record took intents; then the record cannot be written.
    record = Record()
    executor = Sent(quotes, record)
    manager = OptionsOrderManager(executor, ledger, clock=lambda: T0)
    manager.record_orders(record)
    quotes.update(SPY.symbol, quote("1.10", "1.20", size=100))
    position = await manager.open_position(SPY, 5, strategy="orb")
    [(order_id, recorded)] = executor.sent
    assert recorded and record.ended == [(order_id, OrderStatus.FILLED)]  # recorded before it was sent; and its end
    record.failing = failing
    caplog.clear()

    # Act: a trim of it and a new position
    refusals = []
    for attempt in (
        manager.trim(position.position_id, qty=2),
        manager.open_position(QQQ, 1, strategy="mr"),
    ):
        with pytest.raises(TradeError) as refused:
            await attempt
        refusals.append(str(refused.value))

    # Assert: one sentence each for the trader, one line each for the operator; nothing sent, nothing changed
    assert refusals == [
        f"The sell order for {SPY.label} {REFUSED} (the state store could not be written).",
        f"The buy order for {QQQ.label} {REFUSED} (the state store could not be written).",
    ]
    assert len(executor.sent) == 1
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 2 and all(str(failing) in r.getMessage() and not r.exc_info for r in lines)
    assert [p.qty for p in manager.all_positions()] == [5] and len(ledger.read()) == 1
    assert len(manager.orders) == 1  # a refused order is no order of the desk


async def test_a_desk_whose_state_store_is_locked_refuses_orders_and_trades_again_once_it_is_free(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Arrange: the desk as the builder wires it; another program holds the store's write lock.
    desk = await open_offline_desk(tmp_path)
    try:
        await desk.store._db.execute("PRAGMA busy_timeout = 50")  # the bot waits 10 s for a lock
        desk.quotes.update(SPY.symbol, quote("1.00", "1.10", size=100))
        other = sqlite3.connect(tmp_path / STATE_FILE, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            # Act
            with pytest.raises(TradeError, match=REFUSED):
                await desk.manager.open_position(SPY, 10, strategy="orb")
        finally:
            other.rollback()
            other.close()
        # Assert: nothing was sent (the paper executor would have filled it), the log names the file
        assert desk.ledger.read() == [] and desk.manager.all_positions() == []
        [line] = [r.getMessage() for r in caplog.records if "not sent" in r.getMessage()]
        assert f"state store {tmp_path / STATE_FILE}: database is locked" in line

        # Once the lock is gone the same order goes, its intent first and its end after
        position = await desk.manager.open_position(SPY, 10, strategy="orb")
        assert await desk.store.open_orders() == []
    finally:
        await desk.close()
    with sqlite3.connect(tmp_path / STATE_FILE) as db:
        [(symbol, strategy, status, filled)] = db.execute("SELECT symbol, strategy, status, filled_qty FROM orders")
    assert (symbol, strategy, status, filled) == (SPY.symbol, "orb", "filled", position.qty)


async def test_a_trade_waits_for_no_state_store_write_once_its_order_is_recorded(tmp_path: Path) -> None:
    # Arrange: the desk as the builder wires it. As its order goes out (its intent on disk), another program takes the
    # store's write lock and keeps it: a write the store is asked for meanwhile waits (up to 10 minutes here).
    desk = await open_offline_desk(tmp_path)
    try:
        await desk.store._db.execute("PRAGMA busy_timeout = 600000")
        other = sqlite3.connect(tmp_path / STATE_FILE, isolation_level=None)

        async def lock_the_store(order: OrderContext, position: Position) -> None:
            if order.status is OrderStatus.NEW:
                other.execute("BEGIN IMMEDIATE")

        desk.manager.subscribe_orders(lock_the_store)
        desk.quotes.update(SPY.symbol, quote("1.00", "1.10", size=100))
        try:
            # Act
            trade = asyncio.ensure_future(desk.manager.open_position(SPY, 10, strategy="orb"))
            # Assert: the fill is in the ledger and on its way to Discord, and the trade done, while the store is locked
            await wait_for(lambda: desk.notifier.backlog == 1 and trade.done())
            [event] = desk.ledger.read()
            assert event.qty == 10 and trade.result().qty == 10
        finally:
            other.rollback()
            other.close()
        assert await desk.store.open_orders() == []  # its end is written with the store's next commit
    finally:
        await desk.close()


async def test_orders_sent_side_by_side_are_each_recorded_and_none_refused(tmp_path: Path) -> None:
    # Arrange: the desk as the builder wires it, one store connection for every order.
    desk = await open_offline_desk(tmp_path)
    try:
        desk.quotes.update(SPY.symbol, quote("1.00", "1.10", size=1000))

        async def open_and_trim() -> None:
            position = await desk.manager.open_position(SPY, 3, strategy="orb")
            await desk.manager.trim(position.position_id, qty=1)

        # Act: 8 positions opened and trimmed at once (the open positions limit is 10)
        await asyncio.gather(*(open_and_trim() for _ in range(8)))

        # Assert: every order recorded and ended
        assert await desk.store.open_orders() == []
    finally:
        await desk.close()
    with sqlite3.connect(tmp_path / STATE_FILE) as db:
        assert db.execute("SELECT status, COUNT(*) FROM orders GROUP BY status").fetchall() == [("filled", 16)]
    assert len(desk.ledger.read()) == 16
