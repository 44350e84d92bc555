"""Option chains: which contracts of an underlying exist, and their quotes around the money, for the chain and the
openings traders ask for. The simulated market's chain is here; a broker's is in bot/broker/option_chain.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Protocol

from bot.options.contracts import OptionContract, Right
from bot.options.errors import TradeError, shown
from bot.options.greeks import contract_greeks
from bot.options.market_hours import MARKET_TZ, is_trading_day, session_close
from bot.options.quotes import QuoteCache
from bot.options.sim_market import SimulatedMarket

WIDTH = 5  # strikes shown each side of the money
# How far out the simulated market lists expiries: every trading day, past the 60 days a strategy may ask for.
SIM_HORIZON = timedelta(days=70)
SIM_STRIKE_STEP = Decimal(1)
SIM_STRIKE_RANGE = Decimal("0.5")  # listed strikes lie within half the underlying's price either way


@dataclass(frozen=True, slots=True)
class ChainRow:
    """One listed contract with what the source knows of it; any of the figures may be unknown (None)."""

    contract: OptionContract
    bid: Decimal | None
    ask: Decimal | None
    delta: float | None
    open_interest: int | None


@dataclass(frozen=True, slots=True)
class Chain:
    """The contracts of one underlying and expiry around a price (`centre`: the underlying's, when known)."""

    underlying: str
    expiry: date
    centre: Decimal | None
    rows: tuple[ChainRow, ...]

    @property
    def strikes(self) -> list[Decimal]:
        return sorted({row.contract.strike for row in self.rows})

    def row(self, strike: Decimal, right: Right) -> ChainRow | None:
        return next((r for r in self.rows if r.contract.strike == strike and r.contract.right is right), None)


class ChainSource(Protocol):
    """Where the desk finds the contracts it may open: the simulated market, or the broker's option chain."""

    def underlyings(self) -> list[str]:
        """The underlyings traders may ask for (the desk's own)."""
        ...

    async def expiries(self, underlying: str, today: date) -> list[date]:
        """The listed expiries from `today` on, soonest first; TradeError for an underlying the desk does not trade."""
        ...

    async def chain(self, underlying: str, expiry: date, *, around: Decimal | None = None, width: int = WIDTH) -> Chain:
        """The `width` listed strikes each side of `around` (default: the money), calls and puts; TradeError for an
        underlying or expiry that is not listed, or a source that cannot be read."""
        ...


def strikes_around(strikes: Iterable[Decimal], centre: Decimal, width: int) -> list[Decimal]:
    """The `width` strikes each side of the one nearest `centre` (that one included), in order."""
    ordered = sorted(set(strikes))
    if not ordered:
        return []
    nearest = min(range(len(ordered)), key=lambda i: (abs(ordered[i] - centre), ordered[i]))
    return ordered[max(nearest - width, 0) : nearest + width + 1]


def nearest_first(strikes: Iterable[Decimal], centre: Decimal | None) -> list[Decimal]:
    """Strikes near the money first (in order when the money is unknown)."""
    ordered = sorted(set(strikes))
    return ordered if centre is None else sorted(ordered, key=lambda k: (abs(k - centre), k))


def parity_centre(rows: Iterable[ChainRow]) -> Decimal | None:
    """Where the money is when the underlying's price is unknown: the strike whose call and put are worth the most
    alike (put-call parity puts it nearest the forward price)."""
    mids: dict[tuple[Decimal, Right], Decimal] = {}
    for row in rows:
        if row.bid is not None and row.ask is not None and row.ask > 0:
            mids[row.contract.strike, row.contract.right] = (row.bid + row.ask) / 2
    both = [k for (k, right) in mids if right is Right.CALL and (k, Right.PUT) in mids]
    if not both:
        return None
    return min(both, key=lambda k: (abs(mids[k, Right.CALL] - mids[k, Right.PUT]), k))


def unknown_underlying(underlying: str, known: list[str]) -> TradeError:
    return TradeError(f"{shown(underlying)} is not an underlying the desk trades; it has {', '.join(known) or 'none'}.")


def not_listed(underlying: str, expiry: date) -> TradeError:
    return TradeError(f"{underlying} has no expiry listed on {expiry.isoformat()}; /chain {underlying} shows them.")


class SimulatedChain:
    """The simulated market's chain: an expiry every trading day up to `SIM_HORIZON` ahead (the close not yet past),
    whole-dollar strikes within half the underlying's price. Quotes are the desk's own where it has one (what an
    order would fill at), else the market's at the desk's moment; delta by Black-Scholes at the market's volatility;
    no open interest (a simulation has none)."""

    def __init__(self, market: SimulatedMarket, quotes: QuoteCache, clock: Callable[[], datetime]) -> None:
        self._market = market
        self._quotes = quotes
        self._clock = clock

    def underlyings(self) -> list[str]:
        return list(self._market.underlyings)

    def _known(self, underlying: str) -> str:
        symbol = underlying.strip().upper()
        if symbol not in self._market.underlyings:
            raise unknown_underlying(underlying, self.underlyings())
        return symbol

    async def expiries(self, underlying: str, today: date) -> list[date]:
        self._known(underlying)
        now = self._clock()
        days = (today + timedelta(days=n) for n in range(SIM_HORIZON.days + 1))
        return [day for day in days if self._listed(day, now)]

    @staticmethod
    def _listed(expiry: date, now: datetime) -> bool:
        last = now.astimezone(MARKET_TZ).date() + SIM_HORIZON
        return is_trading_day(expiry) and session_close(expiry) > now and expiry <= last

    async def chain(self, underlying: str, expiry: date, *, around: Decimal | None = None, width: int = WIDTH) -> Chain:
        symbol = self._known(underlying)
        now = self._clock()
        if not self._listed(expiry, now):
            raise not_listed(symbol, expiry)
        spot = self._market.spot_at(symbol, now)
        assert spot is not None  # a known underlying has a path
        vol, rate = self._market.vol_and_rate(symbol)
        low, high = spot * (1 - SIM_STRIKE_RANGE), spot * (1 + SIM_STRIKE_RANGE)
        centre = (around if around is not None else spot).quantize(SIM_STRIKE_STEP, ROUND_HALF_UP)
        grid = [centre + SIM_STRIKE_STEP * n for n in range(-width - 1, width + 2)]
        rows = []
        for strike in _around(grid, low, high, around if around is not None else spot, width):
            for right in (Right.CALL, Right.PUT):
                contract = OptionContract(symbol, expiry, right, strike)
                quote = self._quotes.get(contract.symbol) or self._market.contract_quote_at(contract, now)
                delta = contract_greeks(contract, spot, now, vol=vol, rate=rate).delta
                bid, ask = (quote.bid, quote.ask) if quote is not None else (None, None)
                rows.append(ChainRow(contract, bid, ask, delta, None))
        return Chain(symbol, expiry, spot, tuple(rows))


def _around(grid: list[Decimal], low: Decimal, high: Decimal, centre: Decimal, width: int) -> list[Decimal]:
    return strikes_around([k for k in grid if low <= k <= high and k > 0], centre, width)
