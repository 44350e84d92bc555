"""The greek limits through the order manager: the desk's net dollar delta (either way) and its vega, just under, at
and just over the limit, on the model's figures; a contract without figures is refused, never let through."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.options.contracts import OptionContract
from bot.options.execution_paper import PaperExecutor
from bot.options.exposure import exposure
from bot.options.greeks import ModelGreeks
from bot.options.order_manager import OptionsOrderManager
from bot.options.quotes import Quote
from bot.options.risk import RiskCheck, RiskLimits, cents
from tests.risk.conftest import SPY, RiskDesk, only, refused

SPY_PUT = OptionContract.parse("SPY   261127P00450000")
SPOT = Decimal("450.00")


def model(risk_desk: RiskDesk) -> ModelGreeks:
    def spot_of(underlying: str) -> Decimal | None:
        quote = risk_desk.quotes.get(underlying)
        return quote.mark if quote is not None else None

    return ModelGreeks(spot_of, {"SPY": 0.25}, 0.04)


def build(risk_desk: RiskDesk, limits: RiskLimits) -> OptionsOrderManager:
    risk = RiskCheck(limits, risk_desk.quotes.get, greeks=model(risk_desk))
    paper = PaperExecutor(risk_desk.quotes, clock=lambda: risk_desk.now)
    risk_desk.manager = OptionsOrderManager(paper, risk_desk.ledger, clock=lambda: risk_desk.now, risk=risk)
    return risk_desk.manager


def market(risk_desk: RiskDesk) -> None:
    risk_desk.quotes.update("SPY", Quote(bid=SPOT - Decimal("0.01"), ask=SPOT + Decimal("0.01"), ts=risk_desk.now))
    risk_desk.quote(SPY, "1.00", "1.10")
    risk_desk.quote(SPY_PUT, "1.00", "1.10")


def dollar_delta(risk_desk: RiskDesk, contract: OptionContract, qty: int) -> Decimal:
    reading = model(risk_desk).reading(contract, risk_desk.now)
    assert reading is not None
    return cents(exposure(reading, qty, contract.multiplier).dollar_delta)


def vega(risk_desk: RiskDesk, qty: int) -> Decimal:
    reading = model(risk_desk).reading(SPY, risk_desk.now)
    assert reading is not None
    return cents(exposure(reading, qty, SPY.multiplier).vega)


@pytest.mark.parametrize(("qty", "allowed"), [(9, True), (10, True), (11, False)])
async def test_max_net_delta_just_under_at_and_over(risk_desk: RiskDesk, qty: int, allowed: bool) -> None:
    market(risk_desk)
    cap = dollar_delta(risk_desk, SPY, 10)  # ten calls' worth, about 100 x 0.5 x 100 x 450
    manager = build(risk_desk, only(max_net_delta=cap))
    held = await manager.open_position(SPY, 4, strategy="orb")

    if allowed:
        assert (await manager.add(held.position_id, qty - 4)).qty == qty
    else:
        sentence = await refused(risk_desk, manager.add(held.position_id, qty - 4))
        after = dollar_delta(risk_desk, SPY, qty)
        assert sentence == (
            f"Refused by the max net delta limit: the desk's net dollar delta would be {after:,.2f}, "
            f"the limit is {cap:,.2f} either way."
        )


async def test_max_net_delta_counts_either_way_and_lets_a_buy_back_towards_it_through(risk_desk: RiskDesk) -> None:
    market(risk_desk)
    cap = dollar_delta(risk_desk, SPY, 10)
    manager = build(risk_desk, only(max_net_delta=cap))
    await manager.open_position(SPY, 10, strategy="orb")  # at the limit, long

    await refused(risk_desk, manager.open_position(SPY, 1, strategy="orb"))
    puts = await manager.open_position(SPY_PUT, 5, strategy="orb")  # short delta: back towards zero

    assert puts.qty == 5
    # Puts alone past the limit the other way are refused with the negative figure.
    fresh = build(risk_desk, only(max_net_delta=Decimal(1000)))
    sentence = await refused(risk_desk, fresh.open_position(SPY_PUT, 1, strategy="orb"))
    assert f"would be {dollar_delta(risk_desk, SPY_PUT, 1):,.2f}," in sentence
    assert dollar_delta(risk_desk, SPY_PUT, 1) < -1000


@pytest.mark.parametrize(("qty", "allowed"), [(9, True), (10, True), (11, False)])
async def test_max_vega_just_under_at_and_over(risk_desk: RiskDesk, qty: int, allowed: bool) -> None:
    market(risk_desk)
    cap = vega(risk_desk, 10)
    manager = build(risk_desk, only(max_vega=cap))

    if allowed:
        assert (await manager.open_position(SPY, qty, strategy="orb")).qty == qty
    else:
        sentence = await refused(risk_desk, manager.open_position(SPY, qty, strategy="orb"))
        assert sentence == (
            f"Refused by the max vega limit: the desk's vega would be {vega(risk_desk, qty):,.2f} per vol point, "
            f"the limit is {cap:,.2f}."
        )


async def test_a_contract_without_figures_is_refused_by_a_greek_limit(risk_desk: RiskDesk) -> None:
    risk_desk.quote(SPY, "1.00", "1.10")  # the underlying is not quoted: no spot, no greeks
    manager = build(risk_desk, only(max_net_delta=Decimal(1_000_000)))

    sentence = await refused(risk_desk, manager.open_position(SPY, 1, strategy="orb"))

    assert sentence == f"Refused by the max net delta limit: there are no greeks for {SPY.label} to judge it by."


async def test_the_greek_limits_off_ask_for_no_figures(risk_desk: RiskDesk) -> None:
    risk_desk.quote(SPY, "1.00", "1.10")  # no spot: a desk without greek limits trades as before
    manager = build(risk_desk, only())

    assert (await manager.open_position(SPY, 1, strategy="orb")).qty == 1
