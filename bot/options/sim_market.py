"""The simulated market, the embedded default feed: underlyings on a seeded random path, options by Black-Scholes.

Every price is a pure function of (seed, symbol, time): each trading day's close is chained from a fixed anchor day
(where the underlying stands at its configured price) by a draw seeded by (seed, symbol, day), and the day's
path from the open to that close is a Brownian bridge seeded the same way, one point a second. So a restart goes on
with the prices the path has at that moment, consecutive days differ, and the same seed and day always give the
same quotes, whichever day a run starts on and whatever else was asked before.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import random
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

import numpy as np

from bot.options.clock import DeskClock, SimulatedClock
from bot.options.contracts import OptionContract
from bot.options.errors import TradeError
from bot.options.market_hours import (
    MARKET_TZ,
    is_market_open,
    is_trading_day,
    next_session_open,
    next_trading_day,
    previous_trading_day,
    session_close,
    session_open,
)
from bot.options.pricing import black_scholes, years_to_expiry
from bot.options.quotes import Quote, QuoteCache

Sleep = Callable[[float], Awaitable[object]]

CENT = Decimal("0.01")
# The day on whose close every underlying stands at its configured price; the path runs both ways from it.
ANCHOR_DAY = date(2026, 1, 2)
_ZERO = Decimal("0.00")
_FULL_SESSION_SECONDS = 6.5 * 3600
_TRADING_DAYS_PER_YEAR = 252
# A night (or weekend) gap moves prices less than a whole session does; a fifth of a session's variance.
_OVERNIGHT_SESSIONS = 0.2
_DAYS_KEPT = 4  # intraday paths kept per underlying: today's, and the few a settlement or a restart looks back on
_SPREAD_FRACTION = 0.04
_MIN_SPREAD = 0.01
_MAX_SIZE = 50
_SHARES_PER_LOT = 100
_GAP, _SESSION, _PATH = 0, 1, 2  # the draws of one day, each from its own stream


def _key(text: str) -> int:
    # hashlib rather than hash(): str hashes are salted per process, and paths must repeat across runs.
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def _day_rng(seed: int, symbol: str, day: date, draw: int) -> np.random.Generator:
    return np.random.default_rng([seed % 2**64, _key(symbol), day.toordinal(), draw])


def _size_rng(seed: int, symbol: str, at: datetime) -> random.Random:
    return random.Random(_key(f"{seed}\x1fsize\x1f{symbol}\x1f{at.timestamp()}"))


def _cents(value: float, rounding: str) -> Decimal:
    return Decimal(value).quantize(CENT, rounding=rounding)


def _session_years(day: date) -> float:
    seconds = (session_close(day) - session_open(day)).total_seconds()
    return seconds / _FULL_SESSION_SECONDS / _TRADING_DAYS_PER_YEAR


@dataclass(frozen=True)
class UnderlyingSpec:
    """An underlying of the simulated market: its ticker, its price on the anchor day's close and its annualised
    volatility (0.25)."""

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


class PricePath:
    """One underlying's geometric Brownian motion through trading sessions, as a function of time."""

    def __init__(self, spec: UnderlyingSpec, seed: int, rate: float) -> None:
        self.spec = spec
        self._seed = seed
        self._drift = rate - 0.5 * spec.vol * spec.vol
        # Log closes of a run of consecutive trading days around the anchor, grown on demand either way.
        self._closes: dict[date, float] = {ANCHOR_DAY: math.log(float(spec.price))}
        self._first = self._last = ANCHOR_DAY
        self._days: OrderedDict[date, np.ndarray] = OrderedDict()

    def price(self, at: datetime) -> float:
        """The price at `at`: on the path in a session, the last close outside one."""
        local = at.astimezone(MARKET_TZ)
        day = local.date()
        if not is_trading_day(day) or local < session_open(day):
            return math.exp(self._log_close(previous_trading_day(day)))
        if local >= session_close(day):
            return math.exp(self._log_close(day))
        second = int((local - session_open(day)).total_seconds())
        return math.exp(float(self._intraday(day)[second]))

    def _moves(self, day: date) -> tuple[float, float]:
        """The overnight gap into `day` and the session's move, in log price."""
        gap_years = _OVERNIGHT_SESSIONS / _TRADING_DAYS_PER_YEAR
        session_years = _session_years(day)
        vol = self.spec.vol
        [gap_shock] = _day_rng(self._seed, self.spec.symbol, day, _GAP).standard_normal(1)
        [session_shock] = _day_rng(self._seed, self.spec.symbol, day, _SESSION).standard_normal(1)
        gap = self._drift * gap_years + vol * math.sqrt(gap_years) * float(gap_shock)
        session = self._drift * session_years + vol * math.sqrt(session_years) * float(session_shock)
        return gap, session

    def _log_close(self, day: date) -> float:
        while day > self._last:
            after = next_trading_day(self._last)
            gap, session = self._moves(after)
            self._closes[after] = self._closes[self._last] + gap + session
            self._last = after
        while day < self._first:
            before = previous_trading_day(self._first)
            gap, session = self._moves(self._first)
            self._closes[before] = self._closes[self._first] - gap - session
            self._first = before
        return self._closes[day]

    def _intraday(self, day: date) -> np.ndarray:
        """Log prices at each second of `day`'s session, from its open to its close (both included)."""
        path = self._days.get(day)
        if path is not None:
            self._days.move_to_end(day)
            return path
        close = self._log_close(day)
        session = self._moves(day)[1]
        opening = close - session
        seconds = int((session_close(day) - session_open(day)).total_seconds())
        steps = _day_rng(self._seed, self.spec.symbol, day, _PATH).standard_normal(seconds)
        walk = np.concatenate(([0.0], np.cumsum(steps) / math.sqrt(seconds)))
        share = np.linspace(0.0, 1.0, seconds + 1)
        bridge = walk - share * walk[-1]  # 0 at both ends: the path meets the chained open and close exactly
        path = opening + share * session + self.spec.vol * math.sqrt(_session_years(day)) * bridge
        self._days[day] = path
        if len(self._days) > _DAYS_KEPT:
            self._days.popitem(last=False)
        return path


