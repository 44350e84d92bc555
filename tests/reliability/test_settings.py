"""Settings that mean one thing (issue 20): each way an operator editing config/optiondesk.toml or the environment
loosened a brake, switched a rule off or was met with silence, tried again. Settings come from a temporary TOML
file and a cleaned environment, never the machine's."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from bot import cli
from bot.options.contracts import OptionContract
from bot.options.positions import ActionKind, Position
from bot.options.risk import Buy, buy_refusal
from bot.paths import PROJECT_ROOT
from bot.runtime.desk import sim_market
from bot.settings import CONFIG_FILE_VARIABLE, MeanReversionSettings, Settings, SettingsError, load_settings
from tests.core.factories import T0, quote

SPY = OptionContract.parse("SPY   261127C00450000")
ONE_STRATEGY = "[[strategies]]\nkind = 'mean_reversion'\nname = 'mr'\nunderlying = 'SPY'\n"


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty settings file the settings are read from, and an environment without OPTIONDESK_ variables."""
    for name in list(os.environ):
        if name.upper().startswith("OPTIONDESK_"):
            monkeypatch.delenv(name)
    path = tmp_path / "optiondesk.toml"
    path.write_text("")
    monkeypatch.setenv(CONFIG_FILE_VARIABLE, str(path))
    return path


def loaded(config: Path, toml: str) -> Settings:
    config.write_text(toml)
    return load_settings()


def refusal(config: Path, toml: str) -> str:
    config.write_text(toml)
    with pytest.raises(SettingsError) as error:
        load_settings()
    text = str(error.value)
    assert "\n" not in text
    return text


def buy_under(settings: Settings) -> str | None:
    """What the desk's limits say to opening one contract of SPY at 1.10, at 10:00 New York on a trading day,
    with nothing open: every default limit lets it through."""
    position = Position(position_id="p", contract=SPY, strategy="mr")
    buy = Buy(position, 1, Decimal("1.10"), quote("1.00", "1.10"), [], Decimal(0), T0)
    return buy_refusal(settings.risk.limits(), buy)


# --- a limit at 0 means zero, wherever it is written; `false` (and only it) switches a limit off -----------------


@pytest.mark.parametrize("source", ["file", "environment"])
@pytest.mark.parametrize(
    ("limit", "sentence"),
    [
        ("max_open_positions", "Refused by the max open positions limit: 0 positions are open, the limit is 0."),
        ("max_contracts_per_order", "Refused by the max contracts per order limit: 1 contracts asked, the limit is 0."),
        ("max_premium_total", "Refused by the max total premium limit: 110.00 would be at risk across the desk"),
    ],
)
def test_a_limit_of_zero_stops_new_positions_from_the_file_and_the_environment(
    config: Path, monkeypatch: pytest.MonkeyPatch, source: str, limit: str, sentence: str
) -> None:
    if source == "file":
        config.write_text(f"[risk]\n{limit} = 0\n")
    else:
        monkeypatch.setenv(f"OPTIONDESK_RISK__{limit.upper()}", "0")

    refused = buy_under(load_settings())

    assert refused is not None and refused.startswith(sentence)


