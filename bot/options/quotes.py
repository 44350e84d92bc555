"""Quotes and the latest-quote cache that executors, strategies and the watcher read."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from bot.options.orders import Side

_TWO = Decimal(2)

# Which quote fields a fill takes its price from, in order of preference: the paper executor fills at it, and risk
# prices a buy with it. No mid: it needs both a bid and an ask, and whichever side a fill looks at first is one of
# them, so a mid could never be reached.
PRICE_FALLBACKS: dict[Side, tuple[str, ...]] = {
    Side.BUY: ("ask", "last", "bid"),
    Side.SELL: ("bid", "last", "ask"),
}

QuoteListener = Callable[[str, "Quote"], None]


def _usable(price: Decimal | None) -> Decimal | None:
    return price if price is not None and price > 0 else None


@dataclass(frozen=True, slots=True)
class Quote:
    """A quote for a contract or an underlying; any of bid, ask and last may be missing (None) or zero."""

    bid: Decimal | None = None
    ask: Decimal | None = None
    last: Decimal | None = None
    bid_size: int | None = None
    ask_size: int | None = None
    ts: datetime | None = None

    @property
    def mid(self) -> Decimal | None:
        bid, ask = _usable(self.bid), _usable(self.ask)
        if bid is None or ask is None:
            return None
        return (bid + ask) / _TWO

    @property
    def mark(self) -> Decimal | None:
        """The price a position is valued at: the mid when both sides exist, else the last trade."""
        # Inlined (not self.mid): the watcher asks this for every quote of every watched contract.
        bid, ask = self.bid, self.ask
        if bid is not None and ask is not None and bid > 0 and ask > 0:
            return (bid + ask) / _TWO
        last = self.last
        return last if last is not None and last > 0 else None

    @property
    def crossed(self) -> bool:
        bid, ask = _usable(self.bid), _usable(self.ask)
        return bid is not None and ask is not None and bid > ask

    def first_usable(self, *fields: str) -> tuple[str, Decimal] | None:
        """The first of the named prices that is present and positive, with its name."""
        for name in fields:
            price = _usable(getattr(self, name))
            if price is not None:
                return name, price
        return None


class QuoteCache:
    """The latest quote per symbol (OCC symbol for contracts, ticker for underlyings).

    Feeds call `update`; listeners (the position watcher, strategies) are called synchronously with each
    new quote, so they must be quick.
    """

    def __init__(self, max_age: timedelta | None = None) -> None:
        self._quotes: dict[str, Quote] = {}
        self._listeners: list[QuoteListener] = []
        self.max_age = max_age

    def subscribe(self, listener: QuoteListener) -> None:
        self._listeners.append(listener)

    def update(self, symbol: str, quote: Quote) -> None:
        self._quotes[symbol] = quote
        for listener in self._listeners:
            listener(symbol, quote)

    def get(self, symbol: str) -> Quote | None:
        return self._quotes.get(symbol)

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._quotes

    def problem(self, symbol: str, now: datetime) -> str | None:
        """Why the quote for `symbol` must not be traded on (crossed or stale), or None if it is fine."""
        quote = self._quotes.get(symbol)
        if quote is None:
            return None
        if quote.crossed:
            return f"the quote is crossed (bid {quote.bid} above ask {quote.ask})"
        if self.max_age is not None and quote.ts is not None and now - quote.ts > self.max_age:
            return f"the quote is stale (no update for {int((now - quote.ts).total_seconds())} s)"
        return None
