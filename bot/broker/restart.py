"""Orders in flight at the broker across a restart: asked for by client order id, never sent again.

The journal (`storage/broker_orders.json`) keeps the contract and strategy of each order before it is
sent, so that an opening order with no fill in the ledger yet can still be followed after a crash.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime
from pathlib import Path

from bot.broker.alpaca_executor import AlpacaExecutor
from bot.options.contracts import OptionContract
from bot.options.errors import TradeError
from bot.options.order_manager import OptionsOrderManager
from bot.options.orders import OrderContext, OrderRequest, OrderStatus
from bot.options.positions import Position
from bot.paths import write_atomically
from bot.runtime.state_store import StateStore, StoredOrder

log = logging.getLogger(__name__)

JOURNAL_FILE = "broker_orders.json"
UNKNOWN_CONTRACT = "its contract was not known after a restart; see python -m bot reconcile"
FILLED_IN_LEDGER = "filled in full in the ledger"


class OrderJournal:
    """Order id -> (symbol, multiplier, strategy) of the orders sent to the broker; written atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, dict[str, object]] = json.loads(path.read_text()) if path.exists() else {}

    async def on_order(self, order: OrderContext, position: Position) -> None:
        """An order listener: recorded when it is sent (before it reaches the broker)."""
        if order.status is OrderStatus.NEW and order.order_id not in self.entries:
            contract = position.contract
            self.entries[order.order_id] = {
                "symbol": contract.symbol,
                "multiplier": contract.multiplier,
                "strategy": position.strategy,
            }
            self._save()

    def keep_only(self, order_ids: set[str]) -> None:
        self.entries = {oid: entry for oid, entry in self.entries.items() if oid in order_ids}
        self._save()

    def _save(self) -> None:
        write_atomically(self.path, json.dumps(self.entries).encode())


async def orders_left_open(
    manager: OptionsOrderManager, store: StateStore, journal: OrderJournal, now: datetime
) -> list[StoredOrder]:
    """The orders the last run left open, read before this run can send any (so none of its own is among them).

    One the ledger shows filled in full (`reconcile --apply` completed it) is closed in the store here, without
    asking the broker; the journal keeps only the orders still to follow.
    """
    left = []
    for order in await store.open_orders():
        position = manager.positions_by_id.get(order.position_id)
        filled = sum(a.qty for a in (position.actions if position else ()) if a.order_id == order.order_id)
        if filled >= order.requested_qty:
            await store.resolve_order(order.order_id, OrderStatus.FILLED, filled, FILLED_IN_LEDGER, now)
            log.info(
                "order %s left open by the last run is %s; closed without asking Alpaca",
                order.order_id,
                FILLED_IN_LEDGER,
            )
        else:
            left.append(order)
    journal.keep_only({order.order_id for order in left})
    return left


async def follow_orders_left_open(
    manager: OptionsOrderManager,
    executor: AlpacaExecutor,
    store: StateStore,
    journal: OrderJournal,
    orders: list[StoredOrder],
    now: datetime,
) -> None:
    """Each of `orders` (from `orders_left_open`): apply its fills the ledger misses, follow it if still working."""
    await asyncio.gather(*(_follow(manager, executor, store, journal, order, now) for order in orders))


async def _follow(
    manager: OptionsOrderManager,
    executor: AlpacaExecutor,
    store: StateStore,
    journal: OrderJournal,
    stored: StoredOrder,
    now: datetime,
) -> None:
    position = manager.positions_by_id.get(stored.position_id)
    entry = journal.entries.get(stored.order_id)
    if position is not None:
        contract, strategy = position.contract, position.strategy
    elif entry is not None:
        contract = OptionContract.parse(str(entry["symbol"]), int(str(entry["multiplier"])))
        strategy = str(entry["strategy"])
    else:
        log.error("order %s left open by a restart: %s", stored.order_id, UNKNOWN_CONTRACT)
        await store.resolve_order(stored.order_id, OrderStatus.CANCELLED, stored.filled_qty, UNKNOWN_CONTRACT, now)
        return
    request = OrderRequest(stored.order_id, stored.position_id, contract, stored.side, stored.requested_qty)
    known = {a.fill_id: a.qty for a in (position.actions if position else ()) if a.order_id == stored.order_id}
    log.info("order %s was in flight at the restart; asking Alpaca about it", stored.order_id)
    try:
        await manager.resume_order(request, strategy, executor.follow(request, known))
    except TradeError as error:
        log.info("order %s after the restart: %s", stored.order_id, error)
