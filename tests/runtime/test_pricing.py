"""Black-Scholes against textbook values, intrinsic value, and time to expiry."""

import math
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from bot.options.contracts import OptionContract, Right
from bot.options.pricing import black_scholes, intrinsic_value, years_to_expiry


@pytest.mark.parametrize(
    ("spot", "strike", "years", "rate", "vol", "right", "price"),
    [
        (100, 100, 1.0, 0.05, 0.2, Right.CALL, 10.4506),
        (100, 100, 1.0, 0.05, 0.2, Right.PUT, 5.5735),
        (42, 40, 0.5, 0.10, 0.2, Right.CALL, 4.7594),  # Hull, Options, Futures and Other Derivatives
        (42, 40, 0.5, 0.10, 0.2, Right.PUT, 0.8086),
    ],
)
def test_known_values(spot, strike, years, rate, vol, right, price):
    assert black_scholes(spot, strike, years, rate, vol, right) == pytest.approx(price, abs=1e-3)


@pytest.mark.parametrize("years", [0.0, -0.5])
def test_at_or_after_expiry_the_price_is_intrinsic(years):
    assert black_scholes(110, 100, years, 0.05, 0.3, Right.CALL) == 10
    assert black_scholes(110, 100, years, 0.05, 0.3, Right.PUT) == 0
    assert black_scholes(90, 100, years, 0.05, 0.3, Right.PUT) == 10


@pytest.mark.parametrize(
    ("spot", "strike", "years", "vol"), [(100, 90, 0.25, 0.3), (50, 60, 2.0, 0.5), (10, 10, 0.01, 1)]
)
def test_put_call_parity(spot, strike, years, vol):
    rate = 0.04
    call = black_scholes(spot, strike, years, rate, vol, Right.CALL)
    put = black_scholes(spot, strike, years, rate, vol, Right.PUT)
    assert call - put == pytest.approx(spot - strike * math.exp(-rate * years), abs=1e-9)


def test_more_volatility_or_time_is_worth_more():
    base = black_scholes(100, 105, 0.5, 0.04, 0.2, Right.CALL)
    assert black_scholes(100, 105, 0.5, 0.04, 0.4, Right.CALL) > base
    assert black_scholes(100, 105, 1.0, 0.04, 0.2, Right.CALL) > base


def test_zero_volatility_is_the_discounted_intrinsic_value():
    assert black_scholes(100, 90, 1.0, 0.05, 0.0, Right.CALL) == pytest.approx(100 - 90 * math.exp(-0.05))
    assert black_scholes(100, 90, 1.0, 0.05, 0.0, Right.PUT) == 0


def test_intrinsic_value():
    call = OptionContract("SPY", date(2026, 11, 27), Right.CALL, Decimal(450))
    put = OptionContract("SPY", date(2026, 11, 27), Right.PUT, Decimal(450))
    assert intrinsic_value(call, Decimal("452.37")) == Decimal("2.37")
    assert intrinsic_value(call, Decimal("449")) == 0
    assert intrinsic_value(put, Decimal("449.50")) == Decimal("0.50")
    assert intrinsic_value(put, Decimal("451")) == 0


@pytest.mark.parametrize(
    ("expiry", "close_utc"),
    [
        (date(2026, 11, 25), datetime(2026, 11, 25, 21, 0, tzinfo=UTC)),
        (date(2026, 11, 27), datetime(2026, 11, 27, 18, 0, tzinfo=UTC)),
    ],
    ids=["16:00 New York", "an early close at 13:00"],
)
def test_years_to_expiry_runs_to_the_session_close_of_the_expiry_day(expiry, close_utc):
    contract = OptionContract("SPY", expiry, Right.CALL, Decimal(450))
    assert years_to_expiry(contract, close_utc - timedelta(days=365)) == pytest.approx(1.0)
    assert years_to_expiry(contract, close_utc - timedelta(hours=6)) == pytest.approx(6 / (365 * 24))
    assert years_to_expiry(contract, close_utc - timedelta(hours=1)) == pytest.approx(1 / (365 * 24))
    assert years_to_expiry(contract, close_utc + timedelta(minutes=1)) == 0
