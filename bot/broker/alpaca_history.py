"""Minute bars from Alpaca's historical data API (alpaca-py's StockHistoricalDataClient and
OptionHistoricalDataClient), and each way a fetch can fail as one line saying what failed and what to do."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import Any

from alpaca.common.exceptions import APIError
from alpaca.data.enums import DataFeed
from alpaca.data.historical.option import OptionHistoricalDataClient
from alpaca.data.historical.stock import StockHistoricalDataClient
from alpaca.data.requests import OptionBarsRequest, StockBarsRequest
from alpaca.data.timeframe import TimeFrame
from requests import ConnectionError, RequestException, Timeout

from bot.broker.alpaca import credentials, with_timeout
from bot.broker.config import BrokerSettings
from bot.broker.history import Bar, parse_bars

DATA_URL = "https://data.alpaca.markets"  # the SDK's own, named in the line when it cannot be reached
_SYMBOLS_PER_REQUEST = 100  # Alpaca takes at most 100 option symbols in one request
RawBars = Mapping[str, Sequence[Mapping[str, Any]]]  # the SDK's raw_data answer: bars by symbol


class HistoryError(Exception):
    """A fetch that failed; the message is the one line shown."""


class AlpacaHistory:
    """Minute bars of an underlying and of option contracts, with the keys from the environment."""

    def __init__(self, config: BrokerSettings) -> None:
        key_id, secret = (s.get_secret_value() for s in credentials("python -m bot data alpaca"))
        self.config = config
        self.stocks = StockHistoricalDataClient(key_id, secret, raw_data=True, url_override=config.data_url)
        self.options = OptionHistoricalDataClient(key_id, secret, raw_data=True, url_override=config.data_url)
        for client in (self.stocks, self.options):
            with_timeout(client, config.request_timeout_seconds)

    def stock_bars(self, symbol: str, start: datetime, end: datetime) -> list[Bar]:
        request = StockBarsRequest(
            symbol_or_symbols=symbol,
            timeframe=TimeFrame.Minute,
            start=start,
            end=end,
            feed=DataFeed(self.config.stock_feed),
        )
        what = f"reading {symbol}'s minute bars ({self.config.stock_feed} feed)"
        raw = self._ask(partial(self.stocks.get_stock_bars, request), what)
        return parse_bars(raw).get(symbol, [])

    def option_bars(self, symbols: Sequence[str], start: datetime, end: datetime) -> dict[str, list[Bar]]:
        """Bars by compact OCC symbol; a contract that did not trade has none."""
        bars: dict[str, list[Bar]] = {}
        for at in range(0, len(symbols), _SYMBOLS_PER_REQUEST):
            chunk = list(symbols[at : at + _SYMBOLS_PER_REQUEST])
            request = OptionBarsRequest(symbol_or_symbols=chunk, timeframe=TimeFrame.Minute, start=start, end=end)
            what = f"reading the minute bars of {len(chunk)} option contracts ({chunk[0]}...)"
            bars |= parse_bars(self._ask(partial(self.options.get_option_bars, request), what))
        return bars

    def _ask(self, call: Callable[[], object], what: str) -> RawBars:
        try:
            raw = call()
        except APIError as error:
            raise HistoryError(api_error_line(error, what)) from None
        except Timeout:
            raise HistoryError(
                f"Alpaca did not answer within {self.config.request_timeout_seconds:g} s {what}; check the network, "
                "or raise [broker] request_timeout_seconds"
            ) from None
        except ConnectionError:
            raise HistoryError(
                f"cannot reach Alpaca's data API at {self.config.data_url or DATA_URL} {what}; check the network "
                "(or [broker] data_url)"
            ) from None
        except RequestException as error:
            raise HistoryError(f"Alpaca's answer {what} could not be read ({type(error).__name__})") from None
        if not isinstance(raw, dict):
            raise HistoryError(f"Alpaca's answer {what} could not be read (not bars by symbol)")
        return raw


def api_error_line(error: APIError, what: str) -> str:
    status = error.status_code
    if status in (401, 403):
        return (
            f"Alpaca refused the keys (HTTP {status}) {what}; check APCA_API_KEY_ID and APCA_API_SECRET_KEY, and that "
            "the account may read this data (the sip feed needs a market-data subscription)"
        )
    if status == 429:
        return f"Alpaca's rate limit (HTTP 429) held through the SDK's retries {what}; wait a minute and run again"
    if status is not None and status >= 500:
        return f"Alpaca's data API failed (HTTP {status}) {what}; try again later"
    return f"Alpaca refused the request (HTTP {status}: {_message(error)}) {what}"


def _message(error: APIError) -> str:
    try:
        return str(error.message)
    except (ValueError, KeyError, TypeError):
        return str(error)[:200]
