"""The greeks of bot/options/greeks.py against an independent check: finite differences of the project's own
Black-Scholes price, put-call parity for delta, and the implied volatility's round trip through the price."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from bot.options.contracts import OptionContract, Right
from bot.options.greeks import black_scholes_greeks, contract_greeks, implied_vol
from bot.options.pricing import black_scholes, years_to_expiry

# (spot, strike, years, rate, vol): at, in and out of the money, near and far from expiry, a high vol.
CASES = [
    (450.0, 450.0, 30 / 365, 0.04, 0.25),
    (450.0, 420.0, 2 / 365, 0.04, 0.25),
    (450.0, 480.0, 0.5, 0.04, 0.18),
    (100.0, 95.0, 1.0, 0.0, 0.80),
    (20.0, 25.0, 90 / 365, 0.05, 0.45),
]
DAY = 1 / 365


@pytest.mark.parametrize("right", [Right.CALL, Right.PUT])
@pytest.mark.parametrize(("spot", "strike", "years", "rate", "vol"), CASES)
def test_greeks_match_finite_differences_of_the_price(
    spot: float, strike: float, years: float, rate: float, vol: float, right: Right
) -> None:
    def price(s: float = spot, t: float = years, v: float = vol) -> float:
        return black_scholes(s, strike, t, rate, v, right)

    greeks = black_scholes_greeks(spot, strike, years, rate, vol, right)
    h = spot * 1e-4

    assert greeks.delta == pytest.approx((price(s=spot + h) - price(s=spot - h)) / (2 * h), abs=1e-6)
    assert greeks.gamma == pytest.approx((price(s=spot + h) - 2 * price() + price(s=spot - h)) / h**2, rel=1e-3)
    # Theta per calendar day: the price a day from now (a day less to expiry) minus today's, at the limit.
    assert greeks.theta == pytest.approx((price(t=years - 1e-6) - price(t=years + 1e-6)) / 2e-6 * DAY, rel=1e-4)
    # Vega per vol point: the price at vol + 0.01 minus the price at vol, at the limit.
    assert greeks.vega == pytest.approx((price(v=vol + 1e-6) - price(v=vol - 1e-6)) / 2e-6 * 0.01, rel=1e-4)
    assert greeks.iv == vol


@pytest.mark.parametrize(("spot", "strike", "years", "rate", "vol"), CASES)
def test_call_delta_minus_put_delta_is_one(spot: float, strike: float, years: float, rate: float, vol: float) -> None:
    # Put-call parity C - P = S - K e^{-rT}: differentiated in S, the deltas differ by exactly 1, and the rest match.
    call = black_scholes_greeks(spot, strike, years, rate, vol, Right.CALL)
    put = black_scholes_greeks(spot, strike, years, rate, vol, Right.PUT)

    assert call.delta - put.delta == pytest.approx(1.0, abs=1e-12)
    assert call.gamma == pytest.approx(put.gamma)
    assert call.vega == pytest.approx(put.vega)


@pytest.mark.parametrize("right", [Right.CALL, Right.PUT])
@pytest.mark.parametrize(("spot", "strike", "years", "rate", "vol"), CASES)
def test_implied_vol_round_trips_the_price(
    spot: float, strike: float, years: float, rate: float, vol: float, right: Right
) -> None:
    price = black_scholes(spot, strike, years, rate, vol, right)

    found = implied_vol(price, spot, strike, years, rate, right)

    assert found is not None
    assert found == pytest.approx(vol, abs=1e-5)


@pytest.mark.parametrize(
    ("price", "years"),
    [
        (0.0, 30 / 365),  # below any vol's price for an at-the-money option
        (460.0, 30 / 365),  # above the spot: no call is worth more than its underlying
        (5.0, 0.0),  # expired: no time, no vol
        (float("nan"), 30 / 365),
    ],
)
def test_implied_vol_is_none_where_no_vol_gives_the_price(price: float, years: float) -> None:
    assert implied_vol(price, 450.0, 450.0, years, 0.04, Right.CALL) is None


@pytest.mark.parametrize(
    ("spot", "right", "delta"),
    [(460.0, Right.CALL, 1.0), (440.0, Right.CALL, 0.0), (440.0, Right.PUT, -1.0), (460.0, Right.PUT, 0.0)],
)
def test_an_expired_option_has_the_delta_of_its_intrinsic_value(spot: float, right: Right, delta: float) -> None:
    greeks = black_scholes_greeks(spot, 450.0, 0.0, 0.04, 0.25, right)

    assert (greeks.delta, greeks.gamma, greeks.theta, greeks.vega) == (delta, 0.0, 0.0, 0.0)


def test_contract_greeks_count_time_to_the_expiry_close_in_calendar_years() -> None:
    contract = OptionContract.parse("SPY   261127C00450000")
    now = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)

    greeks = contract_greeks(contract, Decimal("452.10"), now, vol=0.25, rate=0.04)

    years = years_to_expiry(contract, now)
    assert greeks == black_scholes_greeks(452.10, 450.0, years, 0.04, 0.25, Right.CALL)
    assert 0.5 < greeks.delta < 0.7
    assert greeks.theta < 0 < greeks.vega
