"""The option chain at Alpaca through alpaca-py, against the fake Alpaca: the listed expiries, the strikes around the
money with their quotes, delta and open interest; a chain Alpaca cannot give is one sentence."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from bot.broker.alpaca import Alpaca
from bot.broker.option_chain import AlpacaChain
from bot.options.contracts import Right
from bot.options.errors import TradeError
from bot.options.quotes import Quote, QuoteCache
from tests.broker.conftest import NOW, broker_settings, fast
from tests.broker.fake_alpaca import FakeAlpaca

FRIDAY, NEXT_FRIDAY = date(2026, 11, 27), date(2026, 12, 4)


def snapshot(bid: float, ask: float, delta: float) -> dict[str, Any]:
    quote = {"t": "2026-11-25T15:00:00Z", "bp": bid, "bs": 10, "ap": ask, "as": 12, "bx": "C", "ax": "C", "c": "A"}
    greeks = {"delta": delta, "gamma": 0.05, "rho": 0.01, "theta": -0.4, "vega": 0.2}
    return {"latestQuote": quote, "greeks": greeks, "impliedVolatility": 0.2}


@pytest.fixture
def chain(fake: FakeAlpaca) -> tuple[AlpacaChain, QuoteCache]:
    for expiry in ("261127", "261204"):
        for strike in range(590, 615, 5):
            for right in "CP":
                fake.list_contract(f"SPY{expiry}{right}{strike * 1000:08d}", open_interest=strike * 10)
    for strike in range(590, 615, 5):
        distance = (strike - 600) / 10
        call, put = 5 - distance, 5 + distance
        fake.snapshots[f"SPY261127C{strike * 1000:08d}"] = snapshot(call - 0.1, call + 0.1, 0.5 - distance / 5)
        fake.snapshots[f"SPY261127P{strike * 1000:08d}"] = snapshot(put - 0.1, put + 0.1, -0.5 - distance / 5)
    alpaca = Alpaca(broker_settings(fake, data_url=fake.url))
    quotes = QuoteCache()
    trading, data = fast(alpaca.trading_client()), fast(alpaca.option_data_client())
    return AlpacaChain(trading, data, quotes, lambda: ["SPY", "QQQ"]), quotes


async def test_expiries_are_the_listed_ones(chain: tuple[AlpacaChain, QuoteCache], fake: FakeAlpaca) -> None:
    source, _ = chain

    expiries = await source.expiries("spy", NOW.date())
    again = await source.expiries("SPY", NOW.date())

    assert expiries == again == [FRIDAY, NEXT_FRIDAY]
    assert len([r for r in fake.requests if r.startswith("GET /v2/options/contracts")]) == 1  # once a day


async def test_the_chain_around_the_underlyings_price(chain: tuple[AlpacaChain, QuoteCache]) -> None:
    source, quotes = chain
    quotes.update("SPY", Quote(bid=Decimal("601.10"), ask=Decimal("601.20"), last=Decimal("601.15"), ts=NOW))

    listed = await source.chain("SPY", FRIDAY, width=1)

    assert listed.centre == Decimal("601.15")
    assert listed.strikes == [Decimal(595), Decimal(600), Decimal(605)]
    call = listed.row(Decimal(600), Right.CALL)
    put = listed.row(Decimal(605), Right.PUT)
    assert call is not None and (call.bid, call.ask, call.delta, call.open_interest) == (
        Decimal("4.9"),
        Decimal("5.1"),
        0.5,
        6000,
    )
    assert put is not None and (put.bid, put.ask, put.open_interest) == (Decimal("5.4"), Decimal("5.6"), 6050)


async def test_keystrokes_read_an_expirys_listed_contracts_once(
    chain: tuple[AlpacaChain, QuoteCache], fake: FakeAlpaca
) -> None:
    source, _ = chain

    first = await source.chain("SPY", FRIDAY, around=Decimal(600), width=1)
    later = await source.chain("SPY", FRIDAY, around=Decimal(610), width=1)

    assert first.strikes == [Decimal(595), Decimal(600), Decimal(605)]
    assert later.strikes == [Decimal(605), Decimal(610)]
    assert fake.requests.count("GET /v2/options/contracts 2026-11-27") == 1


async def test_without_the_underlyings_price_the_money_is_found_by_parity(
    chain: tuple[AlpacaChain, QuoteCache],
) -> None:
    source, _ = chain

    listed = await source.chain("SPY", FRIDAY, width=1)

    assert listed.centre == Decimal(600)  # where the call and the put are worth alike
    assert listed.strikes == [Decimal(595), Decimal(600), Decimal(605)]


async def test_an_expiry_without_quotes_still_lists_its_contracts(chain: tuple[AlpacaChain, QuoteCache]) -> None:
    source, _ = chain

    listed = await source.chain("SPY", NEXT_FRIDAY, around=Decimal(600), width=0)

    row = listed.row(Decimal(600), Right.CALL)
    assert row is not None and (row.bid, row.ask, row.delta, row.open_interest) == (None, None, None, 6000)


async def test_what_is_not_listed_and_alpaca_failing_are_one_sentence(
    chain: tuple[AlpacaChain, QuoteCache], fake: FakeAlpaca
) -> None:
    source, _ = chain

    with pytest.raises(TradeError) as unknown:
        await source.chain("XYZ", FRIDAY)
    with pytest.raises(TradeError) as unlisted:
        await source.chain("SPY", date(2026, 11, 30))
    fake.snapshot_faults.append(500)
    with pytest.raises(TradeError) as down:
        await source.chain("SPY", FRIDAY)

    assert str(unknown.value) == "'XYZ' is not an underlying the desk trades; it has SPY, QQQ."
    assert str(unlisted.value) == "SPY has no expiry listed on 2026-11-30; /chain SPY shows them."
    assert str(down.value) == "Alpaca's option chain could not be read (status 500); try again in a moment."
