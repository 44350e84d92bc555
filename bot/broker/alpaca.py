"""Connections to Alpaca built from the settings, with the credentials read from the environment."""

from __future__ import annotations

import asyncio
import functools
import os

from alpaca.common.rest import RESTClient
from alpaca.data.enums import DataFeed, OptionsFeed
from alpaca.data.historical.option import OptionHistoricalDataClient
from alpaca.data.live.option import OptionDataStream
from alpaca.data.live.stock import StockDataStream
from alpaca.data.live.websocket import DataStream
from alpaca.trading.client import TradingClient
from alpaca.trading.stream import TradingStream
from pydantic import SecretStr

from bot.broker.config import BrokerSettings
from bot.settings import Settings, SettingsError

# Alpaca's own names for them, as its other tools read them too.
KEY_ID_VAR = "APCA_API_KEY_ID"
SECRET_VAR = "APCA_API_SECRET_KEY"


def credentials(needed_by: str = "bad setting executor: a broker executor") -> tuple[SecretStr, SecretStr]:
    """The Alpaca key id and secret, from the environment only (never from a file, never logged)."""
    key_id, secret = (os.environ.get(name, "").strip() for name in (KEY_ID_VAR, SECRET_VAR))
    if not key_id or not secret:
        raise SettingsError(f"{needed_by} needs {KEY_ID_VAR} and {SECRET_VAR} set")
    return SecretStr(key_id), SecretStr(secret)


def with_timeout(client: RESTClient, seconds: float) -> None:
    """Give every request of `client` a timeout: the SDK sets none, and a broker that stops answering would hold a
    thread for ever."""
    session = client._session
    session.request = functools.partial(session.request, timeout=seconds)  # type: ignore[method-assign]


class Alpaca:
    """The Alpaca endpoints for one account: paper unless `executor` is `alpaca-live`."""

    def __init__(self, settings: Settings) -> None:
        if settings.executor == "paper":
            raise SettingsError("bad setting executor: this needs a broker (alpaca-paper or alpaca-live), not paper")
        self.config: BrokerSettings = settings.broker
        self.paper = settings.executor != "alpaca-live"
        self._key_id, self._secret = credentials()

    def trading_client(self) -> TradingClient:
        client = TradingClient(
            self._key_id.get_secret_value(),
            self._secret.get_secret_value(),
            paper=self.paper,
            url_override=self.config.trading_url,
        )
        with_timeout(client, self.config.request_timeout_seconds)
        return client

    def option_data_client(self) -> OptionHistoricalDataClient:
        """The option data API: chains with their latest quotes and greeks."""
        key_id, secret = self._key_id.get_secret_value(), self._secret.get_secret_value()
        client = OptionHistoricalDataClient(key_id, secret, url_override=self.config.data_url)
        with_timeout(client, self.config.request_timeout_seconds)
        return client

    def trade_stream(self) -> TradingStream:
        return TradingStream(
            self._key_id.get_secret_value(),
            self._secret.get_secret_value(),
            paper=self.paper,
            url_override=self.config.trade_stream_url,  # type: ignore[arg-type]  # None: Alpaca's own
        )

    def option_stream(self) -> OptionDataStream:
        return OptionDataStream(
            self._key_id.get_secret_value(),
            self._secret.get_secret_value(),
            feed=OptionsFeed(self.config.option_feed),
            url_override=self.config.option_stream_url,
        )

    def stock_stream(self) -> StockDataStream:
        return StockDataStream(
            self._key_id.get_secret_value(),
            self._secret.get_secret_value(),
            feed=DataFeed(self.config.stock_feed),
            url_override=self.config.stock_stream_url,
        )


async def stop_stream(stream: TradingStream | DataStream, running: asyncio.Task[None]) -> None:
    """End a stream's loop (`running`) for good. A cancel alone can be lost: the SDK waits for each message with
    `asyncio.wait_for`, which in Python 3.11 swallows a cancel that comes as a message arrives; the stop flag
    and the closed socket end the loop at its next turn regardless."""
    await stream.stop_ws()
    await stream.close()
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
