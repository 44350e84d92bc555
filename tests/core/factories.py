"""Small builders shared by the core tests."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

from bot.options.quotes import Quote

T0 = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


def quote(bid: str | None = None, ask: str | None = None, last: str | None = None, size: int | None = None) -> Quote:
    def dec(value: str | None) -> Decimal | None:
        return None if value is None else Decimal(value)

    return Quote(bid=dec(bid), ask=dec(ask), last=dec(last), bid_size=size, ask_size=size, ts=T0)


class QuietFeed:
    """A feed that quotes nothing (the test sets the quotes itself): a desk's feed where none is wanted."""

    def subscribe(self, symbols: object) -> None:
        pass

    async def run(self, cache: object) -> None:
        await asyncio.Event().wait()
