"""Greeks: Black-Scholes greeks and implied volatility of European options (beside the prices of
bot/options/pricing.py) and where a desk takes its figures from (`GreeksSource`); what a holding's figures add up to
is bot/options/exposure.py.

Time is in calendar years of 365 days, as `pricing.years_to_expiry` counts it; the market's vol and rate are
annualised on that same year.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, NamedTuple, Protocol

from bot.options.contracts import OptionContract, Right
from bot.options.pricing import black_scholes, years_to_expiry

if TYPE_CHECKING:
    from bot.options.quotes import Quote

_DAYS_PER_YEAR = 365
_VOL_POINT = 0.01
# The implied volatility is looked for between these (0.01% to 1000% a year): prices outside them are not a vol.
_MIN_VOL = 1e-4
_MAX_VOL = 10.0
_VOL_TOLERANCE = 1e-7
MODEL = "model"


# The figures are NamedTuples, not frozen dataclasses: status with open positions imports this module, and a dataclass
# takes Python 3.11 ~1.5 ms to make.
class Greeks(NamedTuple):
    """The sensitivities of one option per share, before the contract's multiplier.

    delta: price change per 1.00 of the underlying; gamma: delta's change per 1.00 of the underlying; theta: price
    change per calendar day that passes (negative for a long option as a rule); vega: price change per one point of
    volatility (0.25 -> 0.26); iv: the annualised volatility the figures were taken at (0.25 = 25%).
    """

    delta: float
    gamma: float
    theta: float
    vega: float
    iv: float


def _norm_pdf(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def _norm_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def black_scholes_greeks(spot: float, strike: float, years: float, rate: float, vol: float, right: Right) -> Greeks:
    """The greeks of `black_scholes` at these inputs. At or after expiry, or with no volatility, an option is its
    (discounted) intrinsic value: delta is 1 or 0 in size, the other greeks 0 but theta's interest on the strike."""
    if spot <= 0 or strike <= 0:
        raise ValueError(f"spot and strike must be positive (spot {spot}, strike {strike}).")
    sign = 1.0 if right is Right.CALL else -1.0
    if years <= 0 or vol <= 0:
        years = max(years, 0.0)
        discounted_strike = strike * math.exp(-rate * years)
        in_the_money = sign * (spot - discounted_strike) > 0
        delta = sign if in_the_money else 0.0
        # In the money, the value S - K e^{-rT} (or its mirror) still loses the strike's interest as time passes.
        theta = -sign * rate * discounted_strike / _DAYS_PER_YEAR if in_the_money and years > 0 else 0.0
        return Greeks(delta=delta, gamma=0.0, theta=theta, vega=0.0, iv=max(vol, 0.0))
    sqrt_t = math.sqrt(years)
    vol_sqrt_t = vol * sqrt_t
    d1 = (math.log(spot / strike) + (rate + 0.5 * vol * vol) * years) / vol_sqrt_t
    d2 = d1 - vol_sqrt_t
    density = _norm_pdf(d1)
    discounted_strike = strike * math.exp(-rate * years)
    decay = -spot * density * vol / (2.0 * sqrt_t)
    theta_per_year = decay - sign * rate * discounted_strike * _norm_cdf(sign * d2)
    return Greeks(
        delta=_norm_cdf(d1) if right is Right.CALL else _norm_cdf(d1) - 1.0,
        gamma=density / (spot * vol_sqrt_t),
        theta=theta_per_year / _DAYS_PER_YEAR,
        vega=spot * density * sqrt_t * _VOL_POINT,
        iv=vol,
    )


def implied_vol(price: float, spot: float, strike: float, years: float, rate: float, right: Right) -> float | None:
    """The volatility at which `black_scholes` gives `price`, by bisection (the price rises with vol); None when no
    volatility does: at or after expiry, or a price outside what any vol between 0.01% and 1000% gives."""
    if years <= 0 or not math.isfinite(price) or spot <= 0 or strike <= 0:
        return None
    low, high = _MIN_VOL, _MAX_VOL
    if (
        not black_scholes(spot, strike, years, rate, low, right)
        <= price
        <= black_scholes(spot, strike, years, rate, high, right)
    ):
        return None
    while high - low > _VOL_TOLERANCE:
        middle = 0.5 * (low + high)
        if black_scholes(spot, strike, years, rate, middle, right) < price:
            low = middle
        else:
            high = middle
    return 0.5 * (low + high)


