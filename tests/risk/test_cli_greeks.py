"""`python -m bot status` with open positions: a paper desk's net dollar delta and daily theta from the model at the
simulated market's price now (`--json`: net_delta and theta, dollars at cents); a broker desk's are not known there."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from bot.cli import main
from bot.options.contracts import OptionContract
from bot.options.execution_paper import PaperExecutor
from bot.options.greeks import contract_greeks
from bot.options.order_manager import OptionsOrderManager
from bot.options.pricing import RATE
from bot.options.quotes import Quote, QuoteCache
from bot.options.risk import cents
from bot.options.sim_market import SimulatedMarket, UnderlyingSpec
from bot.options.trade_ledger import TradeLedger
from bot.paths import ledger_path

AT = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)  # Wednesday 10:00 New York
SPY = OptionContract.parse("SPY   261127C00600000")


@pytest.fixture
async def storage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ledger with 10 SPY calls open, and the command's clock at AT."""
    ledger = TradeLedger.open(ledger_path(tmp_path))
    quotes = QuoteCache()
    quotes.update(SPY.symbol, Quote(bid=Decimal("5.00"), ask=Decimal("5.10"), ts=AT))
    manager = OptionsOrderManager(PaperExecutor(quotes, clock=lambda: AT), ledger, clock=lambda: AT)
    await manager.open_position(SPY, 10, strategy="orb")
    ledger.close()
    assert main(["state", "--set", "active", "--reason", "a desk's books", "--storage", str(tmp_path)]) == 0
    monkeypatch.setattr("bot.options.clock.utc_now", lambda: AT)
    return tmp_path


def status(capsys: pytest.CaptureFixture[str], storage: Path, *flags: str) -> str:
    assert main(["status", "--storage", str(storage), *flags]) == 0
    return capsys.readouterr().out


def test_status_json_carries_the_paper_desks_net_delta_and_theta(
    storage: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shown = json.loads(status(capsys, storage, "--json"))

    # The default simulated market: SPY at 600.00 on its anchor day, vol 0.18, seed 3; its path gives the spot at AT.
    spot = SimulatedMarket([UnderlyingSpec("SPY", Decimal("600.00"), 0.18)], 3, rate=RATE).spot_at("SPY", AT)
    assert spot is not None
    g = contract_greeks(SPY, spot, AT, vol=0.18, rate=RATE)
    assert shown["net_delta"] == str(cents(g.delta * 1000 * float(spot)))
    assert shown["theta"] == str(cents(g.theta * 1000))
    assert shown["vega"] == str(cents(g.vega * 1000))
    assert shown["greeks_source"] == "model"
    assert Decimal(shown["theta"]) < 0 < Decimal(shown["net_delta"])
    text = status(capsys, storage)
    assert f"  Net dollar delta: {Decimal(shown['net_delta']):,.2f} (no limit)" in text.splitlines()


def test_a_broker_desks_greeks_are_not_known_from_the_shell(
    storage: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPTIONDESK_EXECUTOR", "alpaca-paper")

    shown = json.loads(status(capsys, storage, "--json"))

    assert shown["net_delta"] is None and shown["theta"] is None
    assert "Greeks: not known here (a broker desk's come from Alpaca: see /status)" in status(capsys, storage)
