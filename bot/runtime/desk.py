"""The trading desk assembled from the settings: ledger, paper executor, order manager, strategies,
position watcher, notifier and expiry settlement — the same pieces for the demo day, `run` and Discord.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from bot.options.chain import ChainSource, SimulatedChain
from bot.options.clock import Clock, DeskClock, desk_clock
from bot.options.execution_paper import PaperConfig, PaperExecutor
from bot.options.executor import Executor
from bot.options.greeks import GreeksSource
from bot.options.market_data import PriceHistory, QuoteFeed
from bot.options.market_hours import MARKET_TZ, session_close, trading_day
from bot.options.order_manager import OptionsOrderManager
from bot.options.orders import OrderRequest
from bot.options.position_watcher import PositionWatcher
from bot.options.positions import ActionKind, Position
from bot.options.pricing import RATE
from bot.options.quotes import Quote, QuoteCache
from bot.options.risk import DeskState, RiskCheck, TradingState
from bot.options.sim_market import SimulatedFeed, SimulatedMarket, Sleep, UnderlyingSpec
from bot.options.trade_ledger import LedgerError, LedgerGone, TradeEvent, TradeLedger
from bot.runtime.desk_greeks import greeks_now, greeks_source
from bot.runtime.expiry_guard import Alert, ExpiryGuard
from bot.runtime.message_board import Board, BoardSink
from bot.runtime.message_map import MESSAGE_FILE, MessageMap, out_of_date
from bot.runtime.options_trade_notifier import OptionsTradeNotifier
from bot.runtime.resume import ResumeReport, start_up
from bot.runtime.state_store import StateStore
from bot.runtime.strategy_runner import StrategyRunner
from bot.runtime.trading_journal import journal_path
from bot.runtime.trading_state import RISK, TradingSwitch, guard_daily_loss
from bot.settings import Notify, Settings, SettingsError, unquoted_underlyings
from bot.strategies.base import Strategy, StrategyDesk
from bot.strategies.options.exit_rules import expiry_settlement_price
from bot.strategies.options.mean_reversion import MeanReversion
from bot.strategies.options.opening_range import OpeningRangeBreakout

if TYPE_CHECKING:
    from bot.broker.link import BrokerLink

log = logging.getLogger(__name__)

NOTIFIER = "notifier"  # the worker that delivers position messages (a Discord desk starts it once linked)


STRATEGY_KINDS: dict[str, Callable[..., Strategy]] = {
    "opening_range_breakout": OpeningRangeBreakout,
    "mean_reversion": MeanReversion,
}


def sim_market(settings: Settings, seed: int | None) -> SimulatedMarket:
    specs = [UnderlyingSpec(u.symbol, u.price, u.vol) for u in settings.market.underlyings]
    # On the paper executor this market quotes the desk (a broker's desk is quoted by the broker).
    where = "the simulated market ([[market.underlyings]])"
    if settings.executor == "paper" and (problem := unquoted_underlyings(settings, {s.symbol for s in specs}, where)):
        raise SettingsError(f"bad setting strategies: {problem}; add it there or change the strategy")
    tick = timedelta(seconds=settings.market.tick_seconds)
    return SimulatedMarket(specs, settings.market.seed if seed is None else seed, tick=tick, rate=RATE)


def build_strategies(settings: Settings) -> list[Strategy]:
    return [STRATEGY_KINDS[config.kind](config) for config in settings.strategies]


@dataclass
class Desk:
    """One desk: what the builder (`open_desk`) assembled, on one clock; the same for the demo, `run`, Discord and
    backtests, which differ only in the clock, the feed, the executor and the board they hand in."""

    clock: DeskClock
    feed: QuoteFeed | SimulatedFeed
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
    zone: tzinfo = MARKET_TZ  # whose day "today" is (see `trading_day`)
    # What traders open from (None: a feed without a chain, e.g. a replay), the risk check every order passes, and
    # what an order is expected to fill at now (a preview shows it before the trader confirms).
    chain: ChainSource | None = None
    risk: RiskCheck | None = None
    estimate: Callable[[OrderRequest], Decimal | None] | None = None
    greeks: GreeksSource | None = None  # where the desk's greeks come from (see `greeks_source`)
    guard: ExpiryGuard | None = None  # the expiry-day guard (see bot/runtime/expiry_guard.py)
    _next_expiry: datetime | None = None
    _expiries_changed: asyncio.Event = field(default_factory=asyncio.Event)
    # Each underlying's last price before the next expiry's close: what an option expiring then settles on.
    _before_close: dict[str, Decimal] = field(default_factory=dict)
    _quoted: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.quotes.subscribe(self._on_quote)
        self.manager.subscribe(self._on_fill)
        self._find_next_expiry()
        if self.broker is not None:
            self.broker.spot = self.spot_at_close  # what an exercise at the broker is valued at

    def today(self) -> date:
        """The desk's day now, on its clock: what /pnl, /positions and /status call today."""
        return trading_day(self.clock(), self.zone)

    async def _on_fill(self, event: TradeEvent, position: Position) -> None:
        self._find_next_expiry()

    def _find_next_expiry(self) -> None:
        closes = [session_close(p.contract.expiry) for p in self.manager.open_positions()]
        soonest = min(closes, default=None)
        if soonest != self._next_expiry:
            self._next_expiry = soonest
            self._expiries_changed.set()

    def _on_quote(self, symbol: str, quote: Quote) -> None:
        if self._next_expiry is not None and quote.ts is not None and quote.ts < self._next_expiry:
            mark = quote.mark
            if mark is not None:
                self._before_close[symbol] = mark
        self._quoted.set()

    async def settle_expired(self, close: datetime) -> None:
        """Close the positions expiring at `close` (or before) at intrinsic value from their underlying's last price
        at or before it (0 out of the money), stamped at the close."""
        for position in self.manager.open_positions():
            if session_close(position.contract.expiry) > close:
                continue
            underlying = position.contract.underlying
            spot = self.spot_at_close(underlying, close)
            if spot is None:
                log.warning(
                    "position %s expired at %s; no price of %s at the close to settle it on yet",
                    position.position_id,
                    close,
                    underlying,
                )
                continue
            price = expiry_settlement_price(position.contract, spot)
            log.info(
                "position %s expired at %s; settling at %s (%s at %s)",
                position.position_id,
                close,
                price,
                underlying,
                spot,
            )
            await self.manager.settle_expiry(position.position_id, price, close)
        self._before_close.clear()

    def spot_at_close(self, underlying: str, close: datetime) -> Decimal | None:
        """The underlying's last price at or before the next expiry's `close`, as this run saw it (else `_spot_at`)."""
        return self._before_close.get(underlying) or self._spot_at(underlying, close)

    def _spot_at(self, underlying: str, close: datetime) -> Decimal | None:
        """The underlying's price at `close` when no quote before it reached this run (it started after the close):
        from the feed's own price history (the simulated market's path), else the latest quote."""
        if isinstance(self.feed, PriceHistory):
            return self.feed.spot_at(underlying, close)
        latest = self.quotes.get(underlying)
        return latest.mark if latest is not None else None

    def _still_due(self, close: datetime) -> bool:
        return any(session_close(p.contract.expiry) <= close for p in self.manager.open_positions())

    async def step(self) -> None:
        """Handle everything the last quotes set off, in a fixed order (the demo day's deterministic step)."""
        if self.guard is not None:
            await self.guard.check()
        for _ in range(10):  # actions can set off more work (a fill, then a message), never without end
            await self.runner.process_all()
            await self.watcher.deliver_all()
            await self.notifier.flush()
            if not (self.runner.pending() or self.watcher.pending()):
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

    async def simulate(self, until: datetime | None = None, *, sleep: Sleep = asyncio.sleep) -> None:
        """Step the simulated market (the feed of an offline desk) tick by tick, each tick handled to the end
        before the next, pausing the feed's `pause` between ticks; each close crossed settles what expired at it.
        Until the session close `until` (the demo's day, settled), or until cancelled (`run`)."""
        feed = self.feed
        if not isinstance(feed, SimulatedFeed):
            raise TypeError("only a desk on the simulated market steps it")
        feed.attach(self.quotes)
        while True:
            await self.step()
            close = feed.market.session_close
            if until is not None and self.clock() + feed.market.tick >= until:
                await self.settle_expired(until)
                await self.step()
                return
            await sleep(feed.pause)
            if self.clock() + feed.market.tick >= close:
                # Into the next session with the contracts still held, as a desk opened then would quote: a
                # contract quoted for every day since it was traded would make each tick of a long run slower.
                feed.market.quote_only(p.contract.symbol for p in self.manager.open_positions())
            feed.tick()
            if self.clock() >= close:  # the market jumped to the next open
                await self.settle_expired(close)

    def workers(self) -> dict[str, Callable[[], Awaitable[None]]]:
        """The background tasks of a live desk, by name: the notifier, the trading state's watch, and either the
        simulated market's steps (offline) or the feed, expiry, and for each strategy its entry worker and its
        watcher worker."""
        workers: dict[str, Callable[[], Awaitable[None]]] = {
            NOTIFIER: self.notifier.run,
            "trading state": self.switch.watch,
        }
        if isinstance(self.feed, SimulatedFeed):
            workers["market"] = self.simulate
            return workers
        workers["feed"] = partial(self.feed.run, self.quotes)
        if self.broker is None:  # at a broker, its expiries and exercises close the positions (see BrokerLink)
            workers["expiry"] = self.run_expiry
        if self.guard is not None:
            workers["expiry guard"] = self.guard.run
        for name in self.runner.strategies:
            workers[f"strategy {name}"] = partial(self.runner.run, name)
            workers[f"watcher {name}"] = partial(self.watcher.run, name)
        if self.broker is not None:
            workers.update(self.broker.workers(self.manager, self.store))
        return workers

    async def run_expiry(self) -> None:
        """Settlement worker: sleeps on the desk's clock until the next expiry's close, settles, and so on, until
        cancelled."""
        while True:
            self._expiries_changed.clear()
            close = self._next_expiry
            if close is None:
                await self._expiries_changed.wait()
                continue
            if await _first_of(self.clock.sleep_until(close), self._expiries_changed.wait()):
                await self.settle_expired(close)
                if self._still_due(close):  # no price to settle on yet: the next quote may bring one
                    self._quoted.clear()
                    await self._quoted.wait()

    async def close(self) -> None:
        self.messages.flush()
        await self.store.close()
        self.ledger.close()


