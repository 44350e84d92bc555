"""Opening-range breakout: buy calls when the underlying breaks above its opening range, puts below.

One entry per day and underlying; adds once when the move extends further; exits by the shared rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Protocol

from bot.options.contracts import Right
from bot.options.market_hours import MARKET_TZ, session_open
from bot.options.positions import ActionKind, Position
from bot.options.quotes import Quote
from bot.strategies.base import UnderlyingConfig, UnderlyingStrategy

_HUNDRED = Decimal(100)


@dataclass(slots=True)
class _Range:
    high: Decimal
    low: Decimal
    complete: bool  # seen from the open; a range joined late (after a restart) is not traded on
    breakout: Decimal | None = None


class OpeningRangeConfig(UnderlyingConfig, Protocol):
    @property
    def range_minutes(self) -> int: ...
    @property
    def add_on_extension_pct(self) -> Decimal: ...


class OpeningRangeBreakout(UnderlyingStrategy):
    def __init__(self, config: OpeningRangeConfig) -> None:
        super().__init__(config)
        self.range = timedelta(minutes=config.range_minutes)
        self.add_on_extension = config.add_on_extension_pct / _HUNDRED
        self._ranges: dict[date, _Range] = {}

    async def on_quote(self, symbol: str, quote: Quote) -> None:
        price = quote.mark
        if price is None:
            return
        now = self.desk.now()
        today = now.astimezone(MARKET_TZ).date()
        opened = session_open(today)
        day = self._ranges.setdefault(today, _Range(price, price, complete=now <= opened + self.range / 2))
        if now < opened + self.range:
            day.high, day.low = max(day.high, price), min(day.low, price)
            return
        # What already happened today comes from the positions' history, so a restart never re-enters.
        todays = [p for p in self.desk.positions_opened_on(today) if p.contract.underlying == self.underlying]
        if not todays:
            if day.complete and self.may_enter():
                await self._enter(day, today, price)
        elif todays[-1].is_open and day.breakout is not None:
            await self._add_on_extension(todays[-1], day.breakout, price)

    async def _enter(self, day: _Range, today: date, price: Decimal) -> None:
        if price > day.high:
            right = Right.CALL
        elif price < day.low:
            right = Right.PUT
        else:
            return
        if await self.desk.open(await self.contract_to_open(price, right, today), self.contracts) is not None:
            day.breakout = price
        else:
            day.complete = False  # refused (no quote, limits): no second try on a stale breakout

    async def _add_on_extension(self, position: Position, breakout: Decimal, price: Decimal) -> None:
        if any(action.kind is ActionKind.ADD for action in position.actions):
            return
        extension = breakout * self.add_on_extension
        call = position.contract.right is Right.CALL
        if price >= breakout + extension if call else price <= breakout - extension:
            await self.add(position, max(1, self.contracts // 2))
