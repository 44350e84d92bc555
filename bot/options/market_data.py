"""The market-data feed protocol: simulated, replayed and (later) broker feeds all push into a QuoteCache."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Protocol, runtime_checkable

from bot.options.quotes import QuoteCache


class QuoteFeed(Protocol):
    def subscribe(self, symbols: Iterable[str]) -> None:
        """Also quote these symbols (contracts of open positions and of strategies, or underlyings)."""
        ...

    async def run(self, cache: QuoteCache) -> None:
        """Push quotes into `cache` until cancelled (or, for a finite replay, until the data ends)."""
        ...


@runtime_checkable
class PriceHistory(Protocol):
    """A feed that can tell an underlying's price at any past moment (the simulated market, a pure function of
    time): what an expiry settles on when no quote before the close reached this run."""

    def spot_at(self, underlying: str, at: datetime) -> Decimal | None: ...
