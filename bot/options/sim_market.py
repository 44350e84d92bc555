"""The simulated market, the embedded default feed: seeded underlyings on a random walk, options by Black-Scholes."""

from __future__ import annotations

import asyncio
import hashlib
import math
import random
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

from bot.options.clock import Clock, utc_now
from bot.options.contracts import OptionContract
from bot.options.errors import TradeError
from bot.options.market_hours import MARKET_TZ, is_market_open, next_session_open, session_close
from bot.options.pricing import black_scholes, years_to_expiry
from bot.options.quotes import Quote, QuoteCache

Sleep = Callable[[float], Awaitable[object]]

CENT = Decimal("0.01")
_ZERO = Decimal("0.00")
_SESSION_SECONDS = 6.5 * 3600
_TRADING_DAYS_PER_YEAR = 252
# A night (or weekend) gap moves prices less than a whole session does; a fifth of a session's variance.
_OVERNIGHT_SESSIONS = 0.2
_SPREAD_FRACTION = 0.04
_MIN_SPREAD = 0.01
_MAX_SIZE = 50
_SHARES_PER_LOT = 100


def _seeded_rng(seed: int, kind: str, symbol: str) -> random.Random:
    # hashlib rather than hash(): str hashes are salted per process, and paths must repeat across runs.
    digest = hashlib.sha256(f"{seed}\x1f{kind}\x1f{symbol}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _cents(value: float, rounding: str) -> Decimal:
    return Decimal(value).quantize(CENT, rounding=rounding)


@dataclass(frozen=True)
class UnderlyingSpec:
    """An underlying of the simulated market: its ticker, starting price and annualised volatility (0.25)."""

    symbol: str
    price: Decimal
    vol: float

    def __post_init__(self) -> None:
        if not self.symbol or self.symbol != self.symbol.strip().upper():
            raise ValueError(f"underlying symbol {self.symbol!r} must be a non-empty upper-case ticker.")
        if not self.price.is_finite() or self.price <= 0:
            raise ValueError(f"{self.symbol}: starting price {self.price} must be positive.")
        if not math.isfinite(self.vol) or self.vol < 0:
            raise ValueError(f"{self.symbol}: volatility {self.vol} must be zero or positive.")


class _Underlying:
    __slots__ = ("price", "price_rng", "size_rng", "spec")

    def __init__(self, spec: UnderlyingSpec, seed: int) -> None:
        self.spec = spec
        self.price = float(spec.price)
        self.price_rng = _seeded_rng(seed, "price", spec.symbol)
        self.size_rng = _seeded_rng(seed, "size", spec.symbol)

    def move(self, years: float, rate: float) -> None:
        """One geometric Brownian motion step over `years` of trading time (one draw, whatever the length)."""
        vol = self.spec.vol
        shock = self.price_rng.gauss(0.0, 1.0)
        self.price *= math.exp((rate - 0.5 * vol * vol) * years + vol * math.sqrt(years) * shock)

    @property
    def spot(self) -> Decimal:
        return max(_cents(self.price, ROUND_HALF_UP), CENT)


class SimulatedMarket:
    """A seeded market clock that walks through trading sessions, quoting underlyings and subscribed options.

    Every underlying and every contract draws from its own generator seeded from (seed, symbol), so the
    same seed and start give the same quotes in any process, whatever is subscribed and in which order.
    """

    def __init__(
        self,
        underlyings: Sequence[UnderlyingSpec],
        seed: int,
        *,
        tick: timedelta = timedelta(seconds=30),
        rate: float = 0.04,
    ) -> None:
        if tick <= timedelta(0):
            raise ValueError(f"tick must be positive, not {tick}.")
        symbols = [spec.symbol for spec in underlyings]
        duplicates = sorted({symbol for symbol in symbols if symbols.count(symbol) > 1})
        if duplicates:
            raise ValueError(f"underlyings listed twice: {', '.join(duplicates)}.")
        self._specs = tuple(underlyings)
        self._seed = seed
        self._tick = tick
        self._rate = rate
        self._underlyings: dict[str, _Underlying] = {}
        self._contracts: dict[str, tuple[OptionContract, random.Random]] = {}
        self._quotes: dict[str, Quote] = {}
        self._now: datetime | None = None
        self._close: datetime | None = None
        self._reset()

    def _reset(self) -> None:
        self._underlyings = {spec.symbol: _Underlying(spec, self._seed) for spec in self._specs}
        self._contracts = {
            symbol: (contract, _seeded_rng(self._seed, "size", symbol))
            for symbol, (contract, _) in self._contracts.items()
        }

    @property
    def tick(self) -> timedelta:
        return self._tick

    @property
    def underlyings(self) -> tuple[str, ...]:
        return tuple(self._underlyings)

    @property
    def started(self) -> bool:
        return self._now is not None

    @property
    def now(self) -> datetime:
        """Market time (UTC)."""
        return self._require_started()[0]

    @property
    def session_close(self) -> datetime:
        """The close (16:00 New York) of the session the market clock is in."""
        return self._require_started()[1]

    def _require_started(self) -> tuple[datetime, datetime]:
        if self._now is None or self._close is None:
            raise RuntimeError("the simulated market has not been started: call start(at) first.")
        return self._now, self._close

    def start(self, at: datetime) -> None:
        """(Re)start from the starting prices at `at`, or at the next session open if `at` is outside one."""
        opens_at = at if is_market_open(at) else next_session_open(at)
        self._reset()
        self._now = opens_at.astimezone(UTC)
        self._close = session_close(opens_at.astimezone(MARKET_TZ).date())
        self._quote_all()

    def step(self) -> list[tuple[str, Quote]]:
        """Advance one tick (past the close: to the next session's open), move prices, and quote everything."""
        now, close = self._require_started()
        after = now + self._tick
        trading_seconds = self._tick.total_seconds()
        gap_sessions = 0.0
        if after >= close:
            after = next_session_open(close)
            trading_seconds = (close - now).total_seconds()
            gap_sessions = _OVERNIGHT_SESSIONS
            self._close = session_close(after.date())
        years = (trading_seconds / _SESSION_SECONDS + gap_sessions) / _TRADING_DAYS_PER_YEAR
        for underlying in self._underlyings.values():
            underlying.move(years, self._rate)
        self._now = after.astimezone(UTC)
        return self._quote_all()

    def subscribe(self, symbols: Iterable[str]) -> list[str]:
        """Also quote these option contracts (OCC symbols); returns the padded symbols that are new.

        Tickers of the market's underlyings are accepted and ignored: they are always quoted.
        """
        added: dict[str, OptionContract] = {}
        for raw in symbols:
            if raw.strip().upper() in self._underlyings:
                continue
            try:
                contract = OptionContract.parse(raw)
            except TradeError as error:
                raise ValueError(str(error)) from None
            if contract.underlying not in self._underlyings:
                known = ", ".join(self._underlyings) or "none"
                raise ValueError(
                    f"{contract.underlying} is not an underlying of the simulated market (it has {known});"
                    f" cannot quote {contract.symbol.strip()}."
                )
            if contract.symbol not in self._contracts:
                added[contract.symbol] = contract
        for symbol, contract in added.items():
            self._contracts[symbol] = (contract, _seeded_rng(self._seed, "size", symbol))
            if self._now is not None:
                self._quotes[symbol] = self._contract_quote(contract, self._contracts[symbol][1])
        return list(added)

    def quote(self, symbol: str) -> Quote:
        """The quote at the current market time for an underlying or a subscribed contract."""
        self._require_started()
        key = symbol.strip().upper()
        if key not in self._underlyings:
            try:
                key = OptionContract.parse(symbol).symbol
            except TradeError:
                raise ValueError(f"{symbol!r} is neither an underlying nor an OCC symbol of this market.") from None
        quote = self._quotes.get(key)
        if quote is None:
            raise ValueError(f"{symbol.strip()} is not quoted: subscribe to it first.")
        return quote

    def snapshot(self) -> list[tuple[str, Quote]]:
        """Every quote at the current market time: underlyings first, then contracts by symbol."""
        self._require_started()
        return [(symbol, self._quotes[symbol]) for symbol in self._quote_order()]

    def spot(self, underlying: str) -> Decimal:
        state = self._underlyings.get(underlying)
        if state is None:
            raise ValueError(f"{underlying} is not an underlying of the simulated market.")
        return state.spot

    def _quote_order(self) -> list[str]:
        return [*self._underlyings, *sorted(self._contracts)]

    def _quote_all(self) -> list[tuple[str, Quote]]:
        for symbol, underlying in self._underlyings.items():
            self._quotes[symbol] = self._underlying_quote(underlying)
        for symbol, (contract, size_rng) in self._contracts.items():
            self._quotes[symbol] = self._contract_quote(contract, size_rng)
        return self.snapshot()

    def _underlying_quote(self, underlying: _Underlying) -> Quote:
        last = underlying.spot
        rng = underlying.size_rng
        return Quote(
            bid=max(last - CENT, _ZERO),
            ask=last + CENT,
            last=last,
            bid_size=rng.randint(1, _MAX_SIZE) * _SHARES_PER_LOT,
            ask_size=rng.randint(1, _MAX_SIZE) * _SHARES_PER_LOT,
            ts=self.now,
        )

    def _contract_quote(self, contract: OptionContract, size_rng: random.Random) -> Quote:
        underlying = self._underlyings[contract.underlying]
        theo = black_scholes(
            float(underlying.spot),
            float(contract.strike),
            years_to_expiry(contract, self.now),
            self._rate,
            underlying.spec.vol,
            contract.right,
        )
        half_spread = max(_MIN_SPREAD, _SPREAD_FRACTION * theo) / 2
        # Rounding outward keeps the theoretical price inside the quote, so it is never crossed.
        # Below a cent of value the floor lands on zero: nobody bids for a worthless option.
        bid = max(_cents(theo - half_spread, ROUND_FLOOR), _ZERO)
        ask = max(_cents(theo + half_spread, ROUND_CEILING), CENT)
        return Quote(
            bid=bid,
            ask=ask,
            last=_cents(theo, ROUND_HALF_UP),
            bid_size=size_rng.randint(1, _MAX_SIZE),
            ask_size=size_rng.randint(1, _MAX_SIZE),
            ts=self.now,
        )


class SimulatedFeed:
    """The QuoteFeed over a SimulatedMarket, ticking `speed` market seconds per real second.

    Nights and weekends cost one tick of real time, not the gap: the market jumps to the next open.
    """

    def __init__(
        self,
        market: SimulatedMarket,
        *,
        speed: float = 1.0,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = utc_now,
    ) -> None:
        if not math.isfinite(speed) or speed <= 0:
            raise ValueError(f"speed must be a positive number of market seconds per second, not {speed}.")
        self.market = market
        self.speed = speed
        self._sleep = sleep
        self._clock = clock
        self._cache: QuoteCache | None = None

    def subscribe(self, symbols: Iterable[str]) -> None:
        added = self.market.subscribe(symbols)
        # While running, a new contract is quoted at once so that an order on it need not wait a tick.
        if self._cache is not None and self.market.started:
            for symbol in added:
                self._cache.update(symbol, self.market.quote(symbol))

    async def run(self, cache: QuoteCache) -> None:
        """Push the current quotes, then one tick of quotes every `tick / speed` real seconds until cancelled."""
        if not self.market.started:
            self.market.start(self._clock())
        self._cache = cache
        try:
            for symbol, quote in self.market.snapshot():
                cache.update(symbol, quote)
            pause = self.market.tick.total_seconds() / self.speed
            while True:
                await self._sleep(pause)
                for symbol, quote in self.market.step():
                    cache.update(symbol, quote)
        finally:
            self._cache = None
