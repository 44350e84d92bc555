"""Greeks from Alpaca's option snapshots, through the real alpaca-py option data client against the fake Alpaca: the
figures Alpaca sends, labelled Alpaca; a failure (or no snapshot) gives the model's figures, the source saying so,
logged once; a broker desk takes this source, a paper desk the model."""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from bot.broker.alpaca import Alpaca
from bot.broker.link import BrokerLink
from bot.broker.option_snapshots import MAX_AGE, AlpacaGreeks
from bot.options.contracts import OptionContract
from bot.options.greeks import Greeks, ModelGreeks
from bot.options.pricing import RATE
from bot.options.quotes import QuoteCache
from bot.runtime.desk_greeks import greeks_source
from tests.broker.conftest import NOW, Clock, broker_settings, fast
from tests.broker.fake_alpaca import FakeAlpaca

SPY = OptionContract.parse("SPY   261127C00450000")
QQQ = OptionContract.parse("QQQ   261127P00400000")
SPOTS = {"SPY": Decimal("450.00"), "QQQ": Decimal("400.00")}
SENT = {"delta": 0.61, "gamma": 0.021, "rho": 0.05, "theta": -0.35, "vega": 0.22}


@pytest.fixture
def model() -> ModelGreeks:
    return ModelGreeks(SPOTS.get, {"SPY": 0.25, "QQQ": 0.30}, RATE)


@pytest.fixture
def source(fake: FakeAlpaca, model: ModelGreeks) -> AlpacaGreeks:
    fake.snapshots[SPY.compact] = {"greeks": SENT, "impliedVolatility": 0.2134}
    client = fast(Alpaca(broker_settings(fake, data_url=fake.url)).option_data_client())
    return AlpacaGreeks(client, model)


async def test_the_figures_come_from_alpacas_snapshots(source: AlpacaGreeks, model: ModelGreeks) -> None:
    await source.load([SPY, QQQ], NOW)

    readings = source.greeks([SPY, QQQ], NOW)

    spy = readings[SPY.symbol]
    assert spy.source == "Alpaca" and spy.spot == Decimal("450.00")
    assert spy.greeks == Greeks(delta=0.61, gamma=0.021, theta=-0.35, vega=0.22, iv=0.2134)
    # No snapshot for QQQ's contract: the model's figures, labelled as the model's.
    assert readings[QQQ.symbol] == model.reading(QQQ, NOW)


async def test_a_failure_gives_the_models_figures_labelled_and_logged_once(
    fake: FakeAlpaca, source: AlpacaGreeks, model: ModelGreeks, caplog: pytest.LogCaptureFixture
) -> None:
    fake.snapshot_faults = [500, 500]

    with caplog.at_level(logging.INFO, logger="bot.broker.option_snapshots"):
        await source.load([SPY], NOW)
        await source.load([SPY], NOW)
        standing_in = source.greeks([SPY], NOW)[SPY.symbol]
        await source.load([SPY], NOW)  # Alpaca answers again
        back = source.greeks([SPY], NOW)[SPY.symbol]

    expected = model.reading(SPY, NOW)
    assert expected is not None
    assert standing_in.source == "model (Alpaca unavailable)"
    assert standing_in.greeks == expected.greeks
    failures = [r for r in caplog.records if "option snapshots failed" in r.getMessage()]
    assert len(failures) == 1 and "[broker] data_url" in failures[0].getMessage()
    assert back.source == "Alpaca"
    assert any("answer again" in r.getMessage() for r in caplog.records)


async def test_figures_older_than_max_age_give_way_to_the_model(source: AlpacaGreeks) -> None:
    await source.load([SPY], NOW)

    assert source.greeks([SPY], NOW + MAX_AGE)[SPY.symbol].source == "Alpaca"
    assert source.greeks([SPY], NOW + MAX_AGE + timedelta(seconds=1))[SPY.symbol].source == "model"


def test_a_broker_desk_takes_alpacas_figures_and_a_paper_desk_the_model(
    fake: FakeAlpaca, storage: Path, clock: Clock
) -> None:
    settings = broker_settings(fake, data_url=fake.url)

    at_broker = greeks_source(settings, QuoteCache(), BrokerLink(settings, storage, clock=clock))
    on_paper = greeks_source(settings.replace(executor="paper"), QuoteCache(), None)

    assert isinstance(at_broker, AlpacaGreeks)
    assert isinstance(on_paper, ModelGreeks)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
async def test_a_figure_that_is_no_number_gives_the_models_figures(
    fake: FakeAlpaca, source: AlpacaGreeks, model: ModelGreeks, bad: float
) -> None:
    """JSON's NaN (Python's json reads it) would make the desk's net delta NaN, and the delta limit raise."""
    fake.snapshots[SPY.compact] = {"greeks": SENT | {"delta": bad}, "impliedVolatility": 0.2134}
    fake.snapshots[QQQ.compact] = {"greeks": SENT, "impliedVolatility": bad}

    await source.load([SPY, QQQ], NOW)

    readings = source.greeks([SPY, QQQ], NOW)
    assert readings[SPY.symbol] == model.reading(SPY, NOW)
    assert readings[QQQ.symbol] == model.reading(QQQ, NOW)


async def test_a_snapshot_alpaca_sends_with_a_null_figure_is_logged_in_one_line(
    fake: FakeAlpaca, source: AlpacaGreeks, model: ModelGreeks, caplog: pytest.LogCaptureFixture
) -> None:
    fake.snapshots[SPY.compact] = {"greeks": SENT | {"delta": None}, "impliedVolatility": 0.2134}

    with caplog.at_level(logging.WARNING, logger="bot.broker.option_snapshots"):
        await source.load([SPY], NOW)

    assert source.greeks([SPY], NOW)[SPY.symbol].greeks == model.reading(SPY, NOW).greeks  # type: ignore[union-attr]
    (failure,) = caplog.records
    assert "\n" not in failure.getMessage() and "[broker] data_url" in failure.getMessage()
