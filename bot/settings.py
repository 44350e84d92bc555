"""The bot's settings: environment variables (OPTIONDESK_...) over config/optiondesk.toml over defaults.

Built once at start-up and passed in; tests build `Settings(...)` with keywords. Each section is a `Section` whose
annotations say what its values are (bot/settings_check.py reads them: no annotations from __future__ here), frozen;
`.replace(...)` makes a changed copy.
"""

import os
import re
from collections.abc import Callable, Collection, Sequence
from datetime import time
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.broker.config import BrokerSettings
from bot.options.contracts import root_problem
from bot.options.positions import MANUAL_STRATEGY, ActionKind
from bot.options.risk import RiskLimits
from bot.paths import PROJECT_ROOT
from bot.settings_check import After, Refused, Section, Text, check, setting
from bot.settings_sources import NotJson, raw_settings
from bot.settings_types import OFF, OFF_MODE, ClockTime, Dec, Flag, Int, Percent, PercentOrOff, Real, within
from bot.strategies.options.exit_rules import ExitRules, ProfitLevel

if TYPE_CHECKING:
    from pydantic import SecretStr

CONFIG_FILE = PROJECT_ROOT / "config" / "optiondesk.toml"
CONFIG_FILE_VARIABLE = "OPTIONDESK_CONFIG_FILE"

Minutes = Annotated[Int, within(0, 390, unit="minutes")]
Id = Annotated[Int, within(0, above=True)]


def _each_once(problem: str, name: Callable[[Any], str]) -> After:
    """Refuses a list holding two items of one name; `problem` says so with {} for the names."""

    def check(items: list[Any]) -> list[Any]:
        names = [name(item) for item in items]
        twice = sorted({each for each in names if names.count(each) > 1})
        if twice:
            raise ValueError(problem.format(", ".join(twice)))
        return items

    return After(check)


class ExitRuleSettings(Section):
    """The shared exit rules; a rule is switched off with `false` (or an empty ladder)."""

    # [gain %, sell % of the open quantity], sorted by gain.
    profit_ladder: list[tuple[Annotated[Dec, within(0, above=True)], Percent]] = setting(
        default_factory=lambda: [(Decimal(30), Decimal(50)), (Decimal(60), Decimal(100))]
    )
    stop_loss_pct: PercentOrOff = Decimal(40)
    trailing_stop_pct: PercentOrOff = Decimal(20)
    trailing_activation_pct: Annotated[Dec, within(0)] = Decimal(20)
    time_stop_minutes: Annotated[Annotated[Int, within(0, 390, above=True, unit="minutes", off=True)] | None, OFF] = 10
    time_stop_expiry_only: Flag = False

    def rules(self) -> ExitRules:
        return ExitRules(
            profit_ladder=tuple(ProfitLevel(gain, sell) for gain, sell in self.profit_ladder),
            stop_loss_pct=self.stop_loss_pct,
            trailing_stop_pct=self.trailing_stop_pct,
            trailing_activation_pct=self.trailing_activation_pct,
            time_stop_minutes=self.time_stop_minutes,
            time_stop_expiry_only=self.time_stop_expiry_only,
        )

    def __post_init__(self) -> None:
        super().__post_init__()
        self.rules()  # what the ranges above cannot say (a ladder out of order) the rules themselves refuse


def _a_name(name: str) -> str:
    # Letters of any script, digits, _ and -: Unicode's \w, as the name was read before, where a letter and its accent
    # typed apart ("e" and U+0301) are one letter (Python's \w takes digits of other kinds, refuses accents).
    if not re.fullmatch(r"[\w-]+", name, re.ASCII) and not all(map(_in_a_word, name)):
        raise ValueError(f"expected letters, digits, _ and -, not {name!r}")
    return name


def _in_a_word(char: str) -> bool:
    import unicodedata  # a name beyond ASCII only

    kind = unicodedata.category(char)
    # Unicode's \w: letters, marks, decimal digits, letter numbers, connectors (_) and the two joiners.
    return char == "-" or char.isalpha() or kind[0] == "M" or kind in ("Nd", "Nl", "Pc") or char in "\u200c\u200d"


