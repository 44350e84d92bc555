"""Live option quotes from Alpaca's option data stream, for exactly the contracts the desk needs.

Those are the contracts of open positions (`hold`, told after every fill) and the ones strategies asked
for (`subscribe`). The SDK resubscribes the whole set when it reconnects. Underlyings are not option
symbols: this feed does not quote them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import UTC
from decimal import Decimal

from alpaca.data.live.option import OptionDataStream
from alpaca.data.models import Quote as AlpacaQuote

from bot.broker.alpaca_fills import ledger_symbol
from bot.options.contracts import OptionContract
from bot.options.errors import TradeError
from bot.options.quotes import Quote, QuoteCache

log = logging.getLogger(__name__)


def _compact(symbol: str) -> str | None:
    try:
        return OptionContract.parse(symbol).compact
    except TradeError:
        return None


class AlpacaQuoteFeed:
    def __init__(self, stream: OptionDataStream) -> None:
        self._stream = stream
        self._asked: set[str] = set()  # compact OCC symbols strategies asked for
        self._held: set[str] = set()  # compact OCC symbols of open positions
        self._subscribed: set[str] = set()
        self._changed = asyncio.Event()
        self._cache: QuoteCache | None = None

    @property
    def wanted(self) -> set[str]:
        return self._asked | self._held

    def subscribe(self, symbols: Iterable[str]) -> None:
        for symbol in symbols:
            compact = _compact(symbol)
            if compact is None:
                log.debug("the option data stream does not quote %s (not an option)", symbol)
            elif compact not in self._asked:
                self._asked.add(compact)
                self._changed.set()

    def hold(self, symbols: Iterable[str]) -> None:
        """The contracts of the open positions, now: a closed position's contract is dropped unless asked for."""
        held = {c for c in map(_compact, symbols) if c is not None}
        if held != self._held:
            self._held = held
            self._changed.set()

    async def run(self, cache: QuoteCache) -> None:
        self._cache = cache
        streaming: asyncio.Task[None] | None = None
        try:
            while True:
                self._changed.clear()
                await self._update_subscriptions()
                # The SDK's loop spins until it has a handler: start it only once there is something to quote.
                if streaming is None and self._subscribed:
                    streaming = asyncio.create_task(self._stream._run_forever(), name="alpaca option quotes")
                await self._changed.wait()
        finally:
            if streaming is not None:
                await self._stream.stop_ws()
                await self._stream.close()
                streaming.cancel()
                await asyncio.gather(streaming, return_exceptions=True)

    async def _update_subscriptions(self) -> None:
        wanted = self.wanted
        # In a thread: the SDK waits for its own loop (this one) to send the message.
        if added := sorted(wanted - self._subscribed):
            await asyncio.to_thread(self._stream.subscribe_quotes, self._on_quote, *added)
        if dropped := sorted(self._subscribed - wanted):
            await asyncio.to_thread(self._stream.unsubscribe_quotes, *dropped)
        self._subscribed = wanted
        if added or dropped:
            log.info("option quotes: %d contracts (+%d, -%d)", len(wanted), len(added), len(dropped))

    async def _on_quote(self, quote: AlpacaQuote | dict[str, object]) -> None:
        if self._cache is None or not isinstance(quote, AlpacaQuote):  # a dict only with raw_data=True
            return
        self._cache.update(
            ledger_symbol(quote.symbol),
            Quote(
                bid=Decimal(str(quote.bid_price)),
                ask=Decimal(str(quote.ask_price)),
                bid_size=int(quote.bid_size),
                ask_size=int(quote.ask_size),
                ts=quote.timestamp.astimezone(UTC),
            ),
        )
