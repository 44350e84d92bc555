"""`OptionsOrderManager`: the one way trades happen, for strategies and traders alike.

For each request it checks the input, takes the position's lock, runs the pre-trade risk checks
(`bot.options.risk`: the trading state and the limits), records the order's intent (durable, see `OrderRecord`),
sends the order to the executor, applies every fill to the order and the position, appends the fill to the ledger
(durable), and only then tells its listeners (the notifier). A refused request raises TradeError and changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal
from types import MappingProxyType
from typing import TypeVar

from bot import crash
from bot.options.amounts import trim_percent, whole_contracts
from bot.options.clock import Clock, utc_now
from bot.options.contracts import OptionContract
from bot.options.errors import OrderRejected, TradeError, shown
from bot.options.executor import Executor
from bot.options.ids import new_id
from bot.options.order_record import OrderRecord, OrderRecorder
from bot.options.orders import Fill, OrderContext, OrderRequest, OrderStatus, Side
from bot.options.outages import Outages
from bot.options.positions import Position, Source
from bot.options.risk import PendingBuy, RiskCheck
from bot.options.trade_event import Noted
from bot.options.trade_ledger import LedgerError, TradeEvent, TradeLedger
from bot.paths import StorageError

__all__ = ["OptionsOrderManager", "OrderContext", "Position"]

log = logging.getLogger(__name__)

T = TypeVar("T")
FillListener = Callable[[TradeEvent, Position], Awaitable[None]]
OrderListener = Callable[[OrderContext, Position], Awaitable[None]]
_HUNDRED = Decimal(100)


class OptionsOrderManager:
    def __init__(
        self,
        executor: Executor,
        ledger: TradeLedger,
        *,
        clock: Clock = utc_now,
        positions: Iterable[Position] = (),
        order_timeout: float | None = None,
        risk: RiskCheck | None = None,
    ) -> None:
        """`order_timeout`: seconds an executor may take over one order; what is unfilled by then is cancelled."""
        self._executor = executor
        self._order_timeout = order_timeout
        self._risk = risk
        # Buys pass risk one at a time, and each counts against the desk-wide limits from then until it is
        # wholly filled or ended (its unfilled part as a PendingBuy): two opens cannot both slip under a
        # limit, and no buy waits for another's fills (a limit order may work for minutes).
        self._buying = asyncio.Lock()
        self._buys_in_flight: dict[str, tuple[OrderContext, Position, Decimal | None]] = {}
        self._ledger = ledger
        self._clock = clock
        self._positions: dict[str, Position] = {p.position_id: p for p in positions}
        self._view = MappingProxyType(self._positions)
        # The open ones, in the same order: asked for at every tick, while the closed ones pile up (a backtest's year).
        self._open_now = {pid: p for pid, p in self._positions.items() if p.is_open}
        # Every fill id ever applied, so that a fill reported again (after a restart) is applied once.
        self._fill_ids = {action.fill_id for p in self._positions.values() for action in p.actions}
        self._locks: dict[str, asyncio.Lock] = {}
        self._listeners: list[FillListener] = []
        self._outages = Outages(log)
        self._order_listeners: list[OrderListener] = []
        self._recorder = OrderRecorder(clock)
        self.orders: dict[str, OrderContext] = {}
        # While held (see `hold_orders`), the sentence a trader is refused with; new orders go out once released.
        self._held: str | None = None
        self._released = asyncio.Event()

    def subscribe(self, listener: FillListener) -> None:
        """Call `listener(event, position)` after each fill is durable in the ledger."""
        self._listeners.append(listener)

    def subscribe_orders(self, listener: OrderListener) -> None:
        """Call `listener(order, position)` when an order is sent, and when it ends without filling in full
        (rejected or cancelled); `position` is as it was before the order (no actions for an opening one). A
        listener that fails is logged and never stops the order: what must hold before it is sent is `record_orders`."""
        self._order_listeners.append(listener)

    def record_orders(self, record: OrderRecord) -> None:
        """Record each order's intent in `record` before it is sent (an order it cannot take is refused, never sent),
        and its end."""
        self._recorder.record = record

    def hold_orders(self, reason: str) -> None:
        """No new order goes out until `release_orders()`. A strategy's order waits for it; a trader's is
        refused with `reason` (a sentence), as a command cannot keep a trader waiting."""
        self._held = reason
        self._released.clear()

    def release_orders(self) -> None:
        self._held = None
        self._released.set()

    async def _released_for(self, source: Source) -> None:
        # Waited for before the position's lock: what the desk does meanwhile may need that lock.
        if self._held is None:
            return
        if source is Source.MANUAL:
            raise TradeError(self._held)
        await self._released.wait()

    async def _tell_order(self, order: OrderContext, position: Position) -> None:
        for listener in self._order_listeners:
            try:
                await listener(order, position)
            except (StorageError, OSError) as error:  # a store that cannot be written (a full disk): no bug
                self._outages.failed(_name(listener), "order %s not stored: %s", order.order_id, error)
            except Exception:
                log.exception("an order listener failed on order %s", order.order_id)
            else:
                self._outages.worked(_name(listener))

    @property
    def positions_by_id(self) -> Mapping[str, Position]:
        """Every position by id, as it is now (a read-only view)."""
        return self._view

    def get(self, position_id: str) -> Position:
        position = self._positions.get(position_id)
        if position is None:
            raise TradeError(f"There is no position {shown(position_id)}.")
        return position

    def open_positions(self) -> list[Position]:
        return list(self._open_now.values())

    def all_positions(self) -> list[Position]:
        return list(self._positions.values())

    @property
    def position_count(self) -> int:
        """How many positions the desk has recorded: a reader keeping its own index knows when to look again."""
        return len(self._positions)

    async def open_position(
        self,
        contract: OptionContract,
        qty: object,
        *,
        strategy: str,
        source: Source = Source.STRATEGY,
        actor: str | None = None,
        limit_price: Decimal | None = None,
    ) -> Position:
        """Buy to open a new position; returns it after all its fills."""
        contracts = whole_contracts(qty)
        await self._released_for(source)
        position = Position(new_id("pos"), contract, strategy)
        async with self._lock(position.position_id):
            return await self._trade(position, Side.BUY, contracts, source, actor, limit_price)

    async def add(
        self, position_id: str, qty: object, *, source: Source = Source.STRATEGY, actor: str | None = None
    ) -> Position:
        contracts = whole_contracts(qty)
        await self._released_for(source)
        async with self._lock(position_id):
            return await self._trade(self._open(position_id), Side.BUY, contracts, source, actor)

    async def trim(
        self,
        position_id: str,
        *,
        qty: object = None,
        percent: object = None,
        source: Source = Source.STRATEGY,
        actor: str | None = None,
    ) -> Position:
        """Sell part of a position: `qty` contracts, or `percent` of the open quantity (rounded down, >= 1)."""
        if (qty is None) == (percent is None):
            raise TradeError("Trim by a number of contracts or by a percentage, not both or neither.")
        contracts = whole_contracts(qty) if qty is not None else None
        share = trim_percent(percent) if percent is not None else None
        await self._released_for(source)
        async with self._lock(position_id):
            # Sized under the lock: a racing trim or close may have just changed what is open.
            position = self._open(position_id)
            if share is not None:
                contracts = max(1, int((position.qty * share / _HUNDRED).to_integral_value(ROUND_FLOOR)))
            assert contracts is not None
            if contracts > position.qty:
                raise TradeError(
                    f"Cannot trim {contracts} contracts of {position.contract.label}: only {position.qty} are open."
                )
            return await self._trade(position, Side.SELL, contracts, source, actor)

    async def close(self, position_id: str, *, source: Source = Source.STRATEGY, actor: str | None = None) -> Position:
        await self._released_for(source)
        async with self._lock(position_id):
            position = self._open(position_id)
            return await self._trade(position, Side.SELL, position.qty, source, actor)

    async def settle_expiry(
        self,
        position_id: str,
        price: Decimal,
        at: datetime,
        *,
        actor: str | None = "expiry",
        source: Source = Source.STRATEGY,
        fill_id: str | None = None,
        noted: Noted | None = None,
    ) -> Position:
        """Close a position left open at expiry at its settlement (intrinsic) value, 0 when out of the money,
        stamped `at` (the expiry day's close, whenever the desk gets to it).

        No executor is involved: expiry is not an order, and a fill at 0 is right here. A broker's expiry, exercise
        or assignment comes with its own `fill_id` (applied once, as any fill) and `noted` ledger fields.
        """
        async with self._lock(position_id):
            position = self._open(position_id)
            order = OrderContext(new_id("ord"), position_id, Side.SELL, position.qty)
            self.orders[order.order_id] = order
            fill = Fill(fill_id or new_id("fill"), order.order_id, Side.SELL, position.qty, price, Decimal(0), at)
            return await self._apply(position, order, fill, source, actor, noted)

    def _lock(self, position_id: str) -> asyncio.Lock:
        return self._locks.setdefault(position_id, asyncio.Lock())

    def _open(self, position_id: str) -> Position:
        position = self.get(position_id)
        if not position.is_open:
            raise TradeError(f"Position {position.contract.label} ({position_id}) is already closed.")
        return position

    async def _trade(
        self,
        position: Position,
        side: Side,
        qty: int,
        source: Source,
        actor: str | None,
        limit_price: Decimal | None = None,
    ) -> Position:
        async with self._buying if side is Side.BUY else contextlib.nullcontext():
            price = None
            if self._risk is not None:
                now = self._clock()
                price = self._risk.check(position, side, qty, self._positions.values(), now, self._pending_buys())
            order = OrderContext(new_id("ord"), position.position_id, side, qty)
            self.orders[order.order_id] = order
            if side is Side.BUY:
                self._buys_in_flight[order.order_id] = (order, position, price)
        try:
            request = OrderRequest(order.order_id, position.position_id, position.contract, side, qty, limit_price)
            try:
                # Whole even when the desk stops meanwhile: a half-written record would go out with the next commit.
                await _whole(self._recorder.intent(request, position.strategy, position.contract.label))
            except TradeError:
                del self.orders[order.order_id]  # never sent: it is no order of this desk
                raise
            await self._tell_order(order, position)
            return await self._follow(position, order, self._executor.execute(request), source, actor)
        finally:
            self._buys_in_flight.pop(order.order_id, None)

    def _pending_buys(self) -> list[PendingBuy]:
        """The unfilled part of each buy in flight, priced as it was when it passed risk."""
        pending = []
        for order, position, price in self._buys_in_flight.values():
            left = order.requested_qty - order.filled_qty
            if left > 0 and not order.is_final:
                # Without a price it passed with the premium limits off, so it has no premium to count.
                premium = (price or Decimal(0)) * left * position.contract.multiplier
                pending.append(PendingBuy(position.position_id, not position.actions, premium, position.contract, left))
        return pending

    async def resume_order(
        self, request: OrderRequest, strategy: str, fills: AsyncIterator[Fill], *, source: Source = Source.BROKER
    ) -> Position:
        """Follow an order sent before a restart to its end: apply the `fills` the ledger is missing.

        The order is not sent again. Its fills already in the ledger count towards its quantity.
        """
        async with self._lock(request.position_id):
            position = self._positions.get(request.position_id) or Position(
                request.position_id, request.contract, strategy
            )
            order = OrderContext(request.order_id, request.position_id, request.side, request.qty)
            order.fills += [
                Fill(a.fill_id, a.order_id, a.side, a.qty, a.price, a.fees, a.ts)
                for a in position.actions
                if a.order_id == request.order_id
            ]
            if order.fills:
                full = order.filled_qty >= order.requested_qty
                order.status = OrderStatus.FILLED if full else OrderStatus.PARTIALLY_FILLED
            self.orders[order.order_id] = order
            if request.side is Side.BUY:  # still at the broker: it counts against the limits like any buy in flight
                price = self._risk.expected_price(request.contract) if self._risk is not None else None
                self._buys_in_flight[order.order_id] = (order, position, price)
            try:
                return await self._follow(position, order, fills, source, None)
            finally:
                self._buys_in_flight.pop(order.order_id, None)

    async def _follow(
        self, position: Position, order: OrderContext, fills: AsyncIterator[Fill], source: Source, actor: str | None
    ) -> Position:
        try:
            return await self._to_the_end(position, order, fills, source, actor)
        finally:
            if order.is_final:  # else (a fill the ledger refused, a stop mid-order) the restart resolves it
                await _whole(self._recorder.end(order))

    async def _to_the_end(
        self, position: Position, order: OrderContext, fills: AsyncIterator[Fill], source: Source, actor: str | None
    ) -> Position:
        side = order.side
        stopped: str | None = None
        try:
            async with asyncio.timeout(self._order_timeout):
                await self._fill(position, order, fills, source, actor)
        except OrderRejected as rejected:
            if order.status is OrderStatus.NEW:
                order.reject(str(rejected))
                log.info("order %s (%s) rejected: %s", order.order_id, position.position_id, rejected)
                await self._tell_order(order, position)
                raise
            order.cancel(str(rejected))
        except TradeError:
            raise
        except TimeoutError:
            stopped = f"the executor did not finish within {self._order_timeout:g} s"
        except Exception:
            log.exception("the executor failed on order %s (%s)", order.order_id, position.position_id)
            stopped = "the executor failed"
        # Every fill recorded counts, also one recorded as the executor stopped (a timeout waits for its recording).
        position = self._positions.get(position.position_id, position)
        if stopped is not None:
            if order.status is OrderStatus.NEW:
                order.reject(stopped)
                await self._tell_order(order, position)
                raise TradeError(f"The {side} order for {position.contract.label} was not filled: {stopped}.")
            order.cancel(stopped)
        if not order.is_final:
            order.cancel("the executor left the rest unfilled")
        if order.status is OrderStatus.CANCELLED:
            await self._tell_order(order, position)
        if not order.fills:
            raise TradeError(f"The {side} order for {position.contract.label} was cancelled with nothing filled.")
        return position

    async def _fill(
        self, position: Position, order: OrderContext, fills: AsyncIterator[Fill], source: Source, actor: str | None
    ) -> None:
        """Record each fill the executor reports; closing its iterator (on a timeout too) lets it cancel the rest."""
        try:
            async for fill in fills:
                position = await self._apply(position, order, fill, source, actor)
        finally:
            close = getattr(fills, "aclose", None)
            if close is not None:
                await close()

    async def _apply(
        self,
        position: Position,
        order: OrderContext,
        fill: Fill,
        source: Source,
        actor: str | None,
        noted: Noted | None = None,
    ) -> Position:
        """Record one fill: position, ledger, order, listeners — all of it, even if the caller is cancelled.

        The fill happened at the executor; stopping half-way would leave a durable ledger line that the
        order or the position's message never heard of. A cancellation waits for this, then goes on.
        """
        return await _whole(self._record(position, order, fill, source, actor, noted))

    async def _record(
        self,
        position: Position,
        order: OrderContext,
        fill: Fill,
        source: Source,
        actor: str | None,
        noted: Noted | None = None,
    ) -> Position:
        if fill.fill_id in self._fill_ids:
            log.warning("fill %s of order %s was reported again; applied once only", fill.fill_id, order.order_id)
            return position
        if fill.qty > order.requested_qty - order.filled_qty:
            raise TradeError(f"Fill {fill.fill_id} is larger than what is left of order {order.order_id}.")
        after, action = position.with_fill(
            side=fill.side,
            qty=fill.qty,
            price=fill.price,
            fees=fill.fees,
            ts=fill.ts,
            fill_id=fill.fill_id,
            order_id=order.order_id,
            source=source,
            actor=actor,
        )
        event = TradeEvent.record(new_id("evt"), after, action)
        if noted:
            event = event._replace(**noted)
        previous = self._positions.get(position.position_id)
        self._positions[position.position_id] = after
        if after.is_open:
            self._open_now[position.position_id] = after
        else:
            self._open_now.pop(position.position_id, None)
        crash.crash_point("fill-before-ledger")
        try:
            await self._ledger.append(event)
        except LedgerError as error:
            # Memory never holds what the ledger does not.
            if previous is None:
                del self._positions[position.position_id]
            else:
                self._positions[position.position_id] = previous
            self._open_now = {pid: p for pid, p in self._positions.items() if p.is_open}
            log.error("fill %s not recorded, nothing changed: %s", fill.fill_id, error)
            raise TradeError(
                f"The trade on {position.contract.label} could not be recorded, so nothing changed "
                "(the ledger could not be written)."
            ) from error
        self._fill_ids.add(fill.fill_id)
        crash.crash_point("after-ledger")
        order.apply_fill(fill)
        for listener in self._listeners:
            try:
                await listener(event, after)
            except (StorageError, OSError) as error:
                self._outages.failed(_name(listener), "event %s not stored: %s", event.event_id, error)
            except Exception:
                log.exception("a listener failed on event %s of %s", event.event_id, event.position_id)
            else:
                self._outages.worked(_name(listener))
        return after


async def _whole(work: Awaitable[T]) -> T:
    """Run `work` to its end even if the caller is cancelled meanwhile; a cancellation waits for it, then goes on."""
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])
        raise


def _name(listener: object) -> str:
    """A listener as the log names it (`OptionsTradeNotifier.on_fill`)."""
    name = getattr(listener, "__qualname__", None) or repr(listener)
    return name.rpartition("<locals>.")[2]
