"""Shared factories: a contract, a quote cache, a ledger in tmp_path, a paper order manager."""

from __future__ import annotations

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
from tests.core.factories import T0


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
