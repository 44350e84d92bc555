"""The real alpaca-py client against a local fake Alpaca (tests/broker/fake_alpaca.py) on 127.0.0.1.

Nothing may leave the machine: host names other than loopback do not resolve, and proxies are bypassed.
"""

from __future__ import annotations

import asyncio
import io
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.broker.alpaca import Alpaca
from bot.broker.alpaca_executor import AlpacaExecutor
from bot.broker.config import BrokerSettings
from bot.broker.link import BrokerLink
from bot.options.order_manager import OptionsOrderManager
from bot.options.trade_ledger import TradeLedger
from bot.paths import ledger_path
from bot.runtime.desk import Desk, open_desk
from bot.runtime.message_board import ConsoleBoard
from bot.settings import Settings
from tests.broker.fake_alpaca import FakeAlpaca

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)  # a Wednesday, 10:00 in New York
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.getaddrinfo

    def loopback_only(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in _LOOPBACK:
            raise OSError(f"tests/broker: no network beyond this machine (asked for {host!r})")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", loopback_only)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("APCA_API_KEY_ID", "test-key-id")
    monkeypatch.setenv("APCA_API_SECRET_KEY", "test-secret-never-shown")


async def until(condition: Callable[[], object], within: float = 3.0) -> None:
    """For what happens across the fake's thread: poll on the loop's clock."""
    for _ in range(round(within / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    assert condition(), f"not within {within} s"


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake(clock: Clock) -> Iterator[FakeAlpaca]:
    fake = FakeAlpaca(clock)
    fake.start()
    yield fake
    fake.stop()


def broker_settings(fake: FakeAlpaca, **changes: Any) -> Settings:
    config = {
        "trading_url": fake.url,
        "trade_stream_url": f"ws://127.0.0.1:{fake.port}/stream",
        "option_stream_url": f"ws://127.0.0.1:{fake.port}/v1beta1/indicative",
        "stock_stream_url": f"ws://127.0.0.1:{fake.port}/v2/iex",
        "poll_interval_seconds": 0.05,
        "order_timeout_seconds": 2.0,
        **changes,
    }
    return Settings(executor="alpaca-paper", broker=BrokerSettings(**config), strategies=[])


def fast(client: Any) -> Any:
    """No real waiting in the SDK: its REST retries and stream reconnects come at once."""
    if hasattr(client, "_retry_wait"):
        client._retry_wait = 0
    if hasattr(client, "_reconnect_min_backoff"):
        client._reconnect_min_backoff = client._reconnect_max_backoff = 0.01
    return client


def executor_for(settings: Settings, *, stream: bool = True) -> AlpacaExecutor:
    alpaca = Alpaca(settings)
    return AlpacaExecutor(
        fast(alpaca.trading_client()),
        fast(alpaca.trade_stream()) if stream else None,
        poll_interval=settings.broker.poll_interval_seconds,
        order_timeout=settings.broker.order_timeout_seconds,
        fee_per_contract=settings.broker.fee_per_contract,
    )


@pytest.fixture
def storage(tmp_path: Path) -> Path:
    return tmp_path / "storage"


@pytest.fixture
def ledger(storage: Path) -> Iterator[TradeLedger]:
    ledger = TradeLedger.open(ledger_path(storage))
    yield ledger
    ledger.close()


@pytest.fixture
async def executor(fake: FakeAlpaca) -> AsyncIterator[AlpacaExecutor]:
    executor = executor_for(broker_settings(fake))
    task = asyncio.create_task(executor.run())
    yield executor
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


@pytest.fixture
def manager(executor: AlpacaExecutor, ledger: TradeLedger, clock: Clock) -> OptionsOrderManager:
    return OptionsOrderManager(executor, ledger, clock=clock)


@asynccontextmanager
async def broker_desk(
    fake: FakeAlpaca, storage: Path, clock: Clock, settings: Settings | None = None
) -> AsyncIterator[Desk]:
    """The desk as the bot builds it with a broker (the fake)."""
    settings = settings or broker_settings(fake)
    link = BrokerLink(settings, storage, clock=clock)
    fast(link.client)
    desk = await open_desk(
        settings, storage, clock=clock, feed=link.feed, board=ConsoleBoard(io.StringIO()), broker=link
    )
    try:
        yield desk
    finally:
        await desk.close()
