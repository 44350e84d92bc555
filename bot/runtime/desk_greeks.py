"""Where a desk takes its greeks from: the model on the simulated market, the broker's option snapshots at Alpaca."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from bot.options.contracts import OptionContract
from bot.options.greeks import ContractGreeks, GreeksSource, ModelGreeks, current_greeks
from bot.options.pricing import RATE
from bot.options.quotes import QuoteCache
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.broker.link import BrokerLink


def greeks_source(settings: Settings, quotes: QuoteCache, broker: BrokerLink | None) -> GreeksSource:
    """The model on the simulated market (its underlyings' vols, from their quoted spot); at a broker, its option
    snapshots, with the model (each contract's own quote's implied vol first) standing in when they fail."""
    vols = {u.symbol: u.vol for u in settings.market.underlyings}

    def spot_of(underlying: str) -> Decimal | None:
        quote = quotes.get(underlying)
        return quote.mark if quote is not None else None

    if broker is None:
        return ModelGreeks(spot_of, vols, RATE)
    from bot.broker.option_snapshots import AlpacaGreeks  # alpaca-py only on a broker's desk

    model = ModelGreeks(spot_of, vols, RATE, quote_of=quotes.get)
    return AlpacaGreeks(broker.alpaca.option_data_client(), model, feed=settings.broker.option_feed)


async def greeks_now(
    source: GreeksSource, clock: Callable[[], datetime], contract: OptionContract
) -> ContractGreeks | None:
    """One contract's greeks now, brought up to date first (what a position's message shows)."""
    return (await current_greeks(source, [contract], clock())).get(contract.symbol)
