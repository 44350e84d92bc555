"""What a broker adds to a desk: its executor, its quote feed, the order journal and the background work
(the trade-updates stream, orders left open by the last run, an optional reconcile at start-up)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from pathlib import Path

from bot.broker.alpaca import Alpaca
from bot.broker.alpaca_executor import AlpacaExecutor
from bot.broker.alpaca_quotes import AlpacaQuoteFeed
from bot.broker.reconcile_fetch import reconcile_day
from bot.broker.restart import JOURNAL_FILE, OrderJournal, follow_orders_left_open
from bot.options.clock import Clock, utc_now
from bot.options.order_manager import OptionsOrderManager
from bot.options.positions import Position
from bot.options.trade_ledger import TradeEvent
from bot.runtime.state_store import StateStore
from bot.settings import Settings
from bot.strategies.base import Strategy

log = logging.getLogger(__name__)

Worker = Callable[[], Awaitable[None]]


class BrokerLink:
    def __init__(self, settings: Settings, storage: Path, *, clock: Clock = utc_now) -> None:
        self.settings = settings
        self.storage = storage
        self.clock = clock
        self.alpaca = Alpaca(settings)
        config = settings.broker
        self.client = self.alpaca.trading_client()
        self.executor = AlpacaExecutor(
            self.client,
            self.alpaca.trade_stream() if config.use_stream else None,
            poll_interval=config.poll_interval_seconds,
            order_timeout=config.order_timeout_seconds,
            fee_per_contract=config.fee_per_contract,
        )
        self.feed = AlpacaQuoteFeed(self.alpaca.option_stream(), self.alpaca.stock_stream())
        self.journal = OrderJournal(storage / JOURNAL_FILE)
        log.info("broker: Alpaca %s", "paper trading" if self.alpaca.paper else "LIVE trading")

    def attach(self, manager: OptionsOrderManager) -> None:
        """Journal each order before it is sent; quote the contracts of open positions as they change."""
        manager.subscribe_orders(self.journal.on_order)

        async def held(event: TradeEvent, position: Position) -> None:
            self.feed.hold(p.contract.symbol for p in manager.open_positions())

        manager.subscribe(held)
        self.feed.hold(p.contract.symbol for p in manager.open_positions())

    def watch(self, strategies: Iterable[Strategy]) -> None:
        """Quote what the strategies watch (their underlyings) from the start: they ask only for contracts."""
        self.feed.subscribe(symbol for strategy in strategies for symbol in strategy.symbols())

    def workers(self, manager: OptionsOrderManager, store: StateStore) -> dict[str, Worker]:
        workers: dict[str, Worker] = {
            "broker stream": self.executor.run,
            "broker orders": partial(
                follow_orders_left_open, manager, self.executor, store, self.journal, self.clock()
            ),
        }
        if self.settings.broker.reconcile_on_start:
            workers["broker reconcile"] = self.reconcile_now
        return workers

    async def reconcile_now(self) -> None:
        now = self.clock()
        zone = self.settings.zone
        report = await asyncio.to_thread(
            reconcile_day,
            self.client,
            self.storage,
            now.astimezone(zone).date(),
            zone,
            now,
            self.settings.broker.fee_per_contract,
        )
        for line in report.lines():
            (log.info if report.ok else log.warning)("reconcile: %s", line)
