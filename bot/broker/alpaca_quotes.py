"""Live quotes from Alpaca's data streams, for exactly the symbols the desk needs.

Option contracts come from the option data stream: those of open positions (`hold`, told after every fill)
and the ones strategies asked for. Underlyings come from the stock data stream: the tickers the strategies
watch. Both streams speak the same protocol, so one class drives either; the SDK resubscribes the whole set
when it reconnects.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable
from datetime import UTC
from decimal import Decimal

from alpaca.data.live.option import OptionDataStream
from alpaca.data.live.stock import StockDataStream
from alpaca.data.models import Quote as AlpacaQuote

from bot.broker.alpaca import stop_stream
from bot.broker.alpaca_fills import ledger_symbol
from bot.options.contracts import OptionContract
from bot.options.errors import TradeError
from bot.options.quotes import Quote, QuoteCache

log = logging.getLogger(__name__)

_TICKER = re.compile(r"[A-Z]{1,5}([./][A-Z]{1,2})?")  # SPY, BRK.B: what the stock stream quotes


class StreamQuotes:
    """The quotes of a changing set of symbols from one Alpaca data stream into the quote cache."""

    what = "symbols"  # for the log

    def __init__(self, stream: OptionDataStream | StockDataStream) -> None:
        self._stream = stream
        self._asked: set[str] = set()  # in the stream's spelling
        self._subscribed: set[str] = set()
        self._changed = asyncio.Event()
        self._cache: QuoteCache | None = None

    def stream_symbol(self, symbol: str) -> str | None:
        """The stream's spelling of `symbol`, or None if this stream does not quote it."""
        raise NotImplementedError

    def cache_symbol(self, symbol: str) -> str:
        """The cache's (and the ledger's) spelling of a symbol the stream quoted."""
        return symbol

    @property
    def wanted(self) -> set[str]:
        return set(self._asked)

    def subscribe(self, symbols: Iterable[str]) -> None:
        for symbol in symbols:
            spelled = self.stream_symbol(symbol)
            if spelled is not None and spelled not in self._asked:
                self._asked.add(spelled)
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
                    streaming = asyncio.create_task(self._stream._run_forever(), name=f"alpaca {self.what}")
                await self._changed.wait()
        finally:
            if streaming is not None:
                await stop_stream(self._stream, streaming)

    async def _update_subscriptions(self) -> None:
        wanted = self.wanted
        # In a thread: the SDK waits for its own loop (this one) to send the message.
        if added := sorted(wanted - self._subscribed):
            await asyncio.to_thread(self._stream.subscribe_quotes, self._on_quote, *added)
        if dropped := sorted(self._subscribed - wanted):
            await asyncio.to_thread(self._stream.unsubscribe_quotes, *dropped)
        self._subscribed = wanted
        if added or dropped:
            log.info("%s quoted: %d (+%d, -%d)", self.what, len(wanted), len(added), len(dropped))

    async def _on_quote(self, quote: AlpacaQuote | dict[str, object]) -> None:
        if self._cache is None or not isinstance(quote, AlpacaQuote):  # a dict only with raw_data=True
            return
        self._cache.update(
            self.cache_symbol(quote.symbol),
            Quote(
                bid=Decimal(str(quote.bid_price)),
                ask=Decimal(str(quote.ask_price)),
                bid_size=int(quote.bid_size),
                ask_size=int(quote.ask_size),
                ts=quote.timestamp.astimezone(UTC),
            ),
        )


class OptionQuotes(StreamQuotes):
    """Option contracts, by compact OCC symbol on the stream and padded in the cache."""

    what = "option contracts"

    def __init__(self, stream: OptionDataStream) -> None:
        super().__init__(stream)
        self._held: set[str] = set()  # compact OCC symbols of open positions

    def stream_symbol(self, symbol: str) -> str | None:
        try:
            return OptionContract.parse(symbol).compact
        except TradeError:
            return None

    def cache_symbol(self, symbol: str) -> str:
        return ledger_symbol(symbol)

    @property
    def wanted(self) -> set[str]:
        return self._asked | self._held

    def hold(self, symbols: Iterable[str]) -> None:
        """The contracts of the open positions, now: a closed position's contract is dropped unless asked for."""
        held = {c for c in map(self.stream_symbol, symbols) if c is not None}
        if held != self._held:
            self._held = held
            self._changed.set()


class StockQuotes(StreamQuotes):
    """Underlyings, by ticker."""

    what = "underlyings"

    def stream_symbol(self, symbol: str) -> str | None:
        ticker = symbol.strip().upper()
        return ticker if _TICKER.fullmatch(ticker) else None


class AlpacaQuoteFeed:
    """The desk's QuoteFeed over both streams: each symbol goes to the stream that quotes it."""

    def __init__(self, options: OptionDataStream, stocks: StockDataStream) -> None:
        self.options = OptionQuotes(options)
        self.stocks = StockQuotes(stocks)

    def subscribe(self, symbols: Iterable[str]) -> None:
        symbols = list(symbols)
        self.options.subscribe(symbols)
        self.stocks.subscribe(symbols)
        for symbol in symbols:
            if self.options.stream_symbol(symbol) is None and self.stocks.stream_symbol(symbol) is None:
                log.warning("Alpaca quotes neither options nor stocks named %r: not quoted", symbol)

    def hold(self, symbols: Iterable[str]) -> None:
        self.options.hold(symbols)

    async def run(self, cache: QuoteCache) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self.options.run(cache), name="alpaca option quotes")
            group.create_task(self.stocks.run(cache), name="alpaca underlying quotes")
