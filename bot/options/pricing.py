"""Black-Scholes prices for European options, the theoretical values the simulated market quotes around."""

from __future__ import annotations

import math
from datetime import datetime
from decimal import Decimal

from bot.options.contracts import OptionContract, Right
from bot.options.market_hours import session_close

_SECONDS_PER_YEAR = 365 * 24 * 3600
# The annual risk-free rate the simulated market prices its options at, and the model's greeks take.
RATE = 0.04
_ZERO = Decimal(0)


def _norm_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def black_scholes(spot: float, strike: float, years: float, rate: float, vol: float, right: Right) -> float:
    """The Black-Scholes price; intrinsic value at or after expiry (`years <= 0`)."""
    if spot <= 0 or strike <= 0:
        raise ValueError(f"spot and strike must be positive (spot {spot}, strike {strike}).")
    if years <= 0:
        return max(spot - strike, 0.0) if right is Right.CALL else max(strike - spot, 0.0)
    discounted_strike = strike * math.exp(-rate * years)
    if vol <= 0:
        # No uncertainty left: the option is worth its intrinsic value against the discounted strike.
        forward_value = spot - discounted_strike
        return max(forward_value, 0.0) if right is Right.CALL else max(-forward_value, 0.0)
    vol_sqrt_t = vol * math.sqrt(years)
    d1 = (math.log(spot / strike) + (rate + 0.5 * vol * vol) * years) / vol_sqrt_t
    d2 = d1 - vol_sqrt_t
    if right is Right.CALL:
        return spot * _norm_cdf(d1) - discounted_strike * _norm_cdf(d2)
    return discounted_strike * _norm_cdf(-d2) - spot * _norm_cdf(-d1)


def intrinsic_value(contract: OptionContract, spot: Decimal) -> Decimal:
    """What one option (per share, before the multiplier) is worth if exercised at `spot`."""
    if contract.right is Right.CALL:
        return max(spot - contract.strike, _ZERO)
    return max(contract.strike - spot, _ZERO)


def years_to_expiry(contract: OptionContract, now: datetime) -> float:
    """Calendar years (of 365 days) from `now` to the session close of the expiry date, never below 0."""
    seconds = (session_close(contract.expiry) - now).total_seconds()
    return max(seconds, 0.0) / _SECONDS_PER_YEAR
