"""At start a broker desk reads the account: an options level below 2 (buying calls and puts) refuses the start in one
line naming the level; the options buying power holds each buy, refused in one sentence when it cannot pay."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from bot.cli.desk_state import status_command
from bot.options.contracts import OptionContract
from bot.options.quotes import Quote
from bot.options.risk import RiskRefused
from bot.render.status import desk_status, render_status
from bot.settings import RiskSettings, Settings, SettingsError
from bot.storage_lock import StorageLock
from tests.broker.conftest import NOW, Clock, broker_desk
from tests.broker.fake_alpaca import FakeAlpaca

SPY = OptionContract.parse("SPY   261127C00450000")


@pytest.mark.parametrize("level", [0, 1])
async def test_a_level_too_low_refuses_the_start_naming_it(
    fake: FakeAlpaca, storage: Path, clock: Clock, level: int
) -> None:
    fake.account |= {"options_approved_level": level, "options_trading_level": level}
    with pytest.raises(
        SettingsError, match=f"options trading level is {level}, and buying calls and puts needs level 2"
    ):
        async with broker_desk(fake, storage, clock):
            pass
    assert not [r for r in fake.requests if r.startswith("POST")]


async def test_the_approved_level_counts_when_alpaca_gives_no_effective_one(
    fake: FakeAlpaca, storage: Path, clock: Clock
) -> None:
    fake.account = {"options_approved_level": 3, "options_buying_power": "5000"}
    async with broker_desk(fake, storage, clock) as desk:
        assert desk.broker is not None
        assert (desk.broker.options_level, desk.broker.buying_power()) == (3, Decimal(5000))


async def test_a_buy_the_buying_power_cannot_pay_for_is_refused(fake: FakeAlpaca, storage: Path, clock: Clock) -> None:
    fake.account["options_buying_power"] = "209.99"
    async with broker_desk(fake, storage, clock) as desk:
        desk.quotes.update(SPY.symbol, Quote(bid=Decimal("1.00"), ask=Decimal("1.05"), ts=NOW))
        with pytest.raises(RiskRefused) as refused:
            await desk.manager.open_position(SPY, 2, strategy="spy-orb")  # 2 x 1.05 x 100 = 210.00
        assert str(refused.value) == (
            "Refused: the account's options buying power at the broker is 209.99, and this buy (with the buys still "
            "working) needs 210.00."
        )
        assert not fake.orders and desk.ledger.read() == []
        fake.account["options_buying_power"] = "210.00"
        assert desk.broker is not None
        await desk.broker.read_account()
        position = await desk.manager.open_position(SPY, 2, strategy="spy-orb")
        assert position.qty == 2


async def test_the_level_shows_in_status_here_and_from_the_shell(
    fake: FakeAlpaca, storage: Path, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    async with broker_desk(fake, storage, clock) as desk:
        assert desk.broker is not None
        described = desk.broker.describe()
        shown = render_status(
            desk_status(
                now=NOW,
                trading=desk.switch.current,
                limits=RiskSettings().limits(),
                positions=[],
                quote_ages=None,
                backlog=0,
                uptime=None,
                broker=described,
            )
        )
    assert described == "Alpaca paper, options level 2, options buying power 100,000.00"
    assert f"Broker: {described}" in shown.splitlines()
    # The shell's status reads it from the note of the desk holding the storage (the Discord desk writes it there).
    with StorageLock(storage, "run (Discord)") as lock:
        lock.note(broker=described)
        assert status_command(Settings(), storage, as_json=True) == 0
        assert json.loads(capsys.readouterr().out)["broker"] == described
        status_command(Settings(), storage, as_json=False)
        assert f"Broker: {described}" in capsys.readouterr().out.splitlines()


@pytest.mark.parametrize("power", ["NaN", "Infinity", "lots", None])
async def test_a_buying_power_that_is_no_amount_is_not_known(
    fake: FakeAlpaca, storage: Path, clock: Clock, power: str | None
) -> None:
    """Not a limit of 0 nor a crash on the order path: the buy goes on to Alpaca, which holds its own buying power."""
    fake.account["options_buying_power"] = power
    async with broker_desk(fake, storage, clock) as desk:
        assert desk.broker is not None
        assert desk.broker.buying_power() is None
        assert desk.broker.describe() == "Alpaca paper, options level 2"
        desk.quotes.update(SPY.symbol, Quote(bid=Decimal("1.00"), ask=Decimal("1.05"), ts=NOW))
        assert (await desk.manager.open_position(SPY, 1, strategy="spy-orb")).qty == 1


async def test_a_negative_buying_power_refuses_every_buy_in_one_sentence(
    fake: FakeAlpaca, storage: Path, clock: Clock
) -> None:
    fake.account["options_buying_power"] = "-12.50"
    async with broker_desk(fake, storage, clock) as desk:
        desk.quotes.update(SPY.symbol, Quote(bid=Decimal("1.00"), ask=Decimal("1.05"), ts=NOW))
        with pytest.raises(RiskRefused, match=r"options buying power at the broker is -12\.50"):
            await desk.manager.open_position(SPY, 1, strategy="spy-orb")


@pytest.mark.parametrize(("given", "level"), [("2", 2), ("1", 1), (None, None)])
async def test_a_level_as_text_or_missing(
    fake: FakeAlpaca, storage: Path, clock: Clock, given: str | None, level: int | None
) -> None:
    fake.account = {"options_approved_level": given, "options_trading_level": given, "options_buying_power": "500"}
    if level == 1:
        with pytest.raises(SettingsError, match="options trading level is 1"):
            async with broker_desk(fake, storage, clock):
                pass
        return
    async with broker_desk(fake, storage, clock) as desk:
        assert desk.broker is not None
        assert desk.broker.options_level == level
        assert desk.broker.describe().startswith("Alpaca paper, options level " + ("unknown" if level is None else "2"))


async def test_a_level_alpaca_sends_that_is_no_number_stops_nothing_and_is_said_in_one_line(
    fake: FakeAlpaca, storage: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    fake.account |= {"options_trading_level": "two"}
    async with broker_desk(fake, storage, clock) as desk:
        assert desk.broker is not None
        assert desk.broker.options_level is None
    (said,) = [r.getMessage() for r in caplog.records if "Alpaca account" in r.getMessage()]
    assert "\n" not in said
