"""The bot's settings: environment variables (OPTIONDESK_...) over config/optiondesk.toml over defaults.

Built once at start-up and passed in; tests build `Settings(...)` with keywords.
"""

from __future__ import annotations

import os
import re
import tomllib
from datetime import time as dt_time
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pydantic_settings
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from bot.broker.config import BrokerSettings
from bot.options.positions import ActionKind
from bot.options.risk import RiskLimits
from bot.paths import PROJECT_ROOT

CONFIG_FILE = PROJECT_ROOT / "config" / "optiondesk.toml"

Percent = Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]


def _off_is_none(value: object) -> object:
    # TOML has no null: `false`, 0 or "off" switch a rule off.
    return None if value is False or value == 0 or value == "off" else value


OptionalPercent = Annotated[Percent | None, BeforeValidator(_off_is_none)]
OptionalMinutes = Annotated[Annotated[int, Field(gt=0)] | None, BeforeValidator(_off_is_none)]
OptionalCount = OptionalMinutes
OptionalMoney = Annotated[Annotated[Decimal, Field(gt=0, allow_inf_nan=False)] | None, BeforeValidator(_off_is_none)]
OptionalTime = Annotated[dt_time | None, BeforeValidator(_off_is_none)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExitRuleSettings(Section):
    """The shared exit rules; a rule is switched off with `false` (or an empty ladder)."""

    profit_ladder: list[tuple[Percent, Percent]] = [(Decimal(30), Decimal(50)), (Decimal(60), Decimal(100))]
    stop_loss_pct: OptionalPercent = Decimal(40)
    trailing_stop_pct: OptionalPercent = Decimal(20)
    trailing_activation_pct: Percent = Decimal(20)
    time_stop_minutes: OptionalMinutes = 10
    time_stop_expiry_only: bool = False


class StrategyBase(Section):
    name: Annotated[str, Field(min_length=1, pattern=r"^[\w-]+$")]
    underlying: Annotated[str, Field(min_length=1)]
    contracts: Annotated[int, Field(gt=0, le=1000)] = 5
    days_to_expiry: Annotated[int, Field(ge=0, le=60)] = 2
    no_entry_minutes_before_close: Annotated[int, Field(ge=0, le=390)] = 30
    exits: ExitRuleSettings = ExitRuleSettings()


class OpeningRangeBreakoutSettings(StrategyBase):
    kind: Literal["opening_range_breakout"] = "opening_range_breakout"
    range_minutes: Annotated[int, Field(gt=0, le=120)] = 15
    add_on_extension_pct: Percent = Decimal("0.3")


class MeanReversionSettings(StrategyBase):
    kind: Literal["mean_reversion"] = "mean_reversion"
    lookback_minutes: Annotated[int, Field(ge=5, le=390)] = 30
    entry_z: Annotated[float, Field(gt=0)] = 2.0
    add_z: Annotated[float, Field(gt=0)] = 3.0


StrategySettings = Annotated[OpeningRangeBreakoutSettings | MeanReversionSettings, Field(discriminator="kind")]


class UnderlyingSettings(Section):
    symbol: Annotated[str, Field(min_length=1, max_length=6)]
    price: Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]
    vol: Annotated[float, Field(gt=0, lt=5)]


class MarketSettings(Section):
    """The simulated market, the embedded default feed."""

    seed: int = 3
    tick_seconds: Annotated[int, Field(gt=0, le=3600)] = 30
    underlyings: list[UnderlyingSettings] = [
        UnderlyingSettings(symbol="SPY", price=Decimal("600.00"), vol=0.18),
        UnderlyingSettings(symbol="QQQ", price=Decimal("520.00"), vol=0.24),
    ]
    quote_max_age_seconds: Annotated[int, Field(gt=0)] = 120


class PaperSettings(Section):
    fee_per_contract: Annotated[Decimal, Field(ge=0, allow_inf_nan=False)] = Decimal("0.65")
    slippage_ticks: Annotated[int, Field(ge=0)] = 0
    slippage_bps: Annotated[Decimal, Field(ge=0, allow_inf_nan=False)] = Decimal(0)
    partial_fills: bool = False


class WatcherSettings(Section):
    throttle_seconds: Annotated[float, Field(ge=0)] = 1.0


_LIMITS = RiskLimits()  # the defaults live with the checks


