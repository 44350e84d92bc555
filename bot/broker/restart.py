"""Orders in flight at the broker across a restart: asked for by client order id, never sent again.

Each order's intent is in the state store, with its contract and strategy, before the order is sent
(`bot.options.order_record`), so that an opening order with no fill in the ledger yet can still be followed after a
crash. Desks before that kept them in `storage/broker_orders.json`: an upgraded desk reads it once, then deletes it.
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
from bot.options.order_record import OrdersInFlight, StoredOrder
from bot.options.orders import OrderRequest, OrderStatus

log = logging.getLogger(__name__)

OLD_JOURNAL = "broker_orders.json"
UNKNOWN_CONTRACT = "its contract was not known after a restart; see python -m bot reconcile"
FILLED_IN_LEDGER = "filled in full in the ledger"


async def take_old_journal(storage: Path, store: OrdersInFlight) -> None:
    """Move the contracts and strategies an older desk noted in `broker_orders.json` into the state store's orders,
    then delete the file. One that cannot be read is left where it is, said in one line."""
    path = storage / OLD_JOURNAL
    contracts = _read_old_journal(path)
    if contracts is None:
        return
    await store.note_contracts(contracts)
    _forget(path)
    log.info("%s: the contracts of %d order(s) moved into the state store; the file is gone", path, len(contracts))


def _read_old_journal(path: Path) -> dict[str, tuple[OptionContract, str]] | None:
    if not path.exists():
        return None
    try:
        entries = json.loads(path.read_text())
        return {
            str(order_id): (OptionContract.parse(str(e["symbol"]), int(e["multiplier"])), str(e["strategy"]))
            for order_id, e in entries.items()
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError, TradeError) as error:
        log.warning(
            "%s, left by an older desk, cannot be read (%s): an order it noted is followed only if its position is "
            "in the ledger; move the file away",
            path,
            error,
        )
        return None


def _forget(path: Path) -> None:
    path.unlink()


async def orders_left_open(manager: OptionsOrderManager, store: OrdersInFlight, now: datetime) -> list[StoredOrder]:
    """The orders the last run left open, read before this run can send any (so none of its own is among them).

    One the ledger shows filled in full (`reconcile --apply` completed it) is closed in the store here, without
    asking the broker.
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
    return left


async def follow_orders_left_open(
    manager: OptionsOrderManager,
    executor: AlpacaExecutor,
    store: OrdersInFlight,
    orders: list[StoredOrder],
    now: datetime,
) -> None:
    """Each of `orders` (from `orders_left_open`): apply its fills the ledger misses, follow it if still working."""
    await asyncio.gather(*(_follow(manager, executor, store, order, now) for order in orders))


async def _follow(
    manager: OptionsOrderManager,
    executor: AlpacaExecutor,
    store: OrdersInFlight,
    stored: StoredOrder,
    now: datetime,
) -> None:
    position = manager.positions_by_id.get(stored.position_id)
    if stored.contract is not None and stored.strategy is not None:
        contract, strategy = stored.contract, stored.strategy
    elif position is not None:  # an older desk's order, of a position the ledger knows
        contract, strategy = position.contract, position.strategy
    else:
        log.error("order %s left open by a restart: %s", stored.order_id, UNKNOWN_CONTRACT)
        await store.resolve_order(stored.order_id, OrderStatus.CANCELLED, stored.filled_qty, UNKNOWN_CONTRACT, now)
        return
    request = OrderRequest(
        stored.order_id, stored.position_id, contract, stored.side, stored.requested_qty, stored.limit_price
    )
    known = {a.fill_id: a.qty for a in (position.actions if position else ()) if a.order_id == stored.order_id}
    log.info("order %s was in flight at the restart; asking Alpaca about it", stored.order_id)
    try:
        await manager.resume_order(request, strategy, executor.follow(request, known))
    except TradeError as error:
        log.info("order %s after the restart: %s", stored.order_id, error)
