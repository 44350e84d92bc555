"""A paper order manager with pre-trade risk, on a clock and quotes the test moves, with one limit at a time."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.options.contracts import OptionContract
from bot.options.execution_paper import PaperExecutor
from bot.options.executor import Executor
from bot.options.order_manager import OptionsOrderManager
from bot.options.quotes import Quote, QuoteCache
from bot.options.risk import NEVER_SET, DeskState, RiskCheck, RiskLimits, RiskRefused, TradingState
from bot.options.trade_ledger import TradeLedger

# The bot under simcord, as the Discord tests build it (a desk with a trader, an admin and a member without a role).
from tests.discord.conftest import bots, clock, desk, simcord_bot, storage  # noqa: F401

NEW_YORK = ZoneInfo("America/New_York")
T0 = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)  # Wednesday 10:00 New York
SPY = OptionContract.parse("SPY   261127C00450000")
QQQ = OptionContract.parse("QQQ   261127P00400000")
ALL_OFF = RiskLimits(
    max_contracts_per_order=None,
    max_open_positions=None,
    max_premium_per_position=None,
    max_premium_total=None,
    max_daily_loss=None,
    market_hours_only=False,
    no_entry_minutes_before_close=None,
    no_buy_expiring_today_after=None,
    max_spread_pct=None,
)


def only(**limits: Any) -> RiskLimits:
    """Every limit off but the ones given."""
    return ALL_OFF._replace(**limits)


def new_york(*args: int) -> datetime:
    return datetime(*args, tzinfo=NEW_YORK)  # type: ignore[misc]


@dataclass
class RiskDesk:
    """The order manager under test, with the clock, quotes and trading state it sees."""

    quotes: QuoteCache
    ledger_file: Path
    ledger: TradeLedger
    now: datetime = T0
    state: DeskState = NEVER_SET
    manager: OptionsOrderManager = field(init=False)

    def build(
        self, limits: RiskLimits, executor: Callable[[PaperExecutor], Executor] = lambda paper: paper
    ) -> OptionsOrderManager:
        """The manager with `limits`, filling on paper (or through `executor` wrapped around the paper one)."""

        def current_state() -> DeskState:
            return self.state

        def now() -> datetime:
            return self.now

        risk = RiskCheck(limits, self.quotes.get, current_state)
        paper = PaperExecutor(self.quotes, clock=now)
        self.manager = OptionsOrderManager(executor(paper), self.ledger, clock=now, risk=risk)
        return self.manager

    def quote(self, contract: OptionContract, bid: str, ask: str) -> None:
        self.quotes.update(contract.symbol, Quote(bid=Decimal(bid), ask=Decimal(ask), ts=self.now))

    def set_state(self, state: TradingState) -> None:
        self.state = DeskState(state, "test", "operator", self.now)

    def ledger_bytes(self) -> bytes:
        return self.ledger_file.read_bytes() if self.ledger_file.exists() else b""


@pytest.fixture
def risk_desk(tmp_path: Path) -> Iterator[RiskDesk]:
    ledger_file = tmp_path / "options" / "trade_events.jsonl"
    ledger = TradeLedger.open(ledger_file)
    yield RiskDesk(QuoteCache(), ledger_file, ledger)
    ledger.close()


async def refused(risk_desk: RiskDesk, action) -> str:  # type: ignore[no-untyped-def]
    """Run a buy that must be refused; check nothing was sent or written, and give the sentence."""
    ledger_before, orders_before = risk_desk.ledger_bytes(), dict(risk_desk.manager.orders)
    with pytest.raises(RiskRefused) as caught:
        await action
    assert risk_desk.ledger_bytes() == ledger_before
    assert risk_desk.manager.orders == orders_before  # no order was even created, let alone sent
    return str(caught.value)
