import copy
import pickle
import re
from datetime import date
from decimal import Decimal

import pytest

from bot.options.contracts import OptionContract, Right
from bot.options.errors import TradeError
from bot.settings import CONFIG_FILE_VARIABLE, SettingsError, load_settings


@pytest.mark.parametrize(
    ("symbol", "underlying", "expiry", "right", "strike"),
    [
        ("SPY   261127C00450000", "SPY", date(2026, 11, 27), Right.CALL, Decimal(450)),
        ("SPY261127C00450000", "SPY", date(2026, 11, 27), Right.CALL, Decimal(450)),
        ("spy261127p00450500", "SPY", date(2026, 11, 27), Right.PUT, Decimal("450.5")),
        ("BRK.B 270115C00000500", "BRK.B", date(2027, 1, 15), Right.CALL, Decimal("0.5")),
        ("GOOGL1261218P01234567", "GOOGL1", date(2026, 12, 18), Right.PUT, Decimal("1234.567")),
    ],
)
def test_parses_padded_and_compact_occ_symbols(symbol, underlying, expiry, right, strike):
    contract = OptionContract.parse(symbol)

    assert (contract.underlying, contract.expiry, contract.right, contract.strike) == (
        underlying,
        expiry,
        right,
        strike,
    )
    assert contract.multiplier == 100


def test_prints_the_standard_padded_symbol_and_the_compact_one():
    contract = OptionContract.parse("SPY261127C00450000")

    assert contract.symbol == "SPY   261127C00450000"
    assert len(contract.symbol) == 21
    assert contract.compact == "SPY261127C00450000"
    assert str(contract) == contract.symbol
    assert OptionContract.parse(contract.symbol) == contract


def test_label_is_a_traders_short_name():
    assert OptionContract.parse("SPY   261127P00450500").label == "SPY 2026-11-27 450.5P"


def test_multiplier_can_be_set():
    assert OptionContract.parse("SPY261127C00450000", multiplier=10).multiplier == 10


@pytest.mark.parametrize(
    "symbol",
    [
        "",
        "SPY",
        "SPY   261127X00450000",  # right must be C or P
        "SPY   261327C00450000",  # month 13
        "SPY   260230C00450000",  # 30 February
        "SPY   261127C0045000",  # strike has 7 digits
        "SPY   261127C00000000",  # zero strike
        "TOOLONGX261127C00450000",
        "1SPY  261127C00450000",
        # full-width digits: int() reads them, OCC has none
        "SPY   \uff12\uff16\uff11\uff12\uff11\uff18C\uff10\uff10\uff16\uff10\uff10\uff10\uff10\uff10",
        "SPY   \u0662\u0666\u0661\u0662\u0661\u0668C00600000",  # Arabic-Indic digits
        "SP\u0131261218C00600000",  # a dotless i that upper() would make an I
    ],
)
def test_bad_symbols_raise_a_clear_error_naming_the_symbol(symbol):
    with pytest.raises(TradeError) as raised:
        OptionContract.parse(symbol)

    assert repr(symbol) in str(raised.value)


def test_non_text_symbol_is_refused():
    with pytest.raises(TradeError):
        OptionContract.parse(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("underlying", "expiry", "strike", "says"),
    [
        ("SPY", date(2026, 11, 27), Decimal("12.3456"), "A strike of 12.3456 cannot be written"),  # 4 decimals
        ("SPY", date(2026, 11, 27), Decimal(100000), "A strike of 100000 cannot be written"),  # 9 digits
        ("SPY", date(2026, 11, 27), Decimal(0), "A strike of 0 cannot"),
        ("SPY", date(2026, 11, 27), Decimal(-450), "A strike of -450 cannot"),
        ("SPY", date(2026, 11, 27), Decimal("NaN"), "A strike of NaN cannot"),
        ("GOOGLEX", date(2026, 11, 27), Decimal(450), "'GOOGLEX' cannot be an option's root"),  # 7 characters
        ("spy", date(2026, 11, 27), Decimal(450), "'spy' cannot be an option's root"),  # parses back as SPY
        ("", date(2026, 11, 27), Decimal(450), "'' cannot be an option's root"),
        ("1SPY", date(2026, 11, 27), Decimal(450), "'1SPY' cannot be an option's root"),
        ("SP Y", date(2026, 11, 27), Decimal(450), "'SP Y' cannot be an option's root"),
        ("SPY", date(1999, 12, 17), Decimal(450), "An expiry on 1999-12-17 cannot"),  # yy 99 reads as 2099
        ("SPY", date(2100, 1, 15), Decimal(450), "An expiry on 2100-01-15 cannot"),
    ],
)
def test_a_contract_its_occ_symbol_cannot_carry_is_refused_in_a_sentence(underlying, expiry, strike, says):
    with pytest.raises(TradeError, match=re.escape(says)) as raised:
        OptionContract(underlying, expiry, Right.CALL, strike)

    assert str(raised.value).endswith(".") and "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("underlying", "expiry", "strike"),
    [
        ("SPY", date(2026, 11, 27), Decimal("99999.999")),
        ("SPY", date(2026, 11, 27), Decimal("0.001")),
        ("SPY", date(2026, 11, 27), Decimal("450.5000")),  # trailing zeros are not decimals
        ("GOOGL1", date(2000, 1, 21), Decimal("1234.567")),
        ("BRK.B", date(2099, 12, 18), Decimal(1)),
        ("X", date(2026, 11, 27), Decimal(5)),
    ],
)
def test_a_contract_at_the_edges_of_the_occ_form_round_trips(underlying, expiry, strike):
    contract = OptionContract(underlying, expiry, Right.PUT, strike)

    assert OptionContract.parse(contract.symbol) == contract
    assert OptionContract.parse(contract.compact) == contract


def test_a_strategy_on_an_underlying_no_option_symbol_can_carry_is_a_bad_setting(tmp_path, monkeypatch):
    config = tmp_path / "optiondesk.toml"
    config.write_text("[[strategies]]\nkind = 'mean_reversion'\nname = 'mr'\nunderlying = 'spy'\n")
    monkeypatch.setenv(CONFIG_FILE_VARIABLE, str(config))

    with pytest.raises(SettingsError) as raised:
        load_settings()

    assert str(raised.value).startswith("bad setting strategies.0.underlying: 'spy' cannot be an option's root")


def test_a_changed_or_copied_contract_is_made_by_the_constructor_checked_and_with_its_own_symbol():
    contract = OptionContract.parse("SPY261127C00450000")

    assert contract._replace(strike=Decimal("451.5")).symbol == "SPY   261127C00451500"
    with pytest.raises(TradeError, match=re.escape("A strike of 0.0001 cannot be written")):
        contract._replace(strike=Decimal("0.0001"))
    with pytest.raises(TypeError):
        contract._replace(symbol="QQQ   261127C00450000")  # the symbol is the fields', never set
    assert copy.deepcopy(contract) == pickle.loads(pickle.dumps(contract)) == contract
    assert {contract: "quote"}[OptionContract.parse("SPY   261127C00450000")] == "quote"
