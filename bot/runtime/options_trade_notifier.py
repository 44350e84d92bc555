"""Shows every change of a position: after each fill is durable in the ledger, its message goes to a sink.

The order manager calls `on_fill` only once the fill's ledger line is on disk, so nothing is shown that
is not recorded. Updates are coalesced per position (the latest state wins) and delivered apart from
trading, so a slow or failing sink never blocks or undoes a trade; a failed delivery is retried with
backoff until it goes through.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol

from bot.options.contracts import OptionContract
from bot.options.greeks import ContractGreeks
from bot.options.inbox import LatestByKey
from bot.options.orders import OrderContext, OrderStatus
from bot.options.positions import Position
from bot.options.quotes import QuoteCache
from bot.options.trade_ledger import TradeEvent
from bot.render.position_view import PositionView

log = logging.getLogger(__name__)

# A contract's greeks now, from the desk's source (None: it has no figures for it).
GreeksOf = Callable[[OptionContract], Awaitable[ContractGreeks | None]]


class MessageSink(Protocol):
    async def show(self, view: PositionView) -> None:
        """Post or edit the position's one message so that it shows `view`; raise if that failed."""
        ...


def order_note(order: OrderContext) -> str | None:
    """What a position's message says about an order that is not (fully) filled."""
    if order.status is OrderStatus.NEW:
        return f"pending: {order.side} {order.requested_qty} (order {order.order_id})"
    if order.status in (OrderStatus.REJECTED, OrderStatus.CANCELLED):
        filled = f", {order.filled_qty} of {order.requested_qty} filled" if order.filled_qty else ""
        return f"{order.side} {order.requested_qty} {order.status}{filled}: {order.reason}"
    return None


class OptionsTradeNotifier:
    def __init__(
        self,
        sink: MessageSink,
        quotes: QuoteCache,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        max_backoff: float = 60.0,
        greeks_of: GreeksOf | None = None,
    ) -> None:
        self._sink = sink
        self._quotes = quotes
        self._greeks_of = greeks_of
        self._sleep = sleep
        self._max_backoff = max_backoff
        self._pending: LatestByKey[str, PositionView] = LatestByKey()

    def view(self, position: Position, event_id: str | None = None, note: str | None = None) -> PositionView:
        """What the position's message shows now, at the contract's latest mark."""
        quote = self._quotes.get(position.contract.symbol)
        return PositionView(position, quote.mark if quote else None, note, event_id)

    async def with_greeks(self, view: PositionView) -> PositionView:
        """The view with its open contract's greeks as they are now: taken as the message goes out, in the
        notifier's own work, so that a broker's snapshot is never waited for on the trading path."""
        if self._greeks_of is None or not view.position.is_open:
            return view
        return dataclasses.replace(view, greeks=await self._greeks_of(view.position.contract))

    async def on_fill(self, event: TradeEvent, position: Position) -> None:
        """Order-manager listener, called once the fill is durable: queue the position's new message."""
        self._pending.put(position.position_id, self.view(position, event.event_id))

    async def on_order(self, order: OrderContext, position: Position) -> None:
        """Order listener: an order in flight shows as pending; a reject or cancel shows why."""
        if not position.actions:
            return  # an opening order has no position to show yet
        last_event = self._pending_event_id(position.position_id)
        self._pending.put(position.position_id, self.view(position, last_event, order_note(order)))

    def _pending_event_id(self, position_id: str) -> str | None:
        view = self._pending.peek(position_id)
        return view.event_id if view else None

    def resume(self, views: Iterable[PositionView]) -> None:
        """Queue messages found out of date at start-up (a restart delivers what was pending)."""
        for view in views:
            self._pending.put(view.position.position_id, view)

    @property
    def backlog(self) -> int:
        return len(self._pending)

    async def flush(self) -> int:
        """Deliver every queued message now; returns how many failed (they stay queued for a retry)."""
        failed = 0
        # Each view is taken only when its turn comes: one that waited behind a slow delivery (a rate-limit
        # pause) is replaced by any newer state queued meanwhile, never shown stale.
        for position_id in self._pending.keys():
            view = self._pending.take(position_id)
            if view is None:
                continue
            try:
                await self._sink.show(await self.with_greeks(view))
            except Exception as error:
                failed += 1
                self._pending.put_back(position_id, view)
                log.warning("could not show the message of position %s (%r); will retry", position_id, error)
                continue
        return failed

    async def run(self) -> None:
        """Deliver queued messages as they come, backing off while the sink fails, until cancelled."""
        backoff = 1.0
        while True:
            await self._pending.wait()
            if await self.flush():
                await self._sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)
            else:
                backoff = 1.0
