"""Write-first for orders: an order's intent is durable (in an `OrderRecord`, the desk's state store) before any
executor sees it, so that after a crash the restart knows of every order that may be working somewhere. An order
whose intent cannot be written is refused, and never sent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from bot.options.clock import Clock
from bot.options.contracts import OptionContract
from bot.options.errors import TradeError
from bot.options.orders import OrderContext, OrderRequest, OrderStatus, Side
from bot.options.outages import Outages
from bot.paths import StorageError

log = logging.getLogger(__name__)

ORDER_RECORD = "the record of orders in flight"  # as the log names it


class OrderRecord(Protocol):
    """Where the orders in flight outlive the process, for a restart to resolve or follow."""

    async def record_intent(self, request: OrderRequest, strategy: str, at: datetime) -> None:
        """Durable when it returns; if it raises, the order is not sent."""
        ...

    async def record_end(self, order: OrderContext, at: datetime) -> None:
        """The order filled, or was cancelled or rejected: nothing is left to follow."""
        ...


@dataclass(frozen=True, slots=True)
class StoredOrder:
    order_id: str
    position_id: str
    side: Side
    requested_qty: int
    filled_qty: int
    status: OrderStatus
    contract: OptionContract | None  # None: an order an older desk recorded (see bot.broker.restart)
    strategy: str | None
    limit_price: Decimal | None = None


class OrdersInFlight(OrderRecord, Protocol):
    """The record as a restart reads it back: what a broker desk resolves against the broker when it starts."""

    async def open_orders(self) -> list[StoredOrder]:
        """Orders not known to have ended."""
        ...

    async def resolve_order(
        self, order_id: str, status: OrderStatus, filled_qty: int, reason: str | None, at: datetime
    ) -> None:
        """The order ended as the restart found out."""
        ...

    async def note_contracts(self, contracts: dict[str, tuple[OptionContract, str]]) -> None:
        """Order id -> (contract, strategy) for orders an older desk recorded without them."""
        ...


class OrderRecorder:
    """The order manager's side of its `OrderRecord` (none: orders are not recorded)."""

    def __init__(self, clock: Clock, record: OrderRecord | None = None) -> None:
        self._clock = clock
        self.record = record
        self._outages = Outages(log)

    async def intent(self, request: OrderRequest, strategy: str, label: str) -> None:
        """Record the order about to be sent; raises TradeError (the trader's sentence) if that fails."""
        if self.record is None:
            return
        try:
            await self.record.record_intent(request, strategy, self._clock())
        except Exception as error:
            if isinstance(error, StorageError | OSError):  # a store that cannot be written (a full disk): no bug
                log.error("order %s (%s) not recorded, not sent: %s", request.order_id, request.position_id, error)
            else:
                log.exception("order %s (%s) not sent: recording it failed", request.order_id, request.position_id)
            raise TradeError(
                f"The {request.side} order for {label} could not be recorded, so it was not sent (the state store "
                "could not be written)."
            ) from error

    async def end(self, order: OrderContext) -> None:
        """Record that the order ended; a failure is logged (the restart then resolves the order from the ledger, or
        asks the broker)."""
        if self.record is None:
            return
        try:
            await self.record.record_end(order, self._clock())
        except (StorageError, OSError) as error:
            self._outages.failed(ORDER_RECORD, "the end of order %s not stored: %s", order.order_id, error)
        except Exception:
            log.exception("recording the end of order %s failed", order.order_id)
        else:
            self._outages.worked(ORDER_RECORD)
