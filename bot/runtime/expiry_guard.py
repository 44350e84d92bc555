"""The expiry-day guard: a long option still open late on its expiry day and in the money would be exercised after the
close (Alpaca exercises anything $0.01 or more in the money, and closes such positions itself from about 15:15 New
York when the account cannot pay for the shares). From the guard's time the desk closes it through the order
manager (`close`), tells the admins once (`alert`), or does nothing (`off`).

The guard's time is `[risk] expiry_guard_time` (15:15 New York) on a regular day; on an early close it comes as long
before the close as that time is before 16:00 (45 minutes: 12:15 on a 13:00 close). It runs on the desk's clock: a
worker of a live desk, a step of a simulated one (the demo, `run`, backtests).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import date, datetime, time
from decimal import Decimal
from typing import Literal

from bot.options.clock import DeskClock
from bot.options.errors import TradeError
from bot.options.market_hours import CLOSE_TIME, session_close
from bot.options.order_manager import OptionsOrderManager
from bot.options.positions import Position, Source
from bot.options.quotes import Quote, QuoteCache
from bot.options.trade_ledger import TradeEvent
from bot.strategies.options.exit_rules import expiry_settlement_price

log = logging.getLogger(__name__)

GuardMode = Literal["close", "alert", "off"]
GUARD_ACTOR = "expiry-guard"  # the actor of the guard's closes in the ledger
# Alpaca exercises a contract this far in the money or more.
IN_THE_MONEY = Decimal("0.01")

Alert = Callable[[str, str], None]  # (kind, text): tell the admins


def guard_moment(day: date, at: time) -> datetime:
    """When the guard starts on `day`: `at` New York, as long before an early close as `at` is before 16:00."""
    ahead = datetime.combine(day, CLOSE_TIME) - datetime.combine(day, at)
    return session_close(day) - ahead


class ExpiryGuard:
    def __init__(
        self,
        mode: GuardMode,
        at: time,
        manager: OptionsOrderManager,
        quotes: QuoteCache,
        clock: DeskClock,
        alert: Alert,
    ) -> None:
        self.mode = mode
        self.at = at
        self._manager = manager
        self._quotes = quotes
        self._clock = clock
        self._alert = alert
        self._done: set[str] = set()  # positions the guard closed or told the admins about
        self._failed: set[str] = set()  # positions whose close was refused (said once; tried again at each check)
        self._news = asyncio.Event()  # a quote or a fill since the last check
        if mode != "off":
            quotes.subscribe(self._on_quote)
            manager.subscribe(self._on_fill)

    def _on_quote(self, symbol: str, quote: Quote) -> None:
        self._news.set()

    async def _on_fill(self, event: TradeEvent, position: Position) -> None:
        self._news.set()

    def moment(self, position: Position) -> datetime:
        return guard_moment(position.contract.expiry, self.at)

    def in_the_money(self, position: Position) -> Decimal | None:
        """How far in the money the position's contract is by its underlying's last price (None: no price)."""
        quote = self._quotes.get(position.contract.underlying)
        spot = quote.mark if quote is not None else None
        return None if spot is None else expiry_settlement_price(position.contract, spot)

    def due(self, now: datetime) -> list[Position]:
        """The open positions expiring today, past the guard's time and before the close, in the money."""
        found = []
        for position in self._manager.open_positions():
            if position.position_id in self._done or not self.moment(position) <= now < self._close(position):
                continue
            value = self.in_the_money(position)
            if value is not None and value >= IN_THE_MONEY:
                found.append(position)
        return found

    @staticmethod
    def _close(position: Position) -> datetime:
        return session_close(position.contract.expiry)

    async def check(self) -> int:
        """Act on what is due now; returns how many positions it closed or told of."""
        if self.mode == "off":
            return 0
        acted = 0
        for position in self.due(self._clock()):
            if await self._act(position):
                self._done.add(position.position_id)
                acted += 1
        return acted

    async def _act(self, position: Position) -> bool:
        label, value = position.contract.label, self.in_the_money(position)
        expires = (
            f"{label}, {position.qty} contracts (position {position.position_id}), expires today {value} in the money"
        )
        if self.mode == "alert":
            self._alert(f"expiry guard {position.position_id}", f"{expires}; it is exercised after the close if held")
            return True
        log.info("expiry guard: %s; closing it", expires)
        try:
            after = await self._manager.close(position.position_id, source=Source.STRATEGY, actor=GUARD_ACTOR)
        except TradeError as error:
            if position.position_id not in self._failed:
                self._failed.add(position.position_id)
                log.warning("expiry guard: could not close %s (%s): %s", label, position.position_id, error)
            return False
        return not after.is_open  # filled in part: the rest is closed at the next check

    def next_moment(self, now: datetime) -> datetime | None:
        """The soonest guard time of an open position whose close is still ahead (now, if one is in its window)."""
        moments = [
            self.moment(p)
            for p in self._manager.open_positions()
            if p.position_id not in self._done and now < self._close(p)
        ]
        return max(min(moments), now) if moments else None

    async def run(self) -> None:
        """A live desk's worker: sleep on the desk's clock until a guard time, then check at each quote or fill until
        the positions due are dealt with or their close has passed; until cancelled."""
        if self.mode == "off":
            return
        while True:
            self._news.clear()
            now = self._clock()
            moment = self.next_moment(now)
            if moment is not None and moment <= now:
                await self.check()
                await self._news.wait()
            elif moment is not None:
                await _either(self._clock.sleep_until(moment), self._news.wait())
            else:
                await self._news.wait()


async def _either(first: Awaitable[object], second: Awaitable[object]) -> None:
    """Wait until one of two awaitables ends (a new position may bring a sooner guard time), cancelling the other."""
    tasks = [asyncio.ensure_future(first), asyncio.ensure_future(second)]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
