"""A broker desk checks at start that Alpaca trades each strategy's underlying: else one line, nothing opened."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.settings import OpeningRangeBreakoutSettings, SettingsError
from tests.broker.conftest import Clock, broker_desk, broker_settings
from tests.broker.fake_alpaca import FakeAlpaca


def trading(fake: FakeAlpaca, underlying: str):  # type: ignore[no-untyped-def]
    orb = OpeningRangeBreakoutSettings(name="orb", underlying=underlying)
    return broker_settings(fake).replace(strategies=[orb])


async def test_an_underlying_alpaca_trades_starts(fake: FakeAlpaca, storage: Path, clock: Clock) -> None:
    async with broker_desk(fake, storage, clock, trading(fake, "SPY")) as desk:
        assert desk.runner.strategies
    assert "GET /v2/assets/SPY" in fake.requests


@pytest.mark.parametrize(
    ("tradable", "said"), [(None, "which Alpaca does not know"), (False, "which Alpaca does not trade now")]
)
async def test_an_underlying_alpaca_does_not_trade_stops_the_start_in_one_line(
    fake: FakeAlpaca, storage: Path, clock: Clock, tradable: bool | None, said: str
) -> None:
    if tradable is not None:
        fake.assets["ZZZZ"] = tradable

    with pytest.raises(SettingsError, match=f"bad setting strategies: orb trades ZZZZ, {said}"):
        async with broker_desk(fake, storage, clock, trading(fake, "ZZZZ")):
            pass