def _not_manual(name: str) -> str:
    # Positions a trader opens for no strategy carry this name; a strategy of that name would take them over.
    if name.lower() == MANUAL_STRATEGY:
        raise ValueError(f"{name!r} is the name of the positions traders open by hand; give the strategy another")
    return name


def _an_option_root(underlying: str) -> str:
    # The strategy's contracts carry it in their OCC symbols: refused here, not at its first entry.
    problem = root_problem(underlying)
    if problem is not None:
        raise ValueError(problem)
    return underlying


class StrategyBase(Section):
    name: Annotated[str, Text(min_length=1), After(_a_name), After(_not_manual)]
    underlying: Annotated[str, Text(min_length=1), After(_an_option_root)]
    contracts: Annotated[Int, within(1, 1000)] = 5
    days_to_expiry: Annotated[Int, within(0, 60, unit="days")] = 2
    no_entry_minutes_before_close: Minutes = 30
    # Buy the contract of the expiry whose |delta| is nearest this (0.30); off: the one at the money.
    target_delta: Annotated[Annotated[Real, within(0, 1, above=True, off=True)] | None, OFF] = None
    exits: ExitRuleSettings = setting(default_factory=ExitRuleSettings)


class OpeningRangeBreakoutSettings(StrategyBase):
    kind: Literal["opening_range_breakout"] = "opening_range_breakout"
    range_minutes: Annotated[Int, within(1, 120, unit="minutes")] = 15
    add_on_extension_pct: Percent = Decimal("0.3")


class MeanReversionSettings(StrategyBase):
    kind: Literal["mean_reversion"] = "mean_reversion"
    lookback_minutes: Annotated[Int, within(5, 390, unit="minutes")] = 30
    entry_z: Annotated[Real, within(0, 10, above=True)] = 2.0
    add_z: Annotated[Real, within(0, 10, above=True)] = 3.0


StrategySettings = OpeningRangeBreakoutSettings | MeanReversionSettings  # told apart by their `kind`


class UnderlyingSettings(Section):
    symbol: Annotated[str, Text(min_length=1, max_length=6)]
    price: Annotated[Dec, within(0, above=True)]
    vol: Annotated[Real, within(0, 5, above=True)]


class MarketSettings(Section):
    """The simulated market, the embedded default feed."""

    seed: Int = 3
    tick_seconds: Annotated[Int, within(1, 3600, unit="seconds")] = 30
    underlyings: Annotated[
        list[UnderlyingSettings],
        _each_once("{} is listed more than once; each underlying once, with its price and vol", lambda u: u.symbol),
    ] = setting(
        default_factory=lambda: [
            UnderlyingSettings(symbol="SPY", price=Decimal("600.00"), vol=0.18),
            UnderlyingSettings(symbol="QQQ", price=Decimal("520.00"), vol=0.24),
        ]
    )
    quote_max_age_seconds: Annotated[Int, within(1, 3600, unit="seconds")] = 120


class PaperSettings(Section):
    fee_per_contract: Annotated[Dec, within(0, 100)] = Decimal("0.65")
    slippage_ticks: Annotated[Int, within(0, 100)] = 0
    slippage_bps: Annotated[Dec, within(0, 10_000)] = Decimal(0)
    partial_fills: Flag = False


class WatcherSettings(Section):
    # The exit rules see a position's marks this often at most: a long throttle is a stop loss asleep.
    throttle_seconds: Annotated[Real, within(0, 300, unit="seconds")] = 1.0


_LIMITS = RiskLimits()  # the defaults live with the checks
Count = Annotated[Annotated[Int, within(0, off=True)] | None, OFF]
Money = Annotated[Annotated[Dec, within(0, off=True)] | None, OFF]


def _in_the_session(value: time) -> time:
    if not time(9, 30) < value < time(16, 0):
        raise ValueError(f'expected a New York time after 09:30 and before 16:00, such as "15:15", not {value:%H:%M}')
    return value