async def _first_of(first: Awaitable[object], second: Awaitable[object]) -> bool:
    """Wait for whichever ends first, cancelling the other; True when it was `first`."""
    one, two = asyncio.ensure_future(first), asyncio.ensure_future(second)
    try:
        await asyncio.wait((one, two), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (one, two):
            task.cancel()
        await asyncio.gather(one, two, return_exceptions=True)
    return one.done() and not one.cancelled() and one.exception() is None


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
    clock: Clock | DeskClock,
    feed: QuoteFeed | SimulatedFeed,
    board: Board,
    broker: BrokerLink | None = None,
    notify: Callable[[], dict[ActionKind, Notify]] | None = None,
    alert: Alert | None = None,
) -> Desk:
    """The one builder of a desk: open the ledger (repairing a torn tail), rebuild and verify the positions from
    it, bring the state store in line, and wire everything up on `clock`, quoted by `feed`, its position messages
    shown on `board`; with a `broker`, orders go to it instead of the paper executor. `notify` says which events
    notify (default: the settings' `[discord] notify`; the Discord desk reads its current settings at each use).
    `alert(kind, text)` tells the admins (default: the log).

    The demo, `run`, the Discord desk and backtests all come through here; they differ only in what they hand in.
    """
    clock = desk_clock(clock)
    ledger, store, resumed = await start_up(storage, now=clock(), zone=settings.zone, orders_at_broker=bool(broker))
    try:
        notify = notify or (lambda: settings.discord.notify)
        desk = await _assemble(settings, storage, clock, feed, board, broker, notify, ledger, store, resumed)
    except BaseException:
        # A start that fails (a bad stored value, a strategy that cannot be built, a stop) leaves nothing open:
        # aiosqlite's thread would keep the process alive.
        await store.close()
        ledger.close()
        raise
    risk = settings.risk
    desk.guard = ExpiryGuard(
        risk.expiry_guard, risk.expiry_guard_time, desk.manager, desk.quotes, clock, alert or _log_alert
    )
    return desk


