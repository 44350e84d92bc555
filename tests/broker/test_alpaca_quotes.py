"""The Alpaca quote feed through the real OptionDataStream and StockDataStream against the fake: it quotes
exactly the contracts of open positions and of strategies and the underlyings asked for, resubscribes after a
reconnect, and fills the quote cache with Decimal prices and UTC times."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from bot.broker.alpaca import Alpaca
from bot.broker.alpaca_quotes import AlpacaQuoteFeed
from bot.options.quotes import QuoteCache
from bot.settings import Settings
from tests.broker.conftest import NOW, Clock, broker_desk, broker_settings, fast, until
from tests.broker.fake_alpaca import FakeAlpaca

CALL, PUT = "SPY   261127C00450000", "QQQ   261127P00400000"


@pytest.fixture
async def running(fake: FakeAlpaca) -> AsyncIterator[tuple[AlpacaQuoteFeed, QuoteCache]]:
    alpaca = Alpaca(broker_settings(fake))
    feed = AlpacaQuoteFeed(fast(alpaca.option_stream()), fast(alpaca.stock_stream()))
    cache = QuoteCache()
    task = asyncio.create_task(feed.run(cache))
    yield feed, cache
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_quotes_reach_the_cache_as_decimals_in_utc(
    fake: FakeAlpaca, running: tuple[AlpacaQuoteFeed, QuoteCache]
) -> None:
    feed, cache = running
    feed.subscribe([CALL, "SPY"])  # each to the stream that quotes it
    await until(lambda: fake.options.subscriptions == {"SPY261127C00450000"} and fake.stocks.subscriptions == {"SPY"})
    fake.quote("SPY261127C00450000", 1.1, 1.2, NOW.astimezone(timezone(timedelta(hours=-5))))
    await until(lambda: CALL in cache)
    quote = cache.get(CALL)
    assert quote is not None
    assert (quote.bid, quote.ask, quote.bid_size, quote.ask_size) == (Decimal("1.1"), Decimal("1.2"), 10, 12)
    assert quote.ts == NOW and quote.ts.tzinfo is UTC


async def test_subscriptions_follow_open_positions_and_strategies(
    fake: FakeAlpaca, running: tuple[AlpacaQuoteFeed, QuoteCache]
) -> None:
    feed, _ = running
    feed.subscribe([CALL])  # a strategy's contract
    feed.hold([PUT])  # a position opened
    await until(lambda: fake.options.subscriptions == {"SPY261127C00450000", "QQQ261127P00400000"})
    feed.hold([])  # ... and closed
    await until(lambda: fake.options.subscriptions == {"SPY261127C00450000"})
    feed.hold([CALL])  # a position on the strategy's contract: still one subscription
    await asyncio.sleep(0.05)
    assert fake.options.subscriptions == {"SPY261127C00450000"}


async def test_a_reconnect_resubscribes_and_quotes_flow_again(
    fake: FakeAlpaca, running: tuple[AlpacaQuoteFeed, QuoteCache]
) -> None:
    feed, cache = running
    feed.hold([CALL, PUT])
    await until(lambda: len(fake.options.subscriptions) == 2)
    fake.options.subscriptions = set()
    fake.drop_data_stream(fake.options)
    await until(lambda: fake.options.connects == 2 and len(fake.options.subscriptions) == 2)
    later = datetime(2026, 11, 25, 15, 5, tzinfo=UTC)
    fake.quote("QQQ261127P00400000", 2.0, 2.1, later)
    await until(lambda: PUT in cache)
    assert cache.get(PUT).ts == later  # type: ignore[union-attr]


async def test_underlyings_come_from_the_stock_stream_as_decimals_in_utc(
    fake: FakeAlpaca, running: tuple[AlpacaQuoteFeed, QuoteCache]
) -> None:
    feed, cache = running
    feed.subscribe(["spy", "QQQ", "QQQ", "not a ticker"])
    await until(lambda: fake.stocks.subscriptions == {"SPY", "QQQ"})
    assert fake.options.subscriptions == set()
    fake.quote("SPY", 450.01, 450.03, NOW.astimezone(timezone(timedelta(hours=-5))), feed=fake.stocks)
    await until(lambda: "SPY" in cache)
    quote = cache.get("SPY")
    assert quote is not None
    assert (quote.bid, quote.ask) == (Decimal("450.01"), Decimal("450.03"))
    assert quote.ts == NOW and quote.ts.tzinfo is UTC


async def test_a_dropped_stock_stream_resubscribes_the_underlyings(
    fake: FakeAlpaca, running: tuple[AlpacaQuoteFeed, QuoteCache]
) -> None:
    feed, cache = running
    feed.subscribe(["SPY", "QQQ"])
    await until(lambda: fake.stocks.subscriptions == {"SPY", "QQQ"})
    fake.stocks.subscriptions = set()
    fake.drop_data_stream(fake.stocks)
    await until(lambda: fake.stocks.connects == 2 and fake.stocks.subscriptions == {"SPY", "QQQ"})
    later = datetime(2026, 11, 25, 15, 5, tzinfo=UTC)
    fake.quote("QQQ", 400.0, 400.1, later, feed=fake.stocks)
    await until(lambda: "QQQ" in cache)
    assert cache.get("QQQ").ts == later  # type: ignore[union-attr]


async def test_a_broker_desk_quotes_its_strategies_underlyings_and_they_reach_the_strategies(
    fake: FakeAlpaca, storage: Path, clock: Clock
) -> None:
    settings = Settings(executor="alpaca-paper", broker=broker_settings(fake).broker)  # spy-orb, qqq-meanrev
    async with broker_desk(fake, storage, clock, settings) as desk:
        assert desk.broker is not None
        feed = asyncio.create_task(desk.workers()["feed"]())
        try:
            await until(lambda: fake.stocks.subscriptions == {"SPY", "QQQ"})
            assert desk.runner.pending() == 0
            fake.quote("SPY", 450.01, 450.03, NOW, feed=fake.stocks)
            await until(lambda: desk.runner.pending() == 1)
            assert desk.quotes.get("SPY").bid == Decimal("450.01")  # type: ignore[union-attr]
        finally:
            feed.cancel()
            await asyncio.gather(feed, return_exceptions=True)
