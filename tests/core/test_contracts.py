from datetime import date
from decimal import Decimal

import pytest

from bot.options.contracts import OptionContract, Right
from bot.options.errors import TradeError


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
    ],
)
def test_bad_symbols_raise_a_clear_error_naming_the_symbol(symbol):
    with pytest.raises(TradeError) as raised:
        OptionContract.parse(symbol)

    assert repr(symbol) in str(raised.value)


def test_non_text_symbol_is_refused():
    with pytest.raises(TradeError):
        OptionContract.parse(None)  # type: ignore[arg-type]
