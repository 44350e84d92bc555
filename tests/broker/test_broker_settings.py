"""Broker settings: paper by default, live only when confirmed, credentials only from the environment."""

from __future__ import annotations

import pytest

from bot.broker.alpaca import Alpaca
from bot.settings import Settings, SettingsError, load_settings


def test_paper_is_the_default() -> None:
    assert Settings(strategies=[]).executor == "paper"


def test_live_without_confirmation_refuses_to_start_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPTIONDESK_EXECUTOR", "alpaca-live")
    with pytest.raises(SettingsError, match=r"^bad setting broker: .*OPTIONDESK_BROKER__CONFIRM_LIVE=true") as error:
        load_settings()
    assert "\n" not in str(error.value)
    monkeypatch.setenv("OPTIONDESK_BROKER__CONFIRM_LIVE", "true")
    assert not Alpaca(load_settings()).paper


def test_credentials_come_from_the_environment_and_are_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(executor="alpaca-paper", strategies=[])
    alpaca = Alpaca(settings)
    assert alpaca.paper and "test-secret-never-shown" not in repr(vars(alpaca))
    monkeypatch.delenv("APCA_API_SECRET_KEY")
    with pytest.raises(SettingsError, match="needs APCA_API_KEY_ID and APCA_API_SECRET_KEY"):
        Alpaca(settings)
