"""Strategies pick contracts by delta: with `target_delta` the contract of the chosen expiry whose |delta| is nearest
the target, by the desk's greek source; without it, at the money as before."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from bot.options.contracts import OptionContract, Right
from bot.options.execution_paper import PaperExecutor
from bot.options.greeks import ModelGreeks, black_scholes_greeks
from bot.options.order_manager import OptionsOrderManager
from bot.options.pricing import years_to_expiry
from bot.options.quotes import Quote, QuoteCache
from bot.options.trade_ledger import TradeLedger
from bot.settings import MeanReversionSettings
from bot.strategies.base import StrategyDesk
from bot.strategies.options.mean_reversion import MeanReversion

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)  # Wednesday 10:00 New York
TODAY = date(2026, 11, 25)
SPOT = Decimal("600.00")
VOL, RATE = 0.18, 0.04


def strategy(tmp_path: Path, target_delta: float | None) -> MeanReversion:
    quotes = QuoteCache()
    quotes.update("SPY", Quote(bid=SPOT - Decimal("0.01"), ask=SPOT + Decimal("0.01"), ts=NOW))
    ledger = TradeLedger.open(tmp_path / "trade_events.jsonl")
    manager = OptionsOrderManager(PaperExecutor(quotes, clock=lambda: NOW), ledger, clock=lambda: NOW)

    def spot_of(underlying: str) -> Decimal | None:
        quote = quotes.get(underlying)
        return quote.mark if quote is not None else None

    config = MeanReversionSettings(name="spy-mr", underlying="SPY", days_to_expiry=7, target_delta=target_delta)
    chosen = MeanReversion(config)
    greeks = ModelGreeks(spot_of, {"SPY": VOL}, RATE)
    chosen.bind(StrategyDesk("spy-mr", manager, quotes, clock=lambda: NOW, watch=lambda symbols: None, greeks=greeks))
    return chosen


def delta_of(contract: OptionContract) -> float:
    years = years_to_expiry(contract, NOW)
    return black_scholes_greeks(float(SPOT), float(contract.strike), years, RATE, VOL, contract.right).delta


@pytest.mark.parametrize("right", [Right.CALL, Right.PUT])
@pytest.mark.parametrize("target", [0.30, 0.15, 0.70])
async def test_target_delta_picks_the_strike_whose_delta_is_nearest(tmp_path: Path, right: Right, target: float):
    picked = await strategy(tmp_path, target).contract_to_open(SPOT, right, TODAY)

    at_the_money = strategy(tmp_path, None).contract_for(SPOT, right, TODAY)
    assert (picked.expiry, picked.right) == (at_the_money.expiry, at_the_money.right)  # only the strike moves
    # Checked against every whole-dollar strike from 400 to 800, by an independent loop over the greeks.
    strikes = [OptionContract("SPY", picked.expiry, right, Decimal(k)) for k in range(400, 801)]
    best = min(strikes, key=lambda c: abs(abs(delta_of(c)) - target))
    assert picked == best
    assert abs(abs(delta_of(picked)) - target) < 0.01
    # Out of the money below 0.5, in the money above it.
    otm = picked.strike > SPOT if right is Right.CALL else picked.strike < SPOT
    assert otm == (target < 0.5)


async def test_without_target_delta_the_contract_is_at_the_money(tmp_path: Path):
    picked = await strategy(tmp_path, None).contract_to_open(SPOT, Right.CALL, TODAY)

    assert picked.strike == Decimal(600)
    assert picked.expiry == date(2026, 12, 2)  # seven days on, a trading day
