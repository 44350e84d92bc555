"""A position is a fold over its fills: open, add, trim, close, average entry and realized P&L.

Live trading and ledger replay both go through `Position.with_fill`, so replaying the ledger rebuilds
every position exactly.
"""

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import NamedTuple

from bot.options.contracts import OptionContract
from bot.options.errors import TradeError
from bot.options.side import Side

ZERO = Decimal(0)


class ActionKind(StrEnum):
    """The effect of one fill; set per fill, never per order."""

    OPEN = "open"
    ADD = "add"
    TRIM = "trim"
    CLOSE = "close"


class PositionStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


# The strategy of a position a trader opened for no strategy to manage (no automatic exits).
MANUAL_STRATEGY = "manual"


class Source(StrEnum):
    STRATEGY = "strategy"
    MANUAL = "manual"
    BROKER = "broker"
    RECONCILE = "reconcile"


# Records here are NamedTuples, not frozen dataclasses: every read-only command imports this module, and a dataclass
# takes Python 3.11 ~1.5 ms to make. No annotations from __future__ here: typing would compile each field's type given
# as text (~30 us a field).
class PositionAction(NamedTuple):
    """One fill as it changed the position."""

    kind: ActionKind
    side: Side
    qty: int
    price: Decimal
    fees: Decimal
    realized_pnl: Decimal
    ts: datetime
    fill_id: str
    order_id: str
    source: Source
    actor: str | None = None


class Position(NamedTuple):
    """A long-premium options position. Immutable: each fill gives a new Position."""

    position_id: str
    contract: OptionContract
    strategy: str
    qty: int = 0
    avg_entry: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    fees: Decimal = ZERO
    status: PositionStatus = PositionStatus.OPEN
    opened_at: datetime | None = None
    closed_at: datetime | None = None
    actions: tuple[PositionAction, ...] = ()

    @property
    def is_open(self) -> bool:
        return self.status is PositionStatus.OPEN

    def unrealized_pnl(self, mark: Decimal) -> Decimal:
        return (mark - self.avg_entry) * self.qty * self.contract.multiplier

    def kind_of(self, side: Side, qty: int) -> ActionKind:
        """What a fill of `qty` on `side` would be; raises TradeError if it is not allowed."""
        if not self.is_open:
            raise TradeError(f"Position {self.position_id} is closed; it cannot be traded.")
        if qty <= 0:
            raise TradeError(f"A fill needs a positive number of contracts, not {qty}.")
        if side is Side.BUY:
            return ActionKind.ADD if self.actions else ActionKind.OPEN
        if not self.actions:
            raise TradeError(f"Position {self.position_id} has nothing open to sell.")
        if qty > self.qty:
            raise TradeError(f"Cannot sell {qty} contracts of position {self.position_id}: only {self.qty} are open.")
        return ActionKind.CLOSE if qty == self.qty else ActionKind.TRIM

    def with_fill(
        self,
        *,
        side: Side,
        qty: int,
        price: Decimal,
        fees: Decimal,
        ts: datetime,
        fill_id: str,
        order_id: str,
        source: Source,
        actor: str | None = None,
    ) -> "tuple[Position, PositionAction]":
        """The position after one fill, and the action recording it. `self` is left unchanged."""
        kind = self.kind_of(side, qty)
        if side is Side.BUY:
            # Fees on a buy are realized at once and never move the average entry.
            avg_entry = (self.avg_entry * self.qty + price * qty) / (self.qty + qty)
            realized = -fees
            new_qty = self.qty + qty
        else:
            avg_entry = self.avg_entry
            realized = (price - self.avg_entry) * qty * self.contract.multiplier - fees
            new_qty = self.qty - qty
        action = PositionAction(kind, side, qty, price, fees, realized, ts, fill_id, order_id, source, actor)
        closed = kind is ActionKind.CLOSE
        # Built directly, not with _replace: replaying a long ledger runs this once per line.
        position = Position(
            self.position_id,
            self.contract,
            self.strategy,
            new_qty,
            avg_entry,
            self.realized_pnl + realized,
            self.fees + fees,
            PositionStatus.CLOSED if closed else PositionStatus.OPEN,
            self.opened_at or ts,
            ts if closed else None,
            (*self.actions, action),
        )
        return position, action
