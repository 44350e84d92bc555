"""Shared factories: a contract, a quote cache, a ledger in tmp_path, a paper order manager; and settings that do not
depend on the machine the tests run on."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from bot.options.contracts import OptionContract, Right
from bot.options.execution_paper import PaperConfig, PaperExecutor
from bot.options.order_manager import OptionsOrderManager
from bot.options.quotes import QuoteCache
from bot.options.trade_ledger import TradeLedger
from bot.settings import CONFIG_FILE_VARIABLE
from tests.core.factories import T0

# The machine's own settings never reach a test: neither its OPTIONDESK_ variables nor config/optiondesk.toml (whose
# values are the operator's). A test that wants a setting sets it; `python -m bot` children inherit the same.
_MACHINE_VARIABLES = ("DISCORD_TOKEN", "APCA_API_KEY_ID", "APCA_API_SECRET_KEY")


@pytest.fixture(autouse=True)
def settings_of_the_test_only(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    for name in list(os.environ):
        if name.upper().startswith("OPTIONDESK_") or name in _MACHINE_VARIABLES:
            monkeypatch.delenv(name)
    monkeypatch.setenv(CONFIG_FILE_VARIABLE, str(tmp_path_factory.getbasetemp() / "no-settings-file.toml"))


@pytest.fixture
def spy() -> OptionContract:
    return OptionContract("SPY", date(2026, 11, 27), Right.CALL, Decimal(450))


@pytest.fixture
def quotes() -> QuoteCache:
    return QuoteCache()


@pytest.fixture
def ledger_file(tmp_path: Path) -> Path:
    return tmp_path / "options" / "trade_events.jsonl"


@pytest.fixture
def ledger(ledger_file: Path) -> Iterator[TradeLedger]:
    ledger = TradeLedger.open(ledger_file)
    yield ledger
    ledger.close()


@pytest.fixture
def paper_config() -> PaperConfig:
    return PaperConfig()


@pytest.fixture
def manager(quotes: QuoteCache, ledger: TradeLedger, paper_config: PaperConfig) -> OptionsOrderManager:
    return OptionsOrderManager(PaperExecutor(quotes, paper_config, clock=lambda: T0), ledger, clock=lambda: T0)
