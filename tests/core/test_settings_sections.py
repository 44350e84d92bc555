"""The settings' sections as code uses them: made by keyword, each value read as its annotation says (as from a
file), frozen, compared by value, changed only by `.replace`, and taken back by the reader from `.as_dict()` (a
backtest grid's combinations)."""

from __future__ import annotations

import pickle
from datetime import time
from decimal import Decimal

import pytest

from bot.options.positions import ActionKind
from bot.settings import DiscordSettings, ExitRuleSettings, MeanReversionSettings, RiskSettings, Settings
from bot.settings_check import Refused, check


def test_a_section_made_in_code_reads_its_values_as_a_file_would() -> None:
    risk = RiskSettings(max_daily_loss=False, max_open_positions="3", no_buy_expiring_today_after="9:45")

    assert risk.max_daily_loss is None  # false switches a limit off
    assert risk.max_open_positions == 3
    assert risk.no_buy_expiring_today_after == time(9, 45)


def test_a_bad_value_made_in_code_is_refused_naming_it() -> None:
    with pytest.raises(Refused) as refused:
        RiskSettings(max_spread_pct=Decimal(500))
    assert refused.value.setting == "max_spread_pct"
    assert refused.value.message.startswith("expected a number above 0 and at most 200")

    with pytest.raises(TypeError, match="has no setting max_dayly_loss"):
        RiskSettings(max_dayly_loss=1)  # type: ignore[call-arg]


def test_a_section_checks_what_its_types_cannot_say() -> None:
    with pytest.raises(ValueError, match="sorted by gain"):
        ExitRuleSettings(profit_ladder=[(Decimal(60), Decimal(50)), (Decimal(30), Decimal(100))])
    with pytest.raises(Refused) as refused:
        Settings(executor="alpaca-live")
    assert refused.value.setting == "broker"


def test_sections_are_frozen_and_compared_by_value() -> None:
    settings = Settings()

    with pytest.raises(AttributeError, match="frozen"):
        settings.timezone = "Europe/London"  # type: ignore[misc]
    assert settings == Settings()
    assert settings.risk != settings.risk.replace(max_open_positions=1)
    assert hash(RiskSettings()) == hash(RiskSettings())


def test_replace_reads_the_changed_values_and_keeps_the_others() -> None:
    settings = Settings().replace(timezone="America/Chicago")

    assert settings.timezone == "America/Chicago" and settings.risk == RiskSettings()
    with pytest.raises(Refused, match="unknown time zone"):
        settings.replace(timezone="Mars/Base")


def test_defaults_that_are_lists_or_tables_are_each_sections_own() -> None:
    first, second = DiscordSettings(), DiscordSettings()

    first.trader_role_ids.append(7)

    assert second.trader_role_ids == []
    assert second.notify[ActionKind.ADD] == "silent"


def test_as_dict_is_taken_back_by_the_reader_as_the_same_settings() -> None:
    settings = Settings(strategies=[MeanReversionSettings(name="mr", underlying="SPY", contracts=2)])

    assert check(Settings, settings.as_dict()) == settings


def test_settings_go_to_another_process_whole() -> None:
    settings = Settings(risk=RiskSettings(max_daily_loss=Decimal(100)))

    assert pickle.loads(pickle.dumps(settings)) == settings