class SimulatedMarket:
    """A market clock that walks through trading sessions, quoting underlyings and subscribed options.

    Prices come from each underlying's `PricePath` at the clock's time, and quote sizes from a generator seeded
    by (seed, symbol, time), so the quotes at a moment never depend on the moments asked before it, on what is
    subscribed or on where the clock started.
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
        self._seed = seed
        self._tick = tick
        self._rate = rate
        self._paths = {spec.symbol: PricePath(spec, seed, rate) for spec in underlyings}
        self._contracts: dict[str, OptionContract] = {}
        self._quotes: dict[str, Quote] = {}
        self._spots: dict[str, Decimal] = {}
        self._now: datetime | None = None
        self._close: datetime | None = None

    @property
    def tick(self) -> timedelta:
        return self._tick

    @property
    def underlyings(self) -> tuple[str, ...]:
        return tuple(self._paths)

    @property
    def started(self) -> bool:
        return self._now is not None

    @property
    def now(self) -> datetime:
        """Market time (UTC)."""
        return self._require_started()[0]

    @property
    def session_close(self) -> datetime:
        """The close (16:00 New York, or an early close) of the session the market clock is in."""
        return self._require_started()[1]

    def _require_started(self) -> tuple[datetime, datetime]:
        if self._now is None or self._close is None:
            raise RuntimeError("the simulated market has not been started: call start(at) first.")
        return self._now, self._close

    def start(self, at: datetime) -> None:
        """Set the clock to `at`, or to the next session open if `at` is outside one, and quote everything there."""
        opens_at = at if is_market_open(at) else next_session_open(at)
        self._move_to(opens_at)

    def step(self) -> list[tuple[str, Quote]]:
        """Advance one tick (past the close: to the next session's open) and quote everything."""
        now, close = self._require_started()
        after = now + self._tick
        self._move_to(after if after < close else next_session_open(close))
        return self.snapshot()

    def _move_to(self, at: datetime) -> None:
        self._now = at.astimezone(UTC)
        self._close = session_close(at.astimezone(MARKET_TZ).date())
        self._spots = {symbol: self._spot(path, at) for symbol, path in self._paths.items()}
        self._quotes = {symbol: self._underlying_quote(symbol) for symbol in self._paths}
        for symbol, contract in self._contracts.items():
            self._quotes[symbol] = self._contract_quote(contract)

    def subscribe(self, symbols: Iterable[str]) -> list[str]:
        """Also quote these option contracts (OCC symbols); returns the padded symbols that are new.

        Tickers of the market's underlyings are accepted and ignored: they are always quoted.
        """
        added: dict[str, OptionContract] = {}
        for raw in symbols:
            if raw.strip().upper() in self._paths:
                continue
            try:
                contract = OptionContract.parse(raw)
            except TradeError as error:
                raise ValueError(str(error)) from None
            if contract.underlying not in self._paths:
                known = ", ".join(self._paths) or "none"
                raise ValueError(
                    f"{contract.underlying} is not an underlying of the simulated market (it has {known});"
                    f" cannot quote {contract.symbol.strip()}."
                )
            if contract.symbol not in self._contracts:
                added[contract.symbol] = contract
        for symbol, contract in added.items():
            self._contracts[symbol] = contract
            if self._now is not None:
                self._quotes[symbol] = self._contract_quote(contract)
        return list(added)

    def quote_only(self, keep: Iterable[str]) -> None:
        """Quote no contract but those in `keep` (OCC symbols) from the next tick on."""
        kept = {OptionContract.parse(symbol).symbol for symbol in keep}
        for symbol in [s for s in self._contracts if s not in kept]:
            del self._contracts[symbol]
            self._quotes.pop(symbol, None)

    def quote(self, symbol: str) -> Quote:
        """The quote at the current market time for an underlying or a subscribed contract."""
        self._require_started()
        key = symbol.strip().upper()
        if key not in self._paths:
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
        return [(symbol, self._quotes[symbol]) for symbol in [*self._paths, *sorted(self._contracts)]]

    def spot(self, underlying: str) -> Decimal:
        """The underlying's price at the current market time."""
        if underlying not in self._paths:
            raise ValueError(f"{underlying} is not an underlying of the simulated market.")
        self._require_started()
        return self._spots[underlying]

    def spot_at(self, underlying: str, at: datetime) -> Decimal | None:
        """The underlying's price at any moment (its path is a function of time); None for an unknown ticker."""
        path = self._paths.get(underlying)
        return None if path is None else self._spot(path, at)

    @staticmethod
    def _spot(path: PricePath, at: datetime) -> Decimal:
        return max(_cents(path.price(at), ROUND_HALF_UP), CENT)

    def _underlying_quote(self, symbol: str) -> Quote:
        last = self._spots[symbol]
        sizes = _size_rng(self._seed, symbol, self.now)
        return Quote(
            bid=max(last - CENT, _ZERO),
            ask=last + CENT,
            last=last,
            bid_size=sizes.randint(1, _MAX_SIZE) * _SHARES_PER_LOT,
            ask_size=sizes.randint(1, _MAX_SIZE) * _SHARES_PER_LOT,
            ts=self.now,
        )

    def vol_and_rate(self, underlying: str) -> tuple[float, float]:
        """The annualised volatility of `underlying` and the rate its options are priced at."""
        return self._paths[underlying].spec.vol, self._rate

    def contract_quote_at(self, contract: OptionContract, at: datetime) -> Quote | None:
        """The quote `contract` has at `at` (prices are a function of time), without quoting it from now on: what a
        chain shows a trader. None for a contract on no underlying of this market."""
        spot = self.spot_at(contract.underlying, at)
        return None if spot is None else self._contract_quote(contract, spot, at.astimezone(UTC))

    def _contract_quote(
        self, contract: OptionContract, spot: Decimal | None = None, at: datetime | None = None
    ) -> Quote:
        now = self.now if at is None else at
        theo = black_scholes(
            float(self._spots[contract.underlying] if spot is None else spot),
            float(contract.strike),
            years_to_expiry(contract, now),
            self._rate,
            self._paths[contract.underlying].spec.vol,
            contract.right,
        )
        half_spread = max(_MIN_SPREAD, _SPREAD_FRACTION * theo) / 2
        # Rounding outward keeps the theoretical price inside the quote, so it is never crossed.
        # Below a cent of value the floor lands on zero: nobody bids for a worthless option.
        bid = max(_cents(theo - half_spread, ROUND_FLOOR), _ZERO)
        ask = max(_cents(theo + half_spread, ROUND_CEILING), CENT)
        sizes = _size_rng(self._seed, contract.symbol, now)
        return Quote(
            bid=bid,
            ask=ask,
            last=_cents(theo, ROUND_HALF_UP),
            bid_size=sizes.randint(1, _MAX_SIZE),
            ask_size=sizes.randint(1, _MAX_SIZE),
            ts=now,
        )


class SimulatedFeed:
    """The feed of an offline desk on the simulated market. It does not run by itself: the desk steps it
    (`Desk.simulate`), one tick at a time, each handled to the end before the next, so that the demo, `run` and
    backtests trade alike whatever the speed; `pause` is the real time `run` waits between ticks (`tick / speed`;
    nights and weekends cost one tick: the market jumps to the next open)."""

    def __init__(self, market: SimulatedMarket, clock: SimulatedClock, *, speed: float | None = None) -> None:
        if speed is not None and (not math.isfinite(speed) or speed <= 0):
            raise ValueError(f"speed must be a positive number of market seconds per second, not {speed}.")
        if not market.started:
            market.start(clock())
        clock.advance(market.now)
        self.market = market
        self.clock = clock
        self.pause = 0.0 if speed is None else market.tick.total_seconds() / speed
        self._cache: QuoteCache | None = None

    def spot_at(self, underlying: str, at: datetime) -> Decimal | None:
        return self.market.spot_at(underlying, at)

    def attach(self, cache: QuoteCache) -> None:
        """Quote into `cache` from now on, starting with everything at the market's current time (once: a desk
        simulated again, the next day of a backtest, goes on from the quotes it has handled)."""
        if self._cache is cache:
            return
        self._cache = cache
        self._push(self.market.snapshot())

    def subscribe(self, symbols: Iterable[str]) -> None:
        added = self.market.subscribe(symbols)
        # A new contract is quoted at once, so that an order on it need not wait a tick.
        self._push([(symbol, self.market.quote(symbol)) for symbol in added])

    def tick(self) -> None:
        """One tick of the market: the desk's clock moves to it, then its quotes arrive."""
        quotes = self.market.step()
        self.clock.advance(self.market.now)
        self._push(quotes)

    def _push(self, quotes: Iterable[tuple[str, Quote]]) -> None:
        if self._cache is not None:
            for symbol, quote in quotes:
                self._cache.update(symbol, quote)


class WallClockFeed:
    """The QuoteFeed of a paper desk on Discord: the simulated market quoted at wall time, once a tick, while the
    exchange's session is open; outside it nothing is quoted, so nothing trades."""

    def __init__(self, market: SimulatedMarket, clock: DeskClock, *, sleep: Sleep = asyncio.sleep) -> None:
        self.market = market
        self.clock = clock
        self._sleep = sleep
        self._cache: QuoteCache | None = None

    def spot_at(self, underlying: str, at: datetime) -> Decimal | None:
        return self.market.spot_at(underlying, at)

    def subscribe(self, symbols: Iterable[str]) -> None:
        added = self.market.subscribe(symbols)
        if self._cache is not None and self.market.started and is_market_open(self.clock()):
            for symbol in added:
                self._cache.update(symbol, self.market.quote(symbol))

    async def run(self, cache: QuoteCache) -> None:
        """Quote every tick of a session until cancelled; between sessions, wait for the next open."""
        self._cache = cache
        tick = self.market.tick.total_seconds()
        while True:
            now = self.clock()
            if not is_market_open(now):
                await self.clock.sleep_until(next_session_open(now))
                continue
            self.market.start(now)
            for symbol, quote in self.market.snapshot():
                cache.update(symbol, quote)
            await self._sleep(tick)
