"""The trading desk assembled from the settings: ledger, paper executor, order manager, strategies,
position watcher, notifier and expiry settlement — the same pieces for the demo day, `run` and Discord.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from bot.options.execution_paper import PaperConfig, PaperExecutor
from bot.options.executor import Executor
from bot.options.inbox import LatestByKey
from bot.options.market_data import QuoteFeed
from bot.options.market_hours import session_close
from bot.options.order_manager import OptionsOrderManager
from bot.options.position_watcher import PositionWatcher
from bot.options.positions import ActionKind, Position
from bot.options.quotes import Quote, QuoteCache
from bot.options.risk import DeskState, RiskCheck, TradingState
from bot.options.trade_ledger import LedgerError, LedgerGone, TradeEvent, TradeLedger
from bot.runtime.message_board import Board, BoardSink
from bot.runtime.message_map import MessageMap, out_of_date
from bot.runtime.options_trade_notifier import OptionsTradeNotifier
from bot.runtime.resume import ResumeReport, start_up
from bot.runtime.state_store import StateStore
from bot.runtime.strategy_runner import StrategyRunner
from bot.runtime.trading_journal import journal_path
from bot.runtime.trading_state import RISK, TradingSwitch, guard_daily_loss
from bot.settings import Notify, Settings
from bot.strategies.base import Strategy, StrategyDesk
from bot.strategies.options.exit_rules import expiry_settlement_price, is_expired
from bot.strategies.options.mean_reversion import MeanReversion
from bot.strategies.options.opening_range import OpeningRangeBreakout

if TYPE_CHECKING:
    from bot.broker.link import BrokerLink

log = logging.getLogger(__name__)

MESSAGE_FILE = "message_ids.json"


STRATEGY_KINDS: dict[str, Callable[..., Strategy]] = {
    "opening_range_breakout": OpeningRangeBreakout,
    "mean_reversion": MeanReversion,
}


def build_strategies(settings: Settings) -> list[Strategy]:
    return [STRATEGY_KINDS[config.kind](config) for config in settings.strategies]


@dataclass
class Desk:
    ledger: TradeLedger
    store: StateStore
    resumed: ResumeReport
    messages: MessageMap
    quotes: QuoteCache
    manager: OptionsOrderManager
    notifier: OptionsTradeNotifier
    watcher: PositionWatcher
    runner: StrategyRunner
    switch: TradingSwitch
    broker: BrokerLink | None = None
    _expiring: LatestByKey[str, datetime] = field(default_factory=LatestByKey)
    _next_expiry: datetime | None = None

    def __post_init__(self) -> None:
        self.quotes.subscribe(self._on_quote)
        self.manager.subscribe(self._on_fill)
        self._find_next_expiry()

    async def _on_fill(self, event: TradeEvent, position: Position) -> None:
        self._find_next_expiry()

    def _find_next_expiry(self) -> None:
        closes = [session_close(p.contract.expiry) for p in self.manager.open_positions()]
        self._next_expiry = min(closes, default=None)

    def _on_quote(self, symbol: str, quote: Quote) -> None:
        # Expiry is noticed through the market clock in the quotes: the first quote at or after 16:00 New
        # York on a position's expiry date queues its settlement. Cheap unless an expiry has come.
        if quote.ts is not None and self._next_expiry is not None and quote.ts >= self._next_expiry:
            self.queue_expired(quote.ts)

    def queue_expired(self, now: datetime) -> None:
        for position in self.manager.open_positions():
            if is_expired(position.contract, now):
                self._expiring.put(position.position_id, now)

    async def settle_expired(self) -> None:
        """Close positions past their expiry at intrinsic value (0 when out of the money)."""
        for position_id in self._expiring.take_all():
            position = self.manager.get(position_id)
            spot = self.quotes.get(position.contract.underlying)
            if not position.is_open or spot is None or spot.mark is None:
                continue
            price = expiry_settlement_price(position.contract, spot.mark)
            log.info("position %s expired; settling at %s", position_id, price)
            await self.manager.settle_expiry(position_id, price)

    async def step(self) -> None:
        """Handle everything the last quotes set off, in a fixed order (the demo day's deterministic step)."""
        for _ in range(10):  # actions can set off more work (a fill, then a message), never without end
            await self.runner.process_all()
            await self.watcher.deliver_all()
            await self.settle_expired()
            await self.notifier.flush()
            if not (self.runner.pending() or self.watcher.pending() or len(self._expiring)):
                return

    def resume_messages(self, since: datetime | None, *, posted_only: bool = False) -> None:
        """Queue every position whose message misses events after `since` (a restart delivers what was
        pending; earlier days' positions wait for their next update); `posted_only`: only edits."""
        # The lines replayed at start-up hold every position that can still need a message.
        pending = out_of_date(self.resumed.events, self.messages, since)
        if posted_only:
            pending = {pid: event for pid, event in pending.items() if pid in self.messages.messages}
        if pending:
            log.info("%d position messages are out of date; updating them", len(pending))
        self.notifier.resume(self.notifier.view(self.manager.get(pid), event) for pid, event in pending.items())

    def workers(self, feed: QuoteFeed) -> dict[str, Callable[[], Awaitable[None]]]:
        """The background tasks of a live desk, by name: the feed, the notifier, expiry, and for each
        strategy its entry worker and its watcher worker."""
        workers: dict[str, Callable[[], Awaitable[None]]] = {
            "feed": partial(feed.run, self.quotes),
            "notifier": self.notifier.run,
            "expiry": self.run_expiry,
            "trading state": self.switch.watch,
        }
        for name in self.runner.strategies:
            workers[f"strategy {name}"] = partial(self.runner.run, name)
            workers[f"watcher {name}"] = partial(self.watcher.run, name)
        if self.broker is not None:
            workers.update(self.broker.workers(self.manager, self.store))
        return workers

    async def run_expiry(self) -> None:
        """Settlement worker for the live runs, until cancelled."""
        while True:
            await self._expiring.wait()
            await self.settle_expired()

    async def close(self) -> None:
        await self.store.close()
        self.ledger.close()


def halt_when_gone(switch: TradingSwitch) -> Callable[[LedgerError], None]:
    """A ledger failure listener: the ledger moved, replaced or deleted under the desk halts it until an admin
    has put it back and resumed. (A full disk does not: trades are refused only until it can be written.)"""
    halting: set[asyncio.Task[DeskState]] = set()

    def halted(task: asyncio.Task[DeskState]) -> None:
        halting.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("could not halt the desk after the ledger was gone: %s", task.exception())

    def on_failure(error: LedgerError) -> None:
        if not isinstance(error, LedgerGone) or halting or switch.current.state is TradingState.HALTED:
            return
        task = asyncio.ensure_future(switch.set(TradingState.HALTED, str(error), RISK))
        halting.add(task)
        task.add_done_callback(halted)

    return on_failure


async def open_desk(
    settings: Settings,
    storage: Path,
    *,
    board: Board,
    messages: MessageMap,
    notify: Callable[[], dict[ActionKind, Notify]],
    clock: Callable[[], datetime],
    watch: Callable[[QuoteCache, Iterable[str]], None],
    throttle_clock: Callable[[], float],
    broker: BrokerLink | None = None,
) -> Desk:
    """Open the ledger (repairing a torn tail), rebuild and verify the positions from it, bring the state
    store in line, and wire everything up.

    `watch(quotes, symbols)` asks the feed to quote more contracts; `clock` is the market clock. With a
    `broker`, orders go to it instead of the paper executor.
    """
    ledger, store, resumed = await start_up(storage, now=clock(), zone=settings.zone, orders_at_broker=bool(broker))
    try:
        return await _assemble(
            settings,
            storage,
            ledger,
            store,
            resumed,
            board=board,
            messages=messages,
            notify=notify,
            clock=clock,
            watch=watch,
            throttle_clock=throttle_clock,
            broker=broker,
        )
    except BaseException:
        # A start that fails (a bad stored value, a strategy that cannot be built, a stop) leaves nothing open:
        # aiosqlite's thread would keep the process alive.
        await store.close()
        ledger.close()
        raise


async def _assemble(
    settings: Settings,
    storage: Path,
    ledger: TradeLedger,
    store: StateStore,
    resumed: ResumeReport,
    *,
    board: Board,
    messages: MessageMap,
    notify: Callable[[], dict[ActionKind, Notify]],
    clock: Callable[[], datetime],
    watch: Callable[[QuoteCache, Iterable[str]], None],
    throttle_clock: Callable[[], float],
    broker: BrokerLink | None,
) -> Desk:
    highs = await store.highs()
    positions = resumed.positions
    quotes = QuoteCache(max_age=timedelta(seconds=settings.market.quote_max_age_seconds))
    paper = settings.paper
    executor: Executor = PaperExecutor(
        quotes,
        PaperConfig(
            fee_per_contract=paper.fee_per_contract,
            slippage_ticks=paper.slippage_ticks,
            slippage_bps=paper.slippage_bps,
            partial_fills=paper.partial_fills,
        ),
        clock=clock,
    )
    if broker is not None:
        executor = broker.executor
    switch = TradingSwitch(journal_path(storage), clock, resumed.trading)
    ledger.subscribe_failures(halt_when_gone(switch))
    limits = settings.risk.limits()
    risk = RiskCheck(limits, quotes.get, lambda: switch.current)
    manager = OptionsOrderManager(
        executor,
        ledger,
        clock=clock,
        positions=positions.values(),
        order_timeout=settings.order_timeout_seconds,
        risk=risk,
    )
    if broker is not None:
        await broker.attach(manager, store)
    manager.record_orders(store)  # each order's intent is on disk before it is sent; no fill waits for the store
    notifier = OptionsTradeNotifier(BoardSink(board, messages, notify), quotes)
    manager.subscribe(notifier.on_fill)
    manager.subscribe_orders(notifier.on_order)
    manager.subscribe(guard_daily_loss(switch, manager.all_positions, limits))
    strategies = build_strategies(settings)
    for strategy in strategies:
        strategy.bind(
            StrategyDesk(
                strategy.name, manager, quotes, clock=clock, watch=lambda symbols: watch(quotes, symbols), memory=store
            )
        )
        strategy.resume(highs)
    if broker is not None:
        broker.watch(strategies)
    watcher = PositionWatcher(
        manager,
        quotes,
        {s.name: s for s in strategies},
        interval=settings.watcher.throttle_seconds,
        clock=throttle_clock,
    )
    watch(quotes, [p.contract.symbol for p in manager.open_positions()])
    runner = StrategyRunner(strategies, quotes)
    return Desk(ledger, store, resumed, messages, quotes, manager, notifier, watcher, runner, switch, broker)
