"""Quotes and the latest-quote cache that executors and the watcher read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

_TWO = Decimal(2)


def _usable(price: Decimal | None) -> Decimal | None:
    return price if price is not None and price > 0 else None


@dataclass(frozen=True, slots=True)
class Quote:
    """A contract's quote; any of bid, ask and last may be missing (None) or zero (no market)."""

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
        return self.mid or _usable(self.last)

    def first_usable(self, *fields: str) -> tuple[str, Decimal] | None:
        """The first of the named prices that is present and positive, with its name."""
        for name in fields:
            price = _usable(getattr(self, name))
            if price is not None:
                return name, price
        return None


class QuoteCache:
    """The latest quote per contract, keyed by OCC symbol."""

    def __init__(self) -> None:
        self._quotes: dict[str, Quote] = {}

    def update(self, symbol: str, quote: Quote) -> None:
        self._quotes[symbol] = quote

    def get(self, symbol: str) -> Quote | None:
        return self._quotes.get(symbol)

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._quotes
