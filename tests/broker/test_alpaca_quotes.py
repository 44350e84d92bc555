"""The Alpaca option quote feed through the real OptionDataStream against the fake: it quotes exactly the
contracts of open positions and of strategies, resubscribes after a reconnect, and fills the quote cache
with Decimal prices and UTC times."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from bot.broker.alpaca import Alpaca
from bot.broker.alpaca_quotes import AlpacaQuoteFeed
from bot.options.quotes import QuoteCache
from tests.broker.conftest import NOW, broker_settings, fast, until
from tests.broker.fake_alpaca import FakeAlpaca

CALL, PUT = "SPY   261127C00450000", "QQQ   261127P00400000"


@pytest.fixture
async def running(fake: FakeAlpaca) -> AsyncIterator[tuple[AlpacaQuoteFeed, QuoteCache]]:
    feed = AlpacaQuoteFeed(fast(Alpaca(broker_settings(fake)).option_stream()))
    cache = QuoteCache()
    task = asyncio.create_task(feed.run(cache))
    yield feed, cache
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_quotes_reach_the_cache_as_decimals_in_utc(
    fake: FakeAlpaca, running: tuple[AlpacaQuoteFeed, QuoteCache]
) -> None:
    feed, cache = running
    feed.subscribe([CALL, "SPY"])  # an underlying is not an option: not asked of the option stream
    await until(lambda: fake.option_subscriptions == {"SPY261127C00450000"})
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
    await until(lambda: fake.option_subscriptions == {"SPY261127C00450000", "QQQ261127P00400000"})
    feed.hold([])  # ... and closed
    await until(lambda: fake.option_subscriptions == {"SPY261127C00450000"})
    feed.hold([CALL])  # a position on the strategy's contract: still one subscription
    await asyncio.sleep(0.05)
    assert fake.option_subscriptions == {"SPY261127C00450000"}


async def test_a_reconnect_resubscribes_and_quotes_flow_again(
    fake: FakeAlpaca, running: tuple[AlpacaQuoteFeed, QuoteCache]
) -> None:
    feed, cache = running
    feed.hold([CALL, PUT])
    await until(lambda: len(fake.option_subscriptions) == 2)
    fake.option_subscriptions = set()
    fake.drop_option_stream()
    await until(lambda: fake.option_connects == 2 and len(fake.option_subscriptions) == 2)
    later = datetime(2026, 11, 25, 15, 5, tzinfo=UTC)
    fake.quote("QQQ261127P00400000", 2.0, 2.1, later)
    await until(lambda: PUT in cache)
    assert cache.get(PUT).ts == later  # type: ignore[union-attr]
