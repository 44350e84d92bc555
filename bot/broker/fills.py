"""A fill as the broker reports it, before the desk knows which of its orders and positions it belongs to."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from bot.options.orders import Fill, Side


@dataclass(frozen=True, slots=True)
class BrokerFill:
    """One execution at the broker. `fill_id` is the broker's execution id; `order_id` our order id (the
    broker's client order id), or None for an order the desk did not send."""

    fill_id: str
    broker_order_id: str
    order_id: str | None
    symbol: str  # padded OCC, as the ledger writes it
    side: Side
    qty: int
    price: Decimal
    ts: datetime  # UTC

    def as_fill(self, order_id: str, fee_per_contract: Decimal) -> Fill:
        return Fill(self.fill_id, order_id, self.side, self.qty, self.price, fee_per_contract * self.qty, self.ts)
