"""Orders and fills: what was asked of an executor and what it did."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from bot.options.contracts import OptionContract
from bot.options.side import Side


class OrderStatus(StrEnum):
    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"


# The only moves an order's status may make; anything else is a bug and raises.
_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.NEW: frozenset(
        {OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED}
    ),
    OrderStatus.PARTIALLY_FILLED: frozenset({OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED, OrderStatus.CANCELLED}),
    OrderStatus.FILLED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
    OrderStatus.REJECTED: frozenset(),
}


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """What the order manager hands to an executor."""

    order_id: str
    position_id: str
    contract: OptionContract
    side: Side
    qty: int
    limit_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution of (part of) an order. `fees` are the dollars charged for this fill."""

    fill_id: str
    order_id: str
    side: Side
    qty: int
    price: Decimal
    fees: Decimal
    ts: datetime


@dataclass(slots=True)
class OrderContext:
    order_id: str
    position_id: str
    side: Side
    requested_qty: int
    status: OrderStatus = OrderStatus.NEW
    fills: list[Fill] = field(default_factory=list)
    reason: str | None = None

    @property
    def filled_qty(self) -> int:
        return sum(fill.qty for fill in self.fills)

    @property
    def avg_fill_price(self) -> Decimal | None:
        filled = self.filled_qty
        if not filled:
            return None
        return sum((fill.price * fill.qty for fill in self.fills), Decimal(0)) / filled

    @property
    def is_final(self) -> bool:
        return not _TRANSITIONS[self.status]

    def _move(self, status: OrderStatus) -> None:
        if status not in _TRANSITIONS[self.status]:
            raise ValueError(f"order {self.order_id}: cannot go from {self.status} to {status}")
        self.status = status

    def apply_fill(self, fill: Fill) -> None:
        if fill.qty > self.requested_qty - self.filled_qty:
            raise ValueError(f"order {self.order_id}: fill {fill.fill_id} exceeds the quantity left")
        full = self.filled_qty + fill.qty == self.requested_qty
        self._move(OrderStatus.FILLED if full else OrderStatus.PARTIALLY_FILLED)
        self.fills.append(fill)

    def cancel(self, reason: str | None = None) -> None:
        """The executor is done with the order: what is not filled by now never will be."""
        if self.status is not OrderStatus.FILLED:
            self.reason = reason
            self._move(OrderStatus.CANCELLED)

    def reject(self, reason: str) -> None:
        self.reason = reason
        self._move(OrderStatus.REJECTED)
