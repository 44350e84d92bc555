"""What a broker adds to a desk: its executor, its quote feed and the background work (the trade-updates stream,
and the start-up: orders left open by the last run, an optional reconcile).

New orders are held from the moment the desk is built until the start-up is done (or has taken
`resume_timeout_seconds`): the orders left open are read before this run can send one, and a strategy
never trades on a position whose last order is still being looked up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from pathlib import Path

from alpaca.common.exceptions import APIError
from alpaca.trading.models import Asset
from requests import RequestException

from bot.broker.alpaca import Alpaca
from bot.broker.alpaca_executor import AlpacaExecutor
from bot.broker.alpaca_quotes import AlpacaQuoteFeed
from bot.broker.reconcile_fetch import reconcile_day
from bot.broker.restart import follow_orders_left_open, orders_left_open, take_old_journal
from bot.options.clock import Clock, utc_now
from bot.options.order_manager import OptionsOrderManager
from bot.options.order_record import OrdersInFlight, StoredOrder
from bot.options.positions import Position
from bot.options.trade_ledger import TradeEvent
from bot.settings import Settings, SettingsError
from bot.strategies.base import Strategy

log = logging.getLogger(__name__)

Worker = Callable[[], Awaitable[None]]
# What a trader is told while the start-up holds new orders (a Discord command cannot wait for it).
RESUMING = "The desk is still taking up the last run's orders at the broker; try again in a moment."


class BrokerLink:
    def __init__(
        self,
        settings: Settings,
        storage: Path,
        *,
        clock: Clock = utc_now,
        alert: Callable[[str], None] | None = None,
    ) -> None:
        """`alert(text)`: tell the admins (and log) that the start-up took too long; by default only logged."""
        self.settings = settings
        self.storage = storage
        self.clock = clock
        self.alert = alert or (lambda text: log.error("broker: %s", text))
        self._left_open: list[StoredOrder] = []
        self._starting = False
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
        log.info("broker: Alpaca %s", "paper trading" if self.alpaca.paper else "LIVE trading")

    async def attach(self, manager: OptionsOrderManager, store: OrdersInFlight) -> None:
        """Quote the contracts of open positions as they change. Before any order can go out: read the orders the
        last run left open, and hold new orders when the start-up has work to do (see `start_up`)."""
        await self.check_underlyings()
        await take_old_journal(self.storage, store)
        self._left_open = await orders_left_open(manager, store, self.clock())
        self._starting = bool(self._left_open) or self.settings.broker.reconcile_on_start
        if self._starting:
            manager.hold_orders(RESUMING)

        async def held(event: TradeEvent, position: Position) -> None:
            self.feed.hold(p.contract.symbol for p in manager.open_positions())

        manager.subscribe(held)
        self.feed.hold(p.contract.symbol for p in manager.open_positions())

    async def check_underlyings(self) -> None:
        """Each strategy's underlying must be an asset Alpaca trades, or the start stops in one line (the strategy
        would wait for quotes in silence). Alpaca out of reach is not a bad setting: said, and the start goes on."""
        for strategy in self.settings.strategies:
            symbol = strategy.underlying
            try:
                asset = await asyncio.to_thread(self.client.get_asset, symbol)
            except APIError as error:
                if error.status_code == 404:
                    raise SettingsError(
                        f"bad setting strategies: {strategy.name} trades {symbol}, which Alpaca does not know; "
                        "change the strategy's underlying"
                    ) from None
                log.warning("broker: could not check that Alpaca trades %s (%s)", symbol, error.status_code)
                continue
            except RequestException as error:
                log.warning("broker: could not check that Alpaca trades %s (%s)", symbol, type(error).__name__)
                continue
            if isinstance(asset, Asset) and not asset.tradable:
                raise SettingsError(
                    f"bad setting strategies: {strategy.name} trades {symbol}, which Alpaca does not trade now"
                )

    def watch(self, strategies: Iterable[Strategy]) -> None:
        """Quote what the strategies watch (their underlyings) from the start: they ask only for contracts."""
        self.feed.subscribe(symbol for strategy in strategies for symbol in strategy.symbols())

    def workers(self, manager: OptionsOrderManager, store: OrdersInFlight) -> dict[str, Worker]:
        return {"broker stream": self.executor.run, "broker orders": partial(self.start_up, manager, store)}

    async def start_up(self, manager: OptionsOrderManager, store: OrdersInFlight) -> None:
        """Follow the orders the last run left open and reconcile (when configured), then release new orders;
        after `resume_timeout_seconds` release them anyway (the admins are told) while this goes on."""
        if not self._starting:
            return
        self._starting = False  # once: a restarted worker must not follow the same orders a second time
        orders, self._left_open = self._left_open, []
        work = asyncio.create_task(self._start_up(manager, store, orders), name="broker start-up")
        try:
            timeout = self.settings.broker.resume_timeout_seconds
            done, _ = await asyncio.wait([work], timeout=timeout)
            if not done:
                self.alert(
                    f"the last run's orders at Alpaca were not all taken up within {timeout:g} s "
                    "([broker] resume_timeout_seconds); trading is open again while they are still followed"
                )
            manager.release_orders()
            await work
        finally:  # also when the desk closes meanwhile, or the start-up failed
            manager.release_orders()
            work.cancel()

    async def _start_up(self, manager: OptionsOrderManager, store: OrdersInFlight, orders: list[StoredOrder]) -> None:
        await follow_orders_left_open(manager, self.executor, store, orders, self.clock())
        if self.settings.broker.reconcile_on_start:
            try:
                await self.reconcile_now()
            except (APIError, RequestException) as error:
                log.warning(
                    "reconcile at start-up: could not read the fills from Alpaca (%s); run python -m bot reconcile",
                    type(error).__name__,
                )

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
