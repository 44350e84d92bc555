"""Mean reversion: buy calls when the underlying is stretched far below its recent mean, puts far above.

One position at a time; adds once when the stretch deepens; exits by the shared rules.
"""

from __future__ import annotations

import math
from collections import deque
from datetime import datetime, time, timedelta
from typing import Protocol

from bot.options.contracts import Right
from bot.options.market_hours import MARKET_TZ
from bot.options.positions import ActionKind
from bot.options.quotes import Quote
from bot.strategies.base import UnderlyingConfig, UnderlyingStrategy


class MeanReversionConfig(UnderlyingConfig, Protocol):
    @property
    def lookback_minutes(self) -> int: ...
    @property
    def entry_z(self) -> float: ...
    @property
    def add_z(self) -> float: ...


class MeanReversion(UnderlyingStrategy):
    def __init__(self, config: MeanReversionConfig) -> None:
        super().__init__(config)
        self.lookback = timedelta(minutes=config.lookback_minutes)
        self.entry_z = config.entry_z
        self.add_z = config.add_z
        # The window: its quotes' times and prices side by side, so that the sums take the prices as they are.
        self._times: deque[datetime] = deque()
        self._values: deque[float] = deque()
        self._day = (datetime.max.replace(tzinfo=MARKET_TZ), datetime.min.replace(tzinfo=MARKET_TZ))

    def _z_score(self, now: datetime, price: float) -> float | None:
        times, values = self._times, self._values
        if not self._day[0] <= now < self._day[1]:
            # A new session: yesterday's range says little about today's. (The day's bounds, not each quote's date
            # in New York: two conversions a quote were a tenth of the strategy's time.)
            times.clear()
            values.clear()
            start = datetime.combine(now.astimezone(MARKET_TZ).date(), time(0), MARKET_TZ)
            self._day = (start, datetime.combine(start.date() + timedelta(days=1), time(0), MARKET_TZ))
        times.append(now)
        values.append(price)
        while times[0] < now - self.lookback:
            times.popleft()
            values.popleft()
        if now - times[0] < self.lookback * 0.9:
            return None  # not enough history yet
        mean = math.fsum(values) / len(values)
        # Not statistics.pstdev: its exact fractions cost a third of a millisecond a tick, the largest part of a
        # backtest's time; summed with fsum the spread is within an ulp or two of the exact one.
        spread = math.sqrt(math.fsum([(value - mean) ** 2 for value in values]) / len(values))
        return (price - mean) / spread if spread else None

    def _cooling_down(self, now: datetime) -> bool:
        """After a close, wait one lookback before entering again: the stretch that failed is still in the window."""
        today = now.astimezone(MARKET_TZ).date()
        closes = [p.closed_at for p in self.desk.positions_opened_on(today) if p.closed_at]
        return bool(closes) and now - max(closes) < self.lookback

    async def on_quote(self, symbol: str, quote: Quote) -> None:
        price = quote.mark
        if price is None:
            return
        now = self.desk.now()
        z = self._z_score(now, float(price))
        if z is None:
            return
        open_positions = self.open_positions()
        if not open_positions:
            if abs(z) >= self.entry_z and self.may_enter() and not self._cooling_down(now):
                right = Right.CALL if z < 0 else Right.PUT
                today = now.astimezone(MARKET_TZ).date()
                await self.desk.open(await self.contract_to_open(price, right, today), self.contracts)
            return
        position = open_positions[-1]
        stretched = z <= -self.add_z if position.contract.right is Right.CALL else z >= self.add_z
        # Adds once per position, judged from its history so that a restart never adds twice.
        if stretched and not any(action.kind is ActionKind.ADD for action in position.actions):
            await self.add(position, max(1, self.contracts // 2))