class RiskSettings(Section):
    """The desk's pre-trade limits (see bot.options.risk); `false` switches one off."""

    max_contracts_per_order: OptionalCount = _LIMITS.max_contracts_per_order
    max_open_positions: OptionalCount = _LIMITS.max_open_positions
    max_premium_per_position: OptionalMoney = _LIMITS.max_premium_per_position
    max_premium_total: OptionalMoney = _LIMITS.max_premium_total
    max_daily_loss: OptionalMoney = _LIMITS.max_daily_loss
    market_hours_only: bool = _LIMITS.market_hours_only
    no_entry_minutes_before_close: OptionalMinutes = _LIMITS.no_entry_minutes_before_close
    no_buy_expiring_today_after: OptionalTime = _LIMITS.no_buy_expiring_today_after
    max_spread_pct: OptionalPercent = _LIMITS.max_spread_pct

    def limits(self) -> RiskLimits:
        return RiskLimits(**self.model_dump())


Notify = Literal["notify", "silent", "off"]


class DiscordSettings(Section):
    """Where the bot works in Discord and who may do what. Required only when DISCORD_TOKEN is set."""

    guild_id: Annotated[int, Field(gt=0)] | None = None
    trade_channel_id: Annotated[int, Field(gt=0)] | None = None
    admin_channel_id: Annotated[int, Field(gt=0)] | None = None
    trader_role_ids: list[Annotated[int, Field(gt=0)]] = []
    admin_role_ids: list[Annotated[int, Field(gt=0)]] = []
    eod_reset_time: dt_time = dt_time(16, 15)
    # Per kind of event: a normal message, a silent one (no push notification), or no update at all.
    notify: dict[ActionKind, Notify] = {
        ActionKind.OPEN: "notify",
        ActionKind.ADD: "silent",
        ActionKind.TRIM: "notify",
        ActionKind.CLOSE: "notify",
    }
    charts: bool = True  # a chart image on each position's message; off spares a slow machine the drawing


def _default_strategies() -> list[OpeningRangeBreakoutSettings | MeanReversionSettings]:
    return [
        OpeningRangeBreakoutSettings(name="spy-orb", underlying="SPY"),
        MeanReversionSettings(name="qqq-meanrev", underlying="QQQ", contracts=3, days_to_expiry=7),
    ]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="OPTIONDESK_",
        env_nested_delimiter="__",
        toml_file=CONFIG_FILE,
        extra="forbid",
        frozen=True,
    )

    storage_dir: Path | None = None
    timezone: str = "America/New_York"
    executor: Literal["paper", "alpaca-paper", "alpaca-live"] = "paper"
    # The longest any executor may take over one order (then the unfilled rest is given up): a backstop for an
    # executor that stops answering, above the broker's own `broker.order_timeout_seconds`.
    order_timeout_seconds: Annotated[float, Field(gt=0, le=3600)] = 120.0
    broker: BrokerSettings = Field(default=BrokerSettings(), validate_default=True)
    discord: DiscordSettings = DiscordSettings()
    market: MarketSettings = MarketSettings()
    paper: PaperSettings = PaperSettings()
    watcher: WatcherSettings = WatcherSettings()
    risk: RiskSettings = RiskSettings()
    strategies: list[StrategySettings] = Field(default_factory=_default_strategies)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("broker")
    @classmethod
    def _live_confirmed(cls, value: BrokerSettings, info: ValidationInfo) -> BrokerSettings:
        if info.data.get("executor") == "alpaca-live" and not value.confirm_live:
            raise ValueError(
                "executor alpaca-live trades real money; confirm with OPTIONDESK_BROKER__CONFIRM_LIVE=true "
                "(or [broker] confirm_live = true)"
            )
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, TomlConfigSettingsSource(settings_cls)


class SettingsError(Exception):
    """A bad setting; the message is one line naming it."""


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except tomllib.TOMLDecodeError as error:
        raise SettingsError(f"bad settings file {Settings.model_config.get('toml_file')}: {error}") from None
    except pydantic_settings.SettingsError as error:
        # A complex value (a list, a section) in an environment variable that is not JSON.
        found = re.search(r'field "(\w+)"', str(error))
        name = found[1] if found else "?"
        raise SettingsError(f"bad setting {name}: a value in the environment is not valid JSON") from None
    except ValidationError as error:
        problem = error.errors()[0]
        name = ".".join(str(part) for part in problem["loc"])
        raise SettingsError(f"bad setting {name}: {problem['msg']}") from None


def discord_token() -> SecretStr | None:
    """The bot token, from the environment only (never from a file, never logged)."""
    token = os.environ.get("DISCORD_TOKEN", "").strip()
    return SecretStr(token) if token else None


def check_discord_settings(settings: Settings) -> None:
    """With a token, the bot needs to know its guild and trade channel; say which one is missing."""
    for name in ("guild_id", "trade_channel_id"):
        if getattr(settings.discord, name) is None:
            raise SettingsError(
                f"bad setting discord.{name}: required when DISCORD_TOKEN is set "
                f"(set OPTIONDESK_DISCORD__{name.upper()} or [discord] {name} in config/optiondesk.toml)"
            )