def _log_alert(kind: str, text: str) -> None:
    log.warning("%s: %s", kind, text)


async def _assemble(
    settings: Settings,
    storage: Path,
    clock: DeskClock,
    feed: QuoteFeed | SimulatedFeed,
    board: Board,
    broker: BrokerLink | None,
    notify: Callable[[], dict[ActionKind, Notify]],
    ledger: TradeLedger,
    store: StateStore,
    resumed: ResumeReport,
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
    greeks = greeks_source(settings, quotes, broker)
    risk = RiskCheck(limits, quotes.get, lambda: switch.current, settings.zone, greeks)
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
        risk.buying_power = broker.buying_power
    manager.record_orders(store)  # each order's intent is on disk before it is sent; no fill waits for the store
    messages = MessageMap(storage / MESSAGE_FILE)
    greeks_of = partial(greeks_now, greeks, clock)
    notifier = OptionsTradeNotifier(BoardSink(board, messages, notify, clock), quotes, greeks_of=greeks_of)
    manager.subscribe(notifier.on_fill)
    manager.subscribe_orders(notifier.on_order)
    manager.subscribe(guard_daily_loss(switch, manager.all_positions, limits, settings.zone))
    strategies = build_strategies(settings)
    for strategy in strategies:
        strategy.bind(
            StrategyDesk(strategy.name, manager, quotes, clock=clock, watch=feed.subscribe, memory=store, greeks=greeks)
        )
        strategy.resume(highs)
    if broker is not None:
        broker.watch(strategies)
    watcher = PositionWatcher(
        manager,
        quotes,
        {s.name: s for s in strategies},
        interval=settings.watcher.throttle_seconds,
        clock=lambda: clock().timestamp(),  # the throttle follows the desk's clock, simulated or not
    )
    feed.subscribe([p.contract.symbol for p in manager.open_positions()])
    runner = StrategyRunner(strategies, quotes)
    return Desk(
        clock,
        feed,
        ledger,
        store,
        resumed,
        messages,
        quotes,
        manager,
        notifier,
        watcher,
        runner,
        switch,
        broker,
        settings.zone,
        greeks=greeks,
        chain=_chain(feed, broker, quotes, clock),
        risk=risk,
        estimate=_fill_estimate(executor, risk),
    )


def _chain(
    feed: QuoteFeed | SimulatedFeed, broker: BrokerLink | None, quotes: QuoteCache, clock: DeskClock
) -> ChainSource | None:
    if broker is not None:
        return broker.option_chain(quotes)
    market = getattr(feed, "market", None)  # the simulated market's feeds, on wall time or stepped
    return SimulatedChain(market, quotes, clock) if isinstance(market, SimulatedMarket) else None


def _fill_estimate(executor: Executor, risk: RiskCheck) -> Callable[[OrderRequest], Decimal | None]:
    """The paper executor's own fill price (slippage, crossed and stale quotes included); at a broker, the price risk
    counts a buy at (the ask, then the last trade, then the bid)."""
    # Asked of the executor, not of its class: a paper executor wrapped (a test's faulty one) still prices as paper.
    fill_price = getattr(executor, "fill_price", None)
    if fill_price is not None:
        return lambda order: fill_price(order)[0]
    return lambda order: risk.expected_price(order.contract)
