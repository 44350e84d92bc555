"""Attacks on the greeks and what shows them: status --json's money at cents (an average entry of thirds), a figure
that rounds to a negative zero, greeks at and past expiry, deep in and out of the money, with no volatility, and an
implied volatility asked of a price below intrinsic."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from bot.options.contracts import OptionContract, Right
from bot.options.greeks import ContractGreeks, Greeks, black_scholes_greeks, implied_vol
from bot.options.orders import Side
from bot.options.positions import Position, Source
from bot.options.pricing import black_scholes
from bot.options.risk import NEVER_SET, RiskLimits, cents
from bot.render.status import desk_status, status_json

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
SPY = OptionContract.parse("SPY   261127C00450000")


def bought(*prices: str) -> Position:
    position = Position("p1", SPY, "manual")
    for i, price in enumerate(prices):
        position, _ = position.with_fill(
            side=Side.BUY,
            qty=1,
            price=Decimal(price),
            fees=Decimal("0.65"),
            ts=NOW - timedelta(minutes=10 - i),
            fill_id=f"f{i}",
            order_id=f"o{i}",
            source=Source.MANUAL,
        )
    return position


def test_status_json_money_is_at_cents_with_an_average_entry_of_thirds() -> None:
    position = bought("1.00", "1.05", "1.05")  # average entry 1.0333...
    sold, _ = position.with_fill(
        side=Side.SELL,
        qty=1,
        price=Decimal("1.10"),
        fees=Decimal("0.65"),
        ts=NOW,
        fill_id="f9",
        order_id="o9",
        source=Source.MANUAL,
    )
    tiny = ContractGreeks(Greeks(delta=-1e-8, gamma=0.0, theta=-1e-5, vega=0.0, iv=0.2), Decimal(450), "model")
    status = desk_status(
        now=NOW,
        trading=NEVER_SET,
        limits=RiskLimits(),
        positions=[sold],
        quote_ages=None,
        backlog=0,
        uptime=None,
        greeks={SPY.symbol: tiny},
    )

    shown = status_json(status)

    assert shown["premium_at_risk"] == "206.67"
    assert shown["open_positions"][0]["premium_at_risk"] == "206.67"  # type: ignore[index]
    assert shown["realized_pnl_today"] == "4.07"  # 6.666... on the sale, less 4 fees of 0.65
    assert (shown["net_delta"], shown["theta"], shown["vega"]) == ("0.00", "0.00", "0.00")  # never "-0.00"


def test_cents_never_shows_a_negative_zero() -> None:
    assert str(cents(-0.004)) == "0.00"
    assert str(cents(-0.005)) == "-0.01"


@pytest.mark.parametrize("right", [Right.CALL, Right.PUT])
def test_greeks_at_and_past_expiry_are_the_intrinsic_ones(right: Right) -> None:
    sign = 1 if right is Right.CALL else -1
    for years in (0.0, -1.0):
        in_the_money = black_scholes_greeks(450 + sign * 10, 450, years, 0.04, 0.25, right)
        out = black_scholes_greeks(450 - sign * 10, 450, years, 0.04, 0.25, right)
        assert (in_the_money.delta, in_the_money.gamma, in_the_money.vega, in_the_money.theta) == (sign, 0, 0, 0)
        assert (out.delta, out.gamma, out.vega, out.theta) == (0, 0, 0, 0)


@pytest.mark.parametrize("right", [Right.CALL, Right.PUT])
@pytest.mark.parametrize(("spot", "vol"), [(4500.0, 0.25), (45.0, 0.25), (450.0, 0.0), (450.0, 1e-9)])
def test_deep_in_or_out_of_the_money_or_without_vol_the_greeks_are_finite_and_bounded(
    right: Right, spot: float, vol: float
) -> None:
    greeks = black_scholes_greeks(spot, 450.0, 2 / 365, 0.04, vol, right)

    assert all(math.isfinite(v) for v in (greeks.delta, greeks.gamma, greeks.theta, greeks.vega))
    assert -1.0 <= greeks.delta <= 1.0 and greeks.gamma >= 0 and greeks.vega >= 0
    assert greeks.delta * (1 if right is Right.CALL else -1) >= 0


def test_no_implied_vol_below_intrinsic_at_it_or_at_expiry() -> None:
    intrinsic = 460.0 - 450.0
    assert implied_vol(intrinsic - 1, 460.0, 450.0, 2 / 365, 0.04, Right.CALL) is None
    assert implied_vol(5.0, 460.0, 450.0, 0.0, 0.04, Right.CALL) is None
    price = black_scholes(460.0, 450.0, 2 / 365, 0.04, 0.3, Right.CALL)
    found = implied_vol(price, 460.0, 450.0, 2 / 365, 0.04, Right.CALL)
    assert found is not None and abs(found - 0.3) < 1e-4
