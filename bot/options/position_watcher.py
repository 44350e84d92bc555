"""Streams mark prices of open positions to the strategies that own them.

Every new quote of a contract with open positions becomes a mark (mid, else last) for each of them. Marks
wait in one mailbox per strategy that keeps only the latest per position, and each strategy is served
by its own worker, so a slow or failing strategy never holds up another. With a throttle interval, a
position gets at most one update per interval — always the latest mark.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Protocol

from bot.options.inbox import LatestByKey
from bot.options.order_manager import OptionsOrderManager
from bot.options.outages import Outages
from bot.options.positions import Position
from bot.options.quotes import Quote, QuoteCache
from bot.options.trade_ledger import TradeEvent
from bot.paths import StorageError

log = logging.getLogger(__name__)


class PositionHandler(Protocol):
    async def on_position_update(self, position: Position, mark: Decimal) -> None: ...


class PositionWatcher:
    def __init__(
        self,
        manager: OptionsOrderManager,
        quotes: QuoteCache,
        strategies: Mapping[str, PositionHandler],
        *,
        interval: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._manager = manager
        self._strategies = strategies
        self._interval = interval
        self._clock = clock
        self._by_symbol: defaultdict[str, dict[str, str]] = defaultdict(dict)  # symbol -> position id -> owner
        self._inboxes: dict[str, LatestByKey[str, Decimal]] = {name: LatestByKey() for name in strategies}
        self._last_sent: dict[str, float] = {}
        self.delivered = 0
        self._outages = Outages(log)
        for position in manager.open_positions():
            self._track(position)
        manager.subscribe(self._on_fill)
        quotes.subscribe(self.on_quote)

    @property
    def watched(self) -> int:
        return sum(len(ids) for ids in self._by_symbol.values())

    def _track(self, position: Position) -> None:
        symbol = position.contract.symbol
        if position.is_open and position.strategy in self._strategies:
            self._by_symbol[symbol][position.position_id] = position.strategy
        else:
            self._by_symbol.get(symbol, {}).pop(position.position_id, None)
            self._last_sent.pop(position.position_id, None)

    async def _on_fill(self, event: TradeEvent, position: Position) -> None:
        # Positions opened or closed while running are picked up and dropped here, without a restart.
        self._track(position)

    def on_quote(self, symbol: str, quote: Quote) -> None:
        owners = self._by_symbol.get(symbol)
        if not owners:
            return
        mark = quote.mark
        if mark is None:
            return
        for position_id, strategy in owners.items():
            self._inboxes[strategy].put(position_id, mark)

    async def deliver_due(self, strategy: str) -> float | None:
        """Hand the strategy every mark that is due; return the seconds until the next one is due, if any."""
        inbox = self._inboxes[strategy]
        update = self._strategies[strategy].on_position_update
        positions = self._manager.positions_by_id
        throttled = self._interval > 0
        now = self._clock() if throttled else 0.0
        next_due = math.inf
        for position_id, mark in inbox.take_all().items():
            if throttled:
                due = self._last_sent.get(position_id, -math.inf) + self._interval
                if due > now:
                    inbox.put_back(position_id, mark)
                    next_due = min(next_due, due - now)
                    continue
                self._last_sent[position_id] = now
            position = positions[position_id]
            if not position.is_open:
                continue
            self.delivered += 1
            try:
                await update(position, mark)
            # Its memory could not be stored (a full disk): no bug. An update that stores nothing proves
            # nothing about the store, so the line comes again only after the interval.
            except (StorageError, OSError) as error:
                self._outages.failed(f"strategy {strategy}", "position %s: %s", position_id, error)
            except Exception:
                log.exception("strategy %s failed on an update of position %s", strategy, position_id)
        return None if next_due == math.inf else next_due

    async def deliver_all(self) -> None:
        """Deliver what is due to every strategy, one after another (used by the stepped demo day)."""
        for strategy in self._strategies:
            await self.deliver_due(strategy)

    def pending(self) -> int:
        return sum(len(inbox) for inbox in self._inboxes.values())

    async def run(self, strategy: str) -> None:
        """The strategy's worker: deliver its marks as they come, until cancelled."""
        inbox = self._inboxes[strategy]
        while True:
            await inbox.wait()
            wait = await self.deliver_due(strategy)
            if wait is not None:
                await asyncio.sleep(wait)