class RiskSettings(Section):
    """The desk's pre-trade limits (see bot.options.risk); `false` switches one off."""

    # 0 means zero: no contracts, no new positions, no premium (nothing is bought). A loss limit of 0 or a
    # spread limit of 0 would say nothing an operator means, so they are refused with a word about `false`.
    max_contracts_per_order: Count = _LIMITS.max_contracts_per_order
    max_open_positions: Count = _LIMITS.max_open_positions
    max_premium_per_position: Money = _LIMITS.max_premium_per_position
    max_premium_total: Money = _LIMITS.max_premium_total
    max_daily_loss: Annotated[Annotated[Dec, within(0, above=True, off=True)] | None, OFF] = _LIMITS.max_daily_loss
    market_hours_only: Flag = _LIMITS.market_hours_only
    no_entry_minutes_before_close: Annotated[Annotated[Int, within(0, 390, unit="minutes", off=True)] | None, OFF] = (
        _LIMITS.no_entry_minutes_before_close
    )
    no_buy_expiring_today_after: Annotated[ClockTime | None, OFF] = _LIMITS.no_buy_expiring_today_after
    # A spread is at most 200 % of its mid (a bid of 0).
    max_spread_pct: Annotated[Annotated[Dec, within(0, 200, above=True, off=True)] | None, OFF] = _LIMITS.max_spread_pct
    # The desk's net dollar delta either way (delta x contracts x multiplier x spot), and its vega in dollars per vol
    # point, after the buy; off by default.
    max_net_delta: Money = _LIMITS.max_net_delta
    max_vega: Money = _LIMITS.max_vega
    # On its expiry day, from this New York time (as long before an early close), a long position in the money is
    # closed ("close"), the admins are told ("alert"), or nothing ("off"): see bot/runtime/expiry_guard.py.
    expiry_guard: Annotated[Literal["close", "alert", "off"], OFF_MODE] = "close"
    expiry_guard_time: Annotated[ClockTime, After(_in_the_session)] = time(15, 15)

    def limits(self) -> RiskLimits:
        guard = ("expiry_guard", "expiry_guard_time")
        return RiskLimits(**{name: getattr(self, name) for name in self.fields if name not in guard})


Notify = Annotated[Literal["notify", "silent", "off"], OFF_MODE]


class DiscordSettings(Section):
    """Where the bot works in Discord and who may do what. Required only when DISCORD_TOKEN is set."""

    guild_id: Id | None = None
    trade_channel_id: Id | None = None
    admin_channel_id: Id | None = None
    trader_role_ids: list[Id] = setting(default_factory=list)
    admin_role_ids: list[Id] = setting(default_factory=list)
    eod_reset_time: ClockTime = time(16, 15)
    # Per kind of event: a normal message, a silent one (no push notification), or no update at all.
    notify: dict[ActionKind, Notify] = setting(
        default_factory=lambda: {
            ActionKind.OPEN: "notify",
            ActionKind.ADD: "silent",
            ActionKind.TRIM: "notify",
            ActionKind.CLOSE: "notify",
        }
    )
    charts: Flag = True  # a chart image on each position's message; off spares a slow machine the drawing
    # How long an /open or /add preview's Confirm stays good, on the desk's clock: later it answers that it expired.
    preview_seconds: Annotated[Int, within(5, 900, unit="seconds")] = 60


def _default_strategies() -> list[OpeningRangeBreakoutSettings | MeanReversionSettings]:
    return [
        OpeningRangeBreakoutSettings(name="spy-orb", underlying="SPY"),
        MeanReversionSettings(
            name="qqq-meanrev",
            underlying="QQQ",
            contracts=3,
            days_to_expiry=7,
            # A mean reversion takes its profit sooner and does not trail (as config/optiondesk.toml ships it).
            exits=ExitRuleSettings(
                profit_ladder=[(Decimal(25), Decimal(50)), (Decimal(50), Decimal(100))],
                stop_loss_pct=Decimal(35),
                trailing_stop_pct=None,
            ),
        ),
    ]