@pytest.mark.parametrize("source", ["file", "environment"])
def test_false_switches_a_limit_off_in_the_file_and_the_environment_alike(
    config: Path, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    if source == "file":
        config.write_text("[risk]\nmax_open_positions = false\nno_buy_expiring_today_after = false\n")
    else:
        monkeypatch.setenv("OPTIONDESK_RISK__MAX_OPEN_POSITIONS", "false")
        monkeypatch.setenv("OPTIONDESK_RISK__NO_BUY_EXPIRING_TODAY_AFTER", "false")

    settings = load_settings()

    assert settings.risk.max_open_positions is None and settings.risk.no_buy_expiring_today_after is None
    assert buy_under(settings) is None


@pytest.mark.parametrize("source", ["file", "environment"])
def test_false_is_off_for_a_setting_whose_words_include_off(
    config: Path, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    if source == "file":
        config.write_text("[risk]\nexpiry_guard = false\n[discord.notify]\nadd = false\n")
    else:
        monkeypatch.setenv("OPTIONDESK_RISK__EXPIRY_GUARD", "false")
        monkeypatch.setenv("OPTIONDESK_DISCORD__NOTIFY", '{"add": "false"}')

    settings = load_settings()

    assert settings.risk.expiry_guard == "off"
    assert settings.discord.notify[ActionKind.ADD] == "off"


@pytest.mark.parametrize(
    ("toml", "setting"),
    [
        ("[risk]\nmax_daily_loss = 0\n", "risk.max_daily_loss"),  # "a loss of 0" would refuse every buy all day
        ("[risk]\nmax_spread_pct = 0\n", "risk.max_spread_pct"),
        (ONE_STRATEGY + "[strategies.exits]\ntime_stop_minutes = 0\n", "strategies.0.exits.time_stop_minutes"),
        (ONE_STRATEGY + "[strategies.exits]\nstop_loss_pct = 0\n", "strategies.0.exits.stop_loss_pct"),
        ("[risk]\nmax_open_positions = 'off'\n", "risk.max_open_positions"),  # one spelling of off
    ],
)
def test_a_zero_or_a_word_that_means_nothing_is_refused_with_a_word_about_false(
    config: Path, toml: str, setting: str
) -> None:
    text = refusal(config, toml)
    assert text.startswith(f"bad setting {setting}: ") and "or false to switch it off" in text, text


# --- numbers finite and in the range of what they control, refused in one line naming the setting and the range ---


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        (
            "[watcher]\nthrottle_seconds = inf\n",
            "bad setting watcher.throttle_seconds: expected a number from 0 to 300 seconds, not inf",
        ),
        (
            "[watcher]\nthrottle_seconds = 301\n",
            "bad setting watcher.throttle_seconds: expected a number from 0 to 300 seconds, not 301",
        ),
        (
            ONE_STRATEGY + "[strategies.exits]\nprofit_ladder = [['30', '150']]\n",
            "bad setting strategies.0.exits.profit_ladder.0.1: expected a number above 0 and at most 100, not 150",
        ),
        (
            ONE_STRATEGY + "[strategies.exits]\nstop_loss_pct = '250'\n",
            "bad setting strategies.0.exits.stop_loss_pct: expected a number above 0 and at most 100, or false",
        ),
        (
            "[paper]\nfee_per_contract = '-0.65'\n",
            "bad setting paper.fee_per_contract: expected a number from 0 to 100, not -0.65",
        ),
        ("[paper]\nslippage_bps = nan\n", "bad setting paper.slippage_bps: expected a number from 0 to 10000, not NaN"),
        (
            ONE_STRATEGY + "entry_z = inf\n",
            "bad setting strategies.0.entry_z: expected a number above 0 and at most 10, not inf",
        ),
        (
            "[market]\nquote_max_age_seconds = 99999999\n",  # stale quotes would fill
            "bad setting market.quote_max_age_seconds: expected a number from 1 to 3600 seconds",
        ),
        ("order_timeout_seconds = -inf\n", "bad setting order_timeout_seconds: expected a number above 0"),
    ],
)
def test_a_number_out_of_its_range_is_one_line_naming_the_setting_and_the_range(
    config: Path, toml: str, expected: str
) -> None:
    assert refusal(config, toml).startswith(expected)


def test_a_profit_ladder_out_of_order_is_refused_at_load_by_the_exit_rules_themselves(config: Path) -> None:
    text = refusal(config, ONE_STRATEGY + "[strategies.exits]\nprofit_ladder = [['60', '50'], ['30', '100']]\n")
    assert text.startswith("bad setting strategies.0.exits: The profit ladder must be sorted by gain"), text


