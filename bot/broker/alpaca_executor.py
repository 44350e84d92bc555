"""`AlpacaExecutor`: option orders at Alpaca, followed to their final state, fills as the paper executor gives them.

Each order goes out with our order id as its client order id, so a retried request or a restart never
places it twice. It is followed through the trade-updates stream; whenever the stream has been silent
for `poll_interval` (down, or an update lost in a reconnect) the order is asked for over REST, and fills
the stream did not bring are read from the account's fill history. Every execution becomes one `Fill`
whose id is the broker's execution id, so a fill heard twice is applied once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, timedelta
from decimal import Decimal

from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, OrderStatus, PositionIntent, TimeInForce, TradeEvent
from alpaca.trading.models import Order, TradeUpdate
from alpaca.trading.requests import LimitOrderRequest, MarketOrderRequest
from alpaca.trading.stream import TradingStream

from bot.broker.alpaca import stop_stream
from bot.broker.alpaca_fills import fill_activities, to_broker_fill, whole_contracts
from bot.options.errors import OrderRejected
from bot.options.orders import Fill, OrderRequest, Side

log = logging.getLogger(__name__)

# An order in one of these states will not fill any further.
FINAL = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.EXPIRED, OrderStatus.REJECTED, OrderStatus.DONE_FOR_DAY}
)
_FILL_EVENTS = frozenset({TradeEvent.FILL, TradeEvent.PARTIAL_FILL})
# Our long-premium desk only ever buys to open and sells to close.
_INTENT = {Side.BUY: PositionIntent.BUY_TO_OPEN, Side.SELL: PositionIntent.SELL_TO_CLOSE}
# Fill history is read from a little before the order was sent: clocks differ.
_HISTORY_MARGIN = timedelta(minutes=1)


def _what(order: OrderRequest) -> str:
    return f"the {order.side} order for {order.qty} {order.contract.label}"


class AlpacaExecutor:
    def __init__(
        self,
        client: TradingClient,
        stream: TradingStream | None = None,
        *,
        poll_interval: float = 2.0,
        order_timeout: float = 60.0,
        fee_per_contract: Decimal = Decimal(0),
    ) -> None:
        self._client = client
        self._fee = fee_per_contract
        self._stream = stream
        self._poll_interval = poll_interval
        self._order_timeout = order_timeout
        self._updates: dict[str, asyncio.Queue[TradeUpdate]] = {}  # our order id -> its stream updates
        if stream is not None:
            # Subscribed before the stream runs: subscribing on the loop's thread while it runs deadlocks.
            stream.subscribe_trade_updates(self._on_update)

    async def run(self) -> None:
        """The trade-updates stream, until cancelled (the SDK reconnects by itself)."""
        if self._stream is None:
            return
        running = asyncio.create_task(self._stream._run_forever(), name="alpaca trade updates")
        try:
            await asyncio.shield(running)  # a cancel of this worker is handed on by stop_stream
        finally:
            await stop_stream(self._stream, running)

    async def _on_update(self, update: TradeUpdate) -> None:
        queue = self._updates.get(update.order.client_order_id)
        if queue is not None:
            queue.put_nowait(update)

    async def execute(self, order: OrderRequest) -> AsyncIterator[Fill]:
        self._updates[order.order_id] = asyncio.Queue()
        try:
            placed = await self._submit(order)
            async for fill in self._follow(order, placed, {}):
                yield fill
        finally:
            del self._updates[order.order_id]

    async def follow(self, order: OrderRequest, known: Mapping[str, int]) -> AsyncIterator[Fill]:
        """An order sent before a restart: yield the fills not in `known` (fill id -> qty) until it is final.

        It is never sent again; one the broker never received ends at once with nothing filled.
        """
        self._updates[order.order_id] = asyncio.Queue()
        try:
            placed = await self._lookup(order.order_id)
            if placed is None:
                log.warning("%s (%s) never reached Alpaca", _what(order), order.order_id)
                return
            async for fill in self._follow(order, placed, known):
                yield fill
        finally:
            del self._updates[order.order_id]

    async def _submit(self, order: OrderRequest) -> Order:
        fields = {
            "symbol": order.contract.compact,
            "qty": order.qty,
            "side": OrderSide.BUY if order.side is Side.BUY else OrderSide.SELL,
            "time_in_force": TimeInForce.DAY,
            "client_order_id": order.order_id,
            "position_intent": _INTENT[order.side],
        }
        request = (
            MarketOrderRequest(**fields)
            if order.limit_price is None
            else LimitOrderRequest(**fields, limit_price=float(order.limit_price))
        )
        try:
            placed = await asyncio.to_thread(self._client.submit_order, request)
        except Exception as error:
            # The request may have reached Alpaca even so (a timeout, or a retried 504 refused as a duplicate):
            # the client order id tells.
            found = await self._lookup(order.order_id)
            if found is None:
                log.warning("Alpaca refused %s (%s): %s", _what(order), order.order_id, _reason(error))
                raise OrderRejected(f"Alpaca refused {_what(order)}: {_reason(error)}.") from None
            log.info("order %s reached Alpaca despite an error (%s); following it", order.order_id, _reason(error))
            return found
        assert isinstance(placed, Order)
        log.info("order %s sent to Alpaca as %s (%s)", order.order_id, placed.id, placed.status.value)
        return placed

    async def _lookup(self, order_id: str) -> Order | None:
        try:
            found = await asyncio.to_thread(self._client.get_order_by_client_id, order_id)
        except APIError as error:
            if error.status_code == 404:
                return None
            raise
        assert isinstance(found, Order)
        return found

    async def _follow(self, order: OrderRequest, placed: Order, known: Mapping[str, int]) -> AsyncIterator[Fill]:
        seen = dict(known)
        queue = self._updates[order.order_id]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._order_timeout
        cancelling = False
        state = placed
        while True:
            if whole_contracts(state.filled_qty) > sum(seen.values()):
                for fill in await self._missed(order, state, seen):
                    yield fill
            if state.status in FINAL:
                break
            if not cancelling and loop.time() >= deadline:
                cancelling = True
                log.info(
                    "order %s still working after %.0f s; cancelling the rest", order.order_id, self._order_timeout
                )
                await asyncio.to_thread(self._client.cancel_order_by_id, state.id)
            wait = self._poll_interval if cancelling else max(0.0, min(self._poll_interval, deadline - loop.time()))
            try:
                update = await asyncio.wait_for(queue.get(), wait)
            except TimeoutError:
                state = await self._lookup(order.order_id) or state  # the stream is silent: ask
                continue
            state = update.order
            if update.event in _FILL_EVENTS and update.execution_id is not None:
                qty = whole_contracts(update.qty)
                fill = Fill(
                    str(update.execution_id),
                    order.order_id,
                    order.side,
                    qty,
                    Decimal(str(update.price)),
                    self._fee * qty,
                    update.timestamp.astimezone(UTC),
                )
                if fill.fill_id not in seen:
                    seen[fill.fill_id] = fill.qty
                    yield fill
        self._finish(order, state, sum(seen.values()))

    async def _missed(self, order: OrderRequest, state: Order, seen: dict[str, int]) -> list[Fill]:
        """The order's executions the stream did not bring, from the account's fill history."""
        activities = await asyncio.to_thread(fill_activities, self._client, state.submitted_at - _HISTORY_MARGIN)
        ours = {str(state.id): order.order_id}
        fills = [
            to_broker_fill(a, ours).as_fill(order.order_id, self._fee)
            for a in activities
            if str(a.order_id) == str(state.id)
        ]
        missed = [fill for fill in fills if fill.fill_id not in seen]
        for fill in missed:
            seen[fill.fill_id] = fill.qty
            log.info("fill %s of order %s found in Alpaca's fill history", fill.fill_id, order.order_id)
        return missed

    def _finish(self, order: OrderRequest, state: Order, filled: int) -> None:
        if state.status is OrderStatus.FILLED:
            return
        ended = "rejected" if state.status is OrderStatus.REJECTED else state.status.value.replace("_", " ")
        log.info("order %s %s at Alpaca with %d of %d filled", order.order_id, ended, filled, order.qty)
        # Before any fill this is a rejection; after some, the order manager records it as the reason the
        # rest was cancelled. A cancel with nothing filled just ends: the order manager says so.
        if filled:
            raise OrderRejected(f"Alpaca {ended} the rest of {_what(order)} after {filled} filled.")
        if state.status is OrderStatus.REJECTED:
            raise OrderRejected(f"Alpaca rejected {_what(order)}.")


def _reason(error: BaseException) -> str:
    """The broker's own words when it gave some (never a request, which carries the credentials)."""
    if isinstance(error, APIError):
        try:
            return str(error.message).rstrip(".")
        except (ValueError, KeyError, TypeError):
            return f"HTTP {error.status_code}"
    return "it did not answer"
