"""The market-data feed protocol: simulated, replayed and (later) broker feeds all push into a QuoteCache."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from bot.options.quotes import QuoteCache


class QuoteFeed(Protocol):
    def subscribe(self, symbols: Iterable[str]) -> None:
        """Also quote these symbols (contracts of open positions and of strategies, or underlyings)."""
        ...

    async def run(self, cache: QuoteCache) -> None:
        """Push quotes into `cache` until cancelled (or, for a finite replay, until the data ends)."""
        ...