def _known_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None
    return name


class Settings(Section):
    """Every setting; `load_settings` reads them (bot/settings_sources.py says from where)."""

    storage_dir: Path | None = None
    timezone: Annotated[str, After(_known_zone)] = "America/New_York"
    executor: Literal["paper", "alpaca-paper", "alpaca-live"] = "paper"
    # The longest any executor may take over one order (then the unfilled rest is given up): a backstop for an
    # executor that stops answering, above the broker's own `broker.order_timeout_seconds`.
    order_timeout_seconds: Annotated[Real, within(0, 3600, above=True, unit="seconds")] = 120.0
    broker: BrokerSettings = setting(default_factory=BrokerSettings)
    discord: DiscordSettings = setting(default_factory=DiscordSettings)
    market: MarketSettings = setting(default_factory=MarketSettings)
    paper: PaperSettings = setting(default_factory=PaperSettings)
    watcher: WatcherSettings = setting(default_factory=WatcherSettings)
    risk: RiskSettings = setting(default_factory=RiskSettings)
    # A strategy's name keys its positions and its memory: two of one name would trade as neither.
    strategies: Annotated[
        list[StrategySettings],
        _each_once("more than one strategy is named {}; each needs its own name", lambda s: s.name),
    ] = setting(default_factory=_default_strategies)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.executor == "alpaca-live" and not self.broker.confirm_live:
            raise Refused(
                ("broker",),
                "executor alpaca-live trades real money; confirm with OPTIONDESK_BROKER__CONFIRM_LIVE=true "
                "(or [broker] confirm_live = true)",
            )

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class SettingsError(Exception):
    """A bad setting; the message is one line naming it."""


def unquoted_underlyings(settings: Settings, quoted: Collection[str], market: str) -> str | None:
    """The strategies whose underlying `market` does not quote, in a few words (they would wait for quotes in
    silence); None when every one is quoted."""
    missing = [f"{s.name} trades {s.underlying}" for s in settings.strategies if s.underlying not in quoted]
    if not missing:
        return None
    known = ", ".join(sorted(quoted)) or "nothing"
    return f"{'; '.join(missing)}, which {market} does not quote (it quotes {known})"


def config_file() -> Path:
    """The settings file: `$OPTIONDESK_CONFIG_FILE` when set (a test's, or a second desk's), else
    config/optiondesk.toml."""
    chosen = os.environ.get(CONFIG_FILE_VARIABLE, "").strip()
    return Path(chosen) if chosen else CONFIG_FILE


def load_settings() -> Settings:
    file = config_file()
    if file.exists() and not file.is_file():
        raise SettingsError(f"bad settings file {file}: not a file; make it the settings file or remove it")
    try:
        return check(Settings, raw_settings(Settings, file))
    except (ValueError, OSError) as error:  # TOML's and UTF-8's decode errors are ValueErrors
        if isinstance(error, Refused):
            raise SettingsError(f"bad setting {error.setting}: {error.message}{_source(error.loc, file)}") from None
        if isinstance(error, NotJson):
            raise SettingsError(str(error)) from None
        raise SettingsError(f"bad settings file {file}: {error}") from None


def _source(loc: Sequence[str | int], file: Path) -> str:
    """Where a bad value came from: the environment variable that set it, or the settings file."""
    names = [str(part) for part in loc]
    for length in range(len(names), 0, -1):
        variable = "OPTIONDESK_" + "__".join(names[:length]).upper()
        if any(name.upper() == variable for name in os.environ):
            return f" (from {variable})"
    import tomllib  # a bad setting's source: only a refusal reads the file again

    try:
        in_file = names[0] in tomllib.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        in_file = False
    return f" (in {file})" if in_file else ""


def discord_token() -> "SecretStr | None":
    """The bot token, from the environment only (never from a file, never logged)."""
    from pydantic import SecretStr  # a desk on Discord only

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