def test_a_ladder_selling_150_percent_ends_run_at_once_in_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTIONDESK_") and k != "DISCORD_TOKEN"}
    env[CONFIG_FILE_VARIABLE] = str(tmp_path / "no-settings-file.toml")
    env["OPTIONDESK_STRATEGIES"] = (
        '[{"kind": "opening_range_breakout", "name": "orb", "underlying": "SPY",'
        ' "exits": {"profit_ladder": [["30", "150"]]}}]'
    )

    # A generous bound on the process's end: it waited 60 s and more on an error line before.
    done = subprocess.run(
        [sys.executable, "-m", "bot", "run", "--storage", str(tmp_path / "storage")],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines() == [
        "optiondesk: bad setting strategies.0.exits.profit_ladder.0.1: expected a number above 0 and at most 100, "
        "not 150 (from OPTIONDESK_STRATEGIES)"
    ]


# --- booleans are booleans: `true` is never 1, 1 is never true ----------------------------------------------------


@pytest.mark.parametrize(
    ("toml", "setting"),
    [
        ("[watcher]\nthrottle_seconds = true\n", "watcher.throttle_seconds"),
        (ONE_STRATEGY + "contracts = true\n", "strategies.0.contracts"),
        ("[risk]\nmax_open_positions = true\n", "risk.max_open_positions"),
        ("[market]\nseed = true\n", "market.seed"),
    ],
)
def test_true_is_not_taken_for_a_number(config: Path, toml: str, setting: str) -> None:
    assert refusal(config, toml).startswith(f"bad setting {setting}: expected ")


@pytest.mark.parametrize(
    ("toml", "variable", "setting"),
    [
        ("[risk]\nmarket_hours_only = 0\n", None, "risk.market_hours_only"),
        ("[paper]\npartial_fills = 1\n", None, "paper.partial_fills"),
        # 1 confirmed trading real money.
        ("executor = 'alpaca-live'\n[broker]\nconfirm_live = 1\n", None, "broker.confirm_live"),
        ("", ("OPTIONDESK_BROKER__CONFIRM_LIVE", "yes"), "broker.confirm_live"),
        ("", ("OPTIONDESK_RISK__MARKET_HOURS_ONLY", "no"), "risk.market_hours_only"),
        ("", ("OPTIONDESK_DISCORD__CHARTS", "1"), "discord.charts"),
        # Read as seconds after midnight, 900 was 00:15: every same-day contract refused from then on.
        ("[risk]\nno_buy_expiring_today_after = 900\n", None, "risk.no_buy_expiring_today_after"),
    ],
)
def test_a_number_or_a_word_is_not_taken_for_a_boolean_or_a_time(
    config: Path, monkeypatch: pytest.MonkeyPatch, toml: str, variable: tuple[str, str] | None, setting: str
) -> None:
    if variable is not None:
        monkeypatch.setenv(*variable)
    assert refusal(config, toml).startswith(f"bad setting {setting}: expected ")


def test_true_and_false_are_read_from_the_environment(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPTIONDESK_RISK__MARKET_HOURS_ONLY", "false")
    monkeypatch.setenv("OPTIONDESK_PAPER__PARTIAL_FILLS", "True")

    settings = load_settings()

    assert settings.risk.market_hours_only is False and settings.paper.partial_fills is True


# --- strategies: names unique, underlyings quoted ------------------------------------------------------------------


def test_two_strategies_of_one_name_are_refused(config: Path) -> None:
    text = refusal(config, ONE_STRATEGY + ONE_STRATEGY.replace("mean_reversion", "opening_range_breakout"))
    assert text.startswith("bad setting strategies: more than one strategy is named mr"), text


def test_a_strategy_named_like_the_traders_own_positions_is_refused(config: Path) -> None:
    text = refusal(config, ONE_STRATEGY.replace("'mr'", "'Manual'"))
    assert text.startswith("bad setting strategies.0.name: 'Manual' is the name of the positions traders open"), text


def test_an_underlying_listed_twice_in_the_simulated_market_is_refused(config: Path) -> None:
    row = "[[market.underlyings]]\nsymbol = 'SPY'\nprice = '600'\nvol = 0.2\n"
    assert refusal(config, row + row).startswith("bad setting market.underlyings: SPY is listed more than once")


def test_a_strategy_on_an_underlying_the_simulated_market_does_not_quote_stops_the_demo_in_one_line(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config.write_text(ONE_STRATEGY.replace("SPY", "TSLA"))

    code = cli.main(["demo", "--storage", str(tmp_path / "storage")])

    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err == [
        "optiondesk: bad setting strategies: mr trades TSLA, which the simulated market ([[market.underlyings]]) "
        "does not quote (it quotes QQQ, SPY); add it there or change the strategy"
    ]


def test_a_broker_desk_is_quoted_by_the_broker_not_the_simulated_market() -> None:
    tsla = MeanReversionSettings(name="mr", underlying="TSLA")
    sim_market(Settings(executor="alpaca-paper", strategies=[tsla]), None)  # no refusal
    with pytest.raises(SettingsError, match="mr trades TSLA"):
        sim_market(Settings(executor="paper", strategies=[tsla]), None)


# --- every error about a settings file names the file --------------------------------------------------------------


def test_a_bad_value_names_the_file_or_the_variable_it_came_from(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert refusal(config, "[market]\nseed = 'three'\n").endswith(f"(in {config})")

    monkeypatch.setenv("OPTIONDESK_MARKET__SEED", "three")
    assert refusal(config, "").endswith("(from OPTIONDESK_MARKET__SEED)")


def test_a_list_in_the_environment_that_is_not_json_names_its_variable(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPTIONDESK_DISCORD__TRADER_ROLE_IDS", "[1, 2")
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert str(error.value) == (
        "bad setting discord.trader_role_ids: OPTIONDESK_DISCORD__TRADER_ROLE_IDS is not valid JSON"
    )


def test_a_settings_file_that_is_a_folder_is_named(config: Path) -> None:
    config.unlink()
    config.mkdir()
    with pytest.raises(SettingsError, match=f"^bad settings file {config}: not a file"):
        load_settings()


def test_a_settings_file_that_is_not_utf8_is_named(config: Path) -> None:
    config.write_bytes(b"[market]\nseed = 3  # caf\xe9\n")
    with pytest.raises(SettingsError, match=f"^bad settings file {config}: 'utf-8' codec"):
        load_settings()


# --- where the settings come from: the environment over the file, section by section ------------------------------


def test_the_environment_is_merged_into_the_files_sections(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPTIONDESK_RISK__MAX_OPEN_POSITIONS", "3")
    monkeypatch.setenv("optiondesk_paper__slippage_ticks", "2")  # any case
    monkeypatch.setenv("OPTIONDESK_CRASH_AT", "after-ledger:99")  # an OPTIONDESK_ name that is no setting

    settings = loaded(config, "[risk]\nmax_open_positions = 5\nmax_contracts_per_order = 7\n")

    assert (settings.risk.max_open_positions, settings.risk.max_contracts_per_order) == (3, 7)
    assert settings.paper.slippage_ticks == 2


def test_a_section_in_json_takes_the_variables_inside_it_too(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPTIONDESK_RISK__MAX_CONTRACTS_PER_ORDER", "2")
    monkeypatch.setenv("OPTIONDESK_RISK", '{"max_open_positions": 4, "max_contracts_per_order": 9}')
    monkeypatch.setenv("OPTIONDESK_DISCORD__TRADER_ROLE_IDS", "[11, 12]")

    settings = load_settings()

    assert (settings.risk.max_open_positions, settings.risk.max_contracts_per_order) == (4, 2)
    assert settings.discord.trader_role_ids == [11, 12]


def test_a_variable_naming_no_setting_inside_a_section_is_refused_by_its_name(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPTIONDESK_RISK__MAX_OPEN_POSITION", "3")  # a letter short

    with pytest.raises(SettingsError) as error:
        load_settings()

    assert str(error.value).startswith("bad setting risk.max_open_position: ")
    assert str(error.value).endswith("(from OPTIONDESK_RISK__MAX_OPEN_POSITION)")


@pytest.mark.parametrize(("text", "seed"), [("5.0", 5), (" 1_000 ", 1000), ("-0.00", 0), ("+7", 7), ("\u00a07", 7)])
def test_a_whole_number_is_read_from_its_text_as_before(
    config: Path, monkeypatch: pytest.MonkeyPatch, text: str, seed: int
) -> None:
    monkeypatch.setenv("OPTIONDESK_MARKET__SEED", text)

    assert load_settings().market.seed == seed


@pytest.mark.parametrize(
    ("toml", "setting"),
    [
        ("[market]\nseed = '\u0663'\n", "market.seed"),  # an Arabic-Indic 3: Python's int takes it, the desk did not
        ("[market]\nseed = '\uff15'\n", "market.seed"),  # a full-width 5
        ("[market]\nseed = '5.'\n", "market.seed"),
        ("[market]\nseed = 1e20\n", "market.seed"),  # a float past 64 bits is no count, fraction or not
        ("[discord]\nguild_id = 1e300\n", "discord.guild_id"),
        ("[risk]\nmax_open_positions = '\u0663.0'\n", "risk.max_open_positions"),
        ("[watcher]\nthrottle_seconds = '\u0663'\n", "watcher.throttle_seconds"),
        ("[watcher]\nthrottle_seconds = '5.0\u0660'\n", "watcher.throttle_seconds"),
    ],
)
def test_a_number_in_other_digits_or_past_64_bits_is_refused(config: Path, toml: str, setting: str) -> None:
    assert refusal(config, toml).startswith(f"bad setting {setting}: expected a ")


@pytest.mark.parametrize("name", ["e\u0301t\u00e9", "\u0928\u092e\u0938\u094d\u0924\u0947", "x\u200dy", "orb_2-b"])
def test_a_strategy_name_takes_letters_of_any_script_with_their_marks(config: Path, name: str) -> None:
    settings = loaded(config, f"[[strategies]]\nkind = 'mean_reversion'\nname = '{name}'\nunderlying = 'SPY'\n")

    assert settings.strategies[0].name == name


@pytest.mark.parametrize("name", ["a b", "a.b", "x\u00bd", "a\\n"])
def test_a_strategy_name_of_other_characters_is_refused_saying_what_it_takes(config: Path, name: str) -> None:
    message = refusal(config, f"[[strategies]]\nkind = 'mean_reversion'\nname = \"{name}\"\nunderlying = 'SPY'\n")

    assert message.startswith("bad setting strategies.0.name: expected letters, digits, _ and -, not ")


def test_a_bad_value_is_named_before_a_misspelt_setting_beside_it_which_is_named_too(config: Path) -> None:
    message = refusal(config, "[risk]\nmax_open_positon = 3\nmax_daily_loss = -5\n")
    assert message.startswith("bad setting risk.max_daily_loss: expected a number above 0")
    assert "(and risk.max_open_positon: no such setting)" in message

    message = refusal(config, "[[strategies]]\nkind = 'mean_reversion'\nnmae = 'mr'\nunderlying = 'SPY'\n")
    assert message.startswith("bad setting strategies.0.name: required")
    assert "strategies.0.nmae: no such setting" in message


def test_a_number_given_for_a_time_of_day_is_named_in_the_refusal(config: Path) -> None:
    text = refusal(config, "[risk]\nno_buy_expiring_today_after = 54000\n")
    expected = 'bad setting risk.no_buy_expiring_today_after: expected a time of day such as "15:00", not 54000'
    assert text.startswith(expected)
