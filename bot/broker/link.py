"""What a broker adds to a desk: its executor, its quote feed and the background work (the trade-updates stream,
the start-up: orders left open by the last run, an optional reconcile; and the options that end at the broker:
expiries, exercises and assignments). At start it reads the account: its options level must allow buying calls
and puts, and its options buying power bounds each buy (see `buying_power`).

New orders are held from the moment the desk is built until the start-up is done (or has taken
`resume_timeout_seconds`): the orders left open are read before this run can send one, and a strategy
never trades on a position whose last order is still being looked up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from functools import partial
from pathlib import Path

from alpaca.common.exceptions import APIError
from alpaca.trading.models import Asset, TradeAccount
from pydantic import ValidationError
from requests import RequestException

from bot.broker.activities import BrokerActivity, Spot, fetch_activities, no_spot, plan_activities
from bot.broker.alpaca import Alpaca
from bot.broker.alpaca_executor import AlpacaExecutor
from bot.broker.alpaca_quotes import AlpacaQuoteFeed
from bot.broker.option_chain import AlpacaChain
from bot.broker.reconcile_fetch import reconcile_day
from bot.broker.restart import follow_orders_left_open, orders_left_open, take_old_journal
from bot.options.clock import Clock, utc_now
from bot.options.errors import TradeError
from bot.options.order_manager import OptionsOrderManager
from bot.options.order_record import OrdersInFlight, StoredOrder
from bot.options.positions import Position, Source
from bot.options.quotes import QuoteCache
from bot.options.trade_ledger import TradeEvent
from bot.settings import Settings, SettingsError
from bot.strategies.base import Strategy

log = logging.getLogger(__name__)

Worker = Callable[[], Awaitable[None]]
# What a trader is told while the start-up holds new orders (a Discord command cannot wait for it).
RESUMING = "The desk is still taking up the last run's orders at the broker; try again in a moment."
# Alpaca's options levels: 1 covered calls and cash-secured puts, 2 also buying calls and puts (what the desk does).
NEEDED_LEVEL = 2
Admins = Callable[[str, str], None]  # (kind, text): tell the admins


def _log_admins(kind: str, text: str) -> None:
    log.warning("broker: %s", text)


class BrokerLink:
    def __init__(
        self,
        settings: Settings,
        storage: Path,
        *,
        clock: Clock = utc_now,
        alert: Callable[[str], None] | None = None,
        admins: Admins | None = None,
    ) -> None:
        """`alert(text)`: tell the admins (and log) that the start-up took too long; by default only logged.
        `admins(kind, text)`: tell them of shares an exercise or assignment moved; by default only logged."""
        self.settings = settings
        self.storage = storage
        self.clock = clock
        self.alert = alert or (lambda text: log.error("broker: %s", text))
        self.admins = admins or _log_admins
        # The underlying's price at a close, as the desk saw it (the desk hands in its own): values an exercise.
        self.spot: Spot = no_spot
        self.options_level: int | None = None  # the account's, read at start (None: not known)
        self._buying_power: Decimal | None = None
        self._said: set[str] = set()  # activities already logged as not the desk's, or not yet priced
        self._reading: asyncio.Future[None] | None = None
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
        await self.check_account()
        await self.check_underlyings()
        await take_old_journal(self.storage, store)
        self._left_open = await orders_left_open(manager, store, self.clock())
        self._starting = bool(self._left_open) or self.settings.broker.reconcile_on_start
        if self._starting:
            manager.hold_orders(RESUMING)

        async def held(event: TradeEvent, position: Position) -> None:
            self.feed.hold(p.contract.symbol for p in manager.open_positions())
            if self._reading is None or self._reading.done():  # buying power spent or freed: read it again
                self._reading = asyncio.ensure_future(self.read_account())

        manager.subscribe(held)
        self.feed.hold(p.contract.symbol for p in manager.open_positions())

    async def check_account(self) -> None:
        """Read the account (see `read_account`). A level too low to buy calls and puts stops the start in one line;
        Alpaca out of reach is said, and the start goes on."""
        await self.read_account()
        level = self.options_level
        if level is not None:
            log.info("broker: Alpaca options trading level %d, options buying power %s", level, self._buying_power)
        if level is not None and level < NEEDED_LEVEL:
            raise SettingsError(
                f"the Alpaca account's options trading level is {level}, and buying calls and puts needs level "
                f"{NEEDED_LEVEL}: ask Alpaca for level {NEEDED_LEVEL} (and allow it in the account's configuration), "
                "or set executor to paper"
            )

    async def read_account(self) -> None:
        """The account's options level (the effective one, else the approved one) and options buying power."""
        try:
            account = await asyncio.to_thread(self.client.get_account)
        except (APIError, RequestException, ValidationError) as error:
            log.warning("broker: could not read the Alpaca account's options level (%s)", _why(error))
            return
        if not isinstance(account, TradeAccount):
            return
        level = account.options_trading_level
        self.options_level = account.options_approved_level if level is None else level
        try:
            power = Decimal(account.options_buying_power or "")
        except InvalidOperation:
            power = None
        # NaN or Infinity is no amount: the risk check could not compare a buy with it.
        self._buying_power = power if power is not None and power.is_finite() else None

    def describe(self) -> str:
        """The account in a few words, for /status and `python -m bot status`."""
        level = "options level unknown" if self.options_level is None else f"options level {self.options_level}"
        power = "" if self._buying_power is None else f", options buying power {self._buying_power:,.2f}"
        return f"Alpaca {'paper' if self.alpaca.paper else 'LIVE'}, {level}{power}"

    def buying_power(self) -> Decimal | None:
        """The account's options buying power as last read (None: not known), which the pre-trade check holds each
        buy's premium to."""
        return self._buying_power

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

    def option_chain(self, quotes: QuoteCache) -> AlpacaChain:
        """The chain traders open from: the underlyings of the strategies and of `[[market.underlyings]]`."""
        named = [s.underlying for s in self.settings.strategies] + [u.symbol for u in self.settings.market.underlyings]
        underlyings = list(dict.fromkeys(named))
        data = self.alpaca.option_data_client()
        return AlpacaChain(self.client, data, quotes, lambda: underlyings, self.settings.broker.option_feed)

    def watch(self, strategies: Iterable[Strategy]) -> None:
        """Quote what the strategies watch (their underlyings) from the start: they ask only for contracts."""
        self.feed.subscribe(symbol for strategy in strategies for symbol in strategy.symbols())

    def workers(self, manager: OptionsOrderManager, store: OrdersInFlight) -> dict[str, Worker]:
        return {
            "broker stream": self.executor.run,
            "broker orders": partial(self.start_up, manager, store),
            "broker activities": partial(self.follow_activities, manager),
        }

    async def follow_activities(self, manager: OptionsOrderManager) -> None:
        """Record the expiries, exercises and assignments of the desk's positions, at start and then every
        `activities_poll_seconds`, until cancelled."""
        while True:
            try:
                await self.record_activities(manager)
            except (APIError, RequestException) as error:
                log.warning("broker: could not read Alpaca's expiries and exercises (%s); trying again", _why(error))
            await asyncio.sleep(self.settings.broker.activities_poll_seconds)

    async def record_activities(self, manager: OptionsOrderManager) -> int:
        """Close each open position Alpaca expired, exercised or assigned (once: its fill id is the activity's id);
        returns how many. Asked only once a position's expiry day has come."""
        now = self.clock()
        zone = self.settings.zone
        due = [p.contract.expiry for p in manager.open_positions() if p.contract.expiry <= now.astimezone(zone).date()]
        if not due:
            return 0
        after = datetime.combine(min(due), time.min, tzinfo=zone) - timedelta(microseconds=1)
        activities = await asyncio.to_thread(fetch_activities, self.client, after)
        fill_ids = (a.fill_id for p in manager.all_positions() for a in p.actions)
        plan = plan_activities(activities, manager.open_positions(), fill_ids, self.spot)
        for activity in plan.not_held:
            self._say_once(activity, "no open position of the desk holds it; nothing recorded")
        for activity in plan.unpriced:
            self._say_once(activity, "no price of the underlying at that close to value it by yet; recorded once known")
        for activity in plan.fewer:
            self._say_once(
                activity,
                "the desk holds more of it, so a sell the ledger misses comes first: run python -m bot reconcile; "
                "recorded once the quantities agree",
            )
        for close in plan.closes:
            try:
                await manager.settle_expiry(
                    close.position.position_id,
                    close.price,
                    close.activity.at,
                    actor=None,
                    source=Source.BROKER,
                    fill_id=close.fill_id,
                    noted=close.noted,
                )
            except TradeError as error:
                log.warning("broker: %s not recorded: %s", close.activity.text(), error)
                continue
            log.info(
                "broker: %s recorded as the close of %s at %s",
                close.activity.text(),
                close.position.position_id,
                close.price,
            )
        for activity in {close.activity.activity_id: close.activity for close in plan.closes}.values():
            shares = activity.shares_text()
            if shares is not None:
                self.admins(f"shares {activity.activity_id}", shares)
        return len(plan.closes)

    def _say_once(self, activity: BrokerActivity, text: str) -> None:
        if activity.activity_id not in self._said:
            self._said.add(activity.activity_id)
            log.info("broker: %s: %s", activity.text(), text)

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


def _why(error: BaseException) -> str:
    if isinstance(error, ValidationError):  # the account Alpaca sent, which the SDK cannot read (a level of "two")
        return f"the account does not read: {error.errors()[0]['loc'][0]} {error.errors()[0]['msg']}"
    return f"HTTP {error.status_code}" if isinstance(error, APIError) else type(error).__name__