def contract_greeks(contract: OptionContract, spot: Decimal, now: datetime, *, vol: float, rate: float) -> Greeks:
    """One contract's greeks per share at `now`, from the underlying's `spot`, at the market's `vol` and `rate`."""
    return black_scholes_greeks(
        float(spot), float(contract.strike), years_to_expiry(contract, now), rate, vol, contract.right
    )


class ContractGreeks(NamedTuple):
    """A contract's greeks as a source gave them: taken at the underlying's `spot`, from `source` ("model",
    "Alpaca", or the model standing in for a source that failed, which says so)."""

    greeks: Greeks
    spot: Decimal
    source: str


class GreeksSource(Protocol):
    """Where a desk takes its greeks from: the model on the simulated market and in backtests, the broker's option
    snapshots at Alpaca."""

    def greeks(self, contracts: Iterable[OptionContract], now: datetime) -> dict[str, ContractGreeks]:
        """The figures of each contract it can give now, by OCC symbol, from what it holds (no I/O: risk asks this
        on the order path); a contract with no spot or no volatility to go by is left out."""
        ...

    async def load(self, contracts: Iterable[OptionContract], now: datetime) -> None:
        """Bring these contracts' figures up to date where they come from afar (a broker's snapshots)."""
        ...


class ModelGreeks:
    """Black-Scholes figures from the underlying's spot at each underlying's configured volatility. With `quote_of`
    (a broker's desk, whose market is real) a contract's own quote gives its volatility (implied from its mid)
    first, and the configured one only stands in when the quote gives none."""

    def __init__(
        self,
        spot_of: Callable[[str], Decimal | None],
        vols: Mapping[str, float],
        rate: float,
        *,
        quote_of: Callable[[str], Quote | None] | None = None,
    ) -> None:
        self._spot_of = spot_of
        self._vols = dict(vols)
        self._rate = rate
        self._quote_of = quote_of

    def spot(self, underlying: str) -> Decimal | None:
        """The underlying's price now, as the desk has it quoted."""
        spot = self._spot_of(underlying)
        return spot if spot is not None and spot > 0 else None

    def reading(self, contract: OptionContract, now: datetime, source: str = MODEL) -> ContractGreeks | None:
        spot = self.spot(contract.underlying)
        if spot is None:
            return None
        vol = self._implied(contract, spot, now) or self._vols.get(contract.underlying)
        if vol is None:
            return None
        return ContractGreeks(contract_greeks(contract, spot, now, vol=vol, rate=self._rate), spot, source)

    def _implied(self, contract: OptionContract, spot: Decimal, now: datetime) -> float | None:
        quote = self._quote_of(contract.symbol) if self._quote_of is not None else None
        mid = quote.mid if quote is not None else None
        if mid is None:
            return None
        years = years_to_expiry(contract, now)
        return implied_vol(float(mid), float(spot), float(contract.strike), years, self._rate, contract.right)

    def greeks(self, contracts: Iterable[OptionContract], now: datetime) -> dict[str, ContractGreeks]:
        readings = {c.symbol: self.reading(c, now) for c in contracts}
        return {symbol: reading for symbol, reading in readings.items() if reading is not None}

    async def load(self, contracts: Iterable[OptionContract], now: datetime) -> None:
        """Nothing to fetch: the model works from the quotes the desk already has."""


async def current_greeks(
    source: GreeksSource, contracts: Iterable[OptionContract], now: datetime
) -> dict[str, ContractGreeks]:
    """The figures of these contracts brought up to date first (the snapshots of a broker's source)."""
    wanted = list(contracts)
    await source.load(wanted, now)
    return source.greeks(wanted, now)
