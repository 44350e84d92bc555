"""The desk's trading state at run time: kept in the state store, held in memory for the order path.

Admins, the operator and the daily-loss limit change it; every change is stored first, then logged and
told to the listeners (the admin channel on Discord). A change made from the shell while the bot runs
(`python -m bot state --set ...`) is picked up by the `watch` worker within WATCH_SECONDS: orders never
wait on a database read.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable

from bot.options.clock import Clock
from bot.options.market_hours import MARKET_TZ
from bot.options.positions import Position
from bot.options.risk import DeskState, RiskLimits, TradingState, dollars, loss_limit_reached, realized_on
from bot.options.trade_ledger import TradeEvent
from bot.runtime.state_store import StateStore

log = logging.getLogger(__name__)

# Who set a state when it was not a Discord admin.
OPERATOR = "operator"
RISK = "risk"
WATCH_SECONDS = 2.0

StateListener = Callable[[DeskState, DeskState], Awaitable[None]]


class TradingSwitch:
    def __init__(self, store: StateStore, clock: Clock, current: DeskState) -> None:
        self._store = store
        self._clock = clock
        self._current = current
        self._listeners: list[StateListener] = []
        self._lock = asyncio.Lock()  # a read racing a write must not announce one change twice

    @classmethod
    async def open(cls, store: StateStore, clock: Clock) -> TradingSwitch:
        return cls(store, clock, await store.trading_state())

    @property
    def current(self) -> DeskState:
        """The state as last read or set; what every order is checked against."""
        return self._current

    def subscribe(self, listener: StateListener) -> None:
        """Call `listener(before, after)` after each change is stored."""
        self._listeners.append(listener)

    async def load(self) -> DeskState:
        """The state as stored now; a change made elsewhere (the shell) is announced here."""
        async with self._lock:
            stored = await self._store.trading_state()
            if stored != self._current:
                await self._changed(stored)
            return stored

    async def set(self, state: TradingState, reason: str, by: str) -> DeskState:
        async with self._lock:
            after = DeskState(state, reason, by, self._clock())
            await self._store.save_trading_state(after)
            await self._changed(after)
            return after

    async def watch(self, every: float = WATCH_SECONDS) -> None:
        """Worker: notice changes made from the shell while no order comes, until cancelled."""
        while True:
            await asyncio.sleep(every)
            await self.load()

    async def _changed(self, after: DeskState) -> None:
        before, self._current = self._current, after
        log.warning(
            "trading state %s -> %s, set by %s: %s", before.state, after.state, after.set_by, after.reason or "-"
        )
        for listener in self._listeners:
            try:
                await listener(before, after)
            except Exception:
                log.exception("a trading-state listener failed")


def guard_daily_loss(
    switch: TradingSwitch, positions: Callable[[], Iterable[Position]], limits: RiskLimits
) -> Callable[[TradeEvent, Position], Awaitable[None]]:
    """A fill listener: the fill that takes today's realized loss to the limit moves an active desk to
    reduce-only. Only the crossing fill does, so a desk an admin resumed afterwards stays resumed."""

    async def after_fill(event: TradeEvent, position: Position) -> None:
        if limits.max_daily_loss is None or switch.current.state is not TradingState.ACTIVE:
            return
        after = realized_on(positions(), event.ts.astimezone(MARKET_TZ).date())
        if loss_limit_reached(limits, after) and not loss_limit_reached(limits, after - event.realized_pnl):
            reason = (
                f"today's realized P&L {dollars(after)} reached the max daily loss limit "
                f"(a loss of {dollars(limits.max_daily_loss)})"
            )
            await switch.set(TradingState.REDUCE_ONLY, reason, RISK)

    return after_fill
