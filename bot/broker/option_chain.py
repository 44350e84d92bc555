"""`AlpacaChain`: the option chain at Alpaca for a broker desk. Which contracts exist, with their open interest, comes
from the trading API's option contracts; their latest quotes and delta from the option data API's chain snapshots.

The SDK's calls block, so each runs in a thread. Expiries are read once a day per underlying, and the contracts listed
for an expiry at most every few minutes (autocomplete asks at every keystroke, and Discord gives it 3 s); a chain's
quotes are read each time it is asked for (a trader looks at the market as it is).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from alpaca.common.exceptions import APIError
from alpaca.data.enums import OptionsFeed
from alpaca.data.historical.option import OptionHistoricalDataClient
from alpaca.data.models import OptionsSnapshot
from alpaca.data.requests import OptionChainRequest
from alpaca.trading.client import TradingClient
from alpaca.trading.models import OptionContract as AlpacaContract
from alpaca.trading.models import OptionContractsResponse
from alpaca.trading.requests import GetOptionContractsRequest
from requests import RequestException

from bot.options.chain import WIDTH, Chain, ChainRow, not_listed, parity_centre, strikes_around, unknown_underlying
from bot.options.contracts import OptionContract
from bot.options.errors import TradeError
from bot.options.quotes import QuoteCache

log = logging.getLogger(__name__)

HORIZON = timedelta(days=70)  # expiries listed this far ahead
_PAGE = 10_000  # Alpaca's largest page of option contracts
_MARGIN = Decimal("0.25")  # the strikes read around the money: a quarter of the underlying's price either way
_LISTED_FOR = 300.0  # seconds an expiry's listed contracts are reused (strikes are rarely added during a day)


class AlpacaChain:
    def __init__(
        self,
        trading: TradingClient,
        data: OptionHistoricalDataClient,
        quotes: QuoteCache,
        underlyings: Callable[[], list[str]],
        feed: str = "indicative",
    ) -> None:
        self._trading = trading
        self._data = data
        self._quotes = quotes
        self._underlyings = underlyings
        self._feed = OptionsFeed(feed)
        self._expiries: dict[tuple[str, date], list[date]] = {}
        self._listed: dict[tuple[str, date], tuple[float, list[AlpacaContract]]] = {}

    def underlyings(self) -> list[str]:
        return self._underlyings()

    def _known(self, underlying: str) -> str:
        symbol = underlying.strip().upper()
        if symbol not in self.underlyings():
            raise unknown_underlying(underlying, self.underlyings())
        return symbol

    async def expiries(self, underlying: str, today: date) -> list[date]:
        symbol = self._known(underlying)
        found = self._expiries.get((symbol, today))
        if found is None:
            listed = await self._contracts(symbol, expiration_date_gte=today, expiration_date_lte=today + HORIZON)
            found = sorted({c.expiration_date for c in listed})
            self._expiries = {k: v for k, v in self._expiries.items() if k[1] == today}  # yesterday's are gone
            self._expiries[symbol, today] = found
        return found

    async def chain(self, underlying: str, expiry: date, *, around: Decimal | None = None, width: int = WIDTH) -> Chain:
        symbol = self._known(underlying)
        spot_quote = self._quotes.get(symbol)
        spot = around if around is not None else spot_quote.mark if spot_quote is not None else None
        window: dict[str, Any] = {}
        if spot is not None:
            window = {"strike_price_gte": str(spot * (1 - _MARGIN)), "strike_price_lte": str(spot * (1 + _MARGIN))}
        listed = await self._listed_on(symbol, expiry)
        if spot is not None:
            low, high = spot * (1 - _MARGIN), spot * (1 + _MARGIN)
            listed = [c for c in listed if low <= Decimal(str(c.strike_price)) <= high]
        if not listed:
            raise not_listed(symbol, expiry)
        snapshots = await self._snapshots(symbol, expiry, window)
        rows = [_row(c, snapshots.get(c.symbol)) for c in listed if c.tradable]
        centre = spot if spot is not None else parity_centre(rows)
        if centre is None:
            kept = sorted({r.contract.strike for r in rows})[: 2 * width + 1]
        else:
            kept = strikes_around((r.contract.strike for r in rows), centre, width)
        shown = tuple(sorted((r for r in rows if r.contract.strike in kept), key=lambda r: r.contract.symbol))
        return Chain(symbol, expiry, centre, shown)

    async def _listed_on(self, symbol: str, expiry: date) -> list[AlpacaContract]:
        read_at, listed = self._listed.get((symbol, expiry), (-_LISTED_FOR, []))
        if time.monotonic() - read_at >= _LISTED_FOR:
            listed = await self._contracts(symbol, expiration_date=expiry)
            self._listed[symbol, expiry] = (time.monotonic(), listed)
        return listed

    async def _contracts(self, underlying: str, **filters: Any) -> list[AlpacaContract]:
        request = GetOptionContractsRequest(underlying_symbols=[underlying], limit=_PAGE, **filters)
        contracts: list[AlpacaContract] = []
        while True:
            page = await self._ask(self._trading.get_option_contracts, request)
            assert isinstance(page, OptionContractsResponse)
            contracts += page.option_contracts or []
            if not page.next_page_token:
                return contracts
            request = request.model_copy(update={"page_token": page.next_page_token})

    async def _snapshots(self, underlying: str, expiry: date, window: dict[str, Any]) -> dict[str, OptionsSnapshot]:
        strikes = {k: float(v) for k, v in window.items()}
        request = OptionChainRequest(underlying_symbol=underlying, feed=self._feed, expiration_date=expiry, **strikes)
        found = await self._ask(self._data.get_option_chain, request)
        assert isinstance(found, dict)
        return found

    @staticmethod
    async def _ask(call: Callable[[Any], Any], request: Any) -> Any:
        try:
            return await asyncio.to_thread(call, request)
        except (APIError, RequestException) as error:
            why = f"status {error.status_code}" if isinstance(error, APIError) else type(error).__name__
            log.warning("broker: the option chain could not be read from Alpaca (%s)", why)
            raise TradeError(f"Alpaca's option chain could not be read ({why}); try again in a moment.") from None


def _row(listed: AlpacaContract, snapshot: OptionsSnapshot | None) -> ChainRow:
    contract = OptionContract.parse(listed.symbol)
    quote = snapshot.latest_quote if snapshot is not None else None
    greeks = snapshot.greeks if snapshot is not None else None
    return ChainRow(
        contract,
        _price(quote.bid_price) if quote is not None else None,
        _price(quote.ask_price) if quote is not None else None,
        greeks.delta if greeks is not None else None,
        _count(listed.open_interest),
    )


def _price(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _count(value: str | None) -> int | None:
    try:
        return None if value is None else int(Decimal(value))
    except (InvalidOperation, ValueError):
        return None
