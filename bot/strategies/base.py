"""The strategy base: entry on quotes, exits through the shared exit rules, trades through the desk.

Strategies never talk to Discord or the ledger; they ask the order manager, as `source="strategy"`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Protocol

from bot.options.contracts import OptionContract, Right
from bot.options.errors import TradeError
from bot.options.greeks import GreeksSource, current_greeks
from bot.options.market_hours import MARKET_TZ, is_trading_day, session_close
from bot.options.order_manager import OptionsOrderManager
from bot.options.positions import Position, Source
from bot.options.quotes import Quote, QuoteCache
from bot.options.repeats import Repeats
from bot.strategies.options.exit_rules import (
    ExitAction,
    ExitRules,
    decide_exit,
    high_water_mark,
)

log = logging.getLogger(__name__)


class ExitMemory(Protocol):
    """Where the trailing stop's high, which no ledger line holds, survives a restart (the state store). Which exit
    levels fired is read from the position's history (`exit_rules.fired_levels`)."""

    async def save_high(self, position_id: str, high: Decimal) -> None: ...


# A new high is saved when it beats the saved one by 1%: often enough for the trailing stop, rarely enough
# to stay off the hot path.
HIGH_SAVE_STEP = Decimal("1.01")
# A contract picked by delta is looked for among whole-dollar strikes this far either side of the money (a share of
# the spot): a 0.10 delta of a 60-day option at a high vol is still inside.
DELTA_SEARCH = Decimal("0.25")


class StrategyDesk:
    """What one strategy may do: read quotes and the market clock, and trade its own positions."""

    def __init__(
        self,
        strategy: str,
        manager: OptionsOrderManager,
        quotes: QuoteCache,
        *,
        clock: Callable[[], datetime],
        watch: Callable[[Iterable[str]], None],
        memory: ExitMemory | None = None,
        greeks: GreeksSource | None = None,
    ) -> None:
        self._strategy = strategy
        self._greeks = greeks
        self._manager = manager
        self._quotes = quotes
        self._clock = clock
        self._watch = watch
        self._memory = memory
        # The refusal last said of each position (of entries: ''), said once while it repeats tick after tick.
        self._refusals = Repeats()  # the refusal last said of each position
        self._close_for: tuple[datetime | None, datetime] = (None, datetime.min.replace(tzinfo=MARKET_TZ))
        # This strategy's position ids by the day they opened, and how many positions the desk had then.
        self._opened: dict[date, list[str]] = {}
        self._indexed = 0

    def now(self) -> datetime:
        return self._clock()

    def session_close(self, now: datetime | None = None) -> datetime:
        """The close of the session `now` (default: the market clock's now) falls in."""
        moment = now or self.now()
        if moment != self._close_for[0]:  # asked on every tick, mostly for the same moment
            self._close_for = (moment, session_close(moment.astimezone(MARKET_TZ).date()))
        return self._close_for[1]

    def quote(self, symbol: str) -> Quote | None:
        return self._quotes.get(symbol)

    def positions(self) -> list[Position]:
        """This strategy's open positions."""
        return [p for p in self._manager.open_positions() if p.strategy == self._strategy]

    def positions_opened_on(self, day: date) -> list[Position]:
        """This strategy's positions opened on `day` (New York date), open or closed, as they are now."""
        # Asked on every quote: scanning every position of a long run each time made a backtest's year slow. The
        # index is made again only when the desk has recorded a position since (a position's opening never moves).
        if self._manager.position_count != self._indexed:
            self._opened = {}
            for p in self._manager.all_positions():
                if p.strategy == self._strategy and p.opened_at is not None:
                    self._opened.setdefault(p.opened_at.astimezone(MARKET_TZ).date(), []).append(p.position_id)
            self._indexed = self._manager.position_count
        return [self._manager.get(position_id) for position_id in self._opened.get(day, ())]

    async def nearest_delta(self, at_the_money: OptionContract, spot: Decimal, target: float) -> OptionContract:
        """The contract of `at_the_money`'s expiry and right whose |delta| is nearest `target`, among whole-dollar
        strikes around the money, from the desk's greek source; at the money when the source gives no figures."""
        if self._greeks is None:
            return at_the_money
        reach = max(int(spot * DELTA_SEARCH), 1)
        centre = int(at_the_money.strike)
        candidates = [
            OptionContract(at_the_money.underlying, at_the_money.expiry, at_the_money.right, Decimal(strike))
            for strike in range(max(centre - reach, 1), centre + reach + 1)
        ]
        figures = await current_greeks(self._greeks, candidates, self.now())
        # Nearest |delta| first; between two as near, the strike nearer the money.
        scored = [
            (abs(abs(figures[c.symbol].greeks.delta) - target), abs(c.strike - spot), c)
            for c in candidates
            if c.symbol in figures
        ]
        return min(scored, key=lambda row: row[:2])[2] if scored else at_the_money

    def watch(self, contract: OptionContract) -> None:
        """Ask the feed to quote this contract from now on."""
        self._watch([contract.symbol])

    async def open(self, contract: OptionContract, qty: int) -> Position | None:
        self.watch(contract)
        return await self._attempt(
            f"open {qty} {contract.label}",
            self._manager.open_position(contract, qty, strategy=self._strategy, source=Source.STRATEGY),
        )

    async def add(self, position: Position, qty: int) -> Position | None:
        pid = position.position_id
        return await self._attempt(f"add {qty} to {pid}", self._manager.add(pid, qty), pid)

    async def trim(self, position: Position, qty: int) -> Position | None:
        pid = position.position_id
        return await self._attempt(f"trim {qty} of {pid}", self._manager.trim(pid, qty=qty), pid)

    async def close(self, position: Position) -> Position | None:
        pid = position.position_id
        return await self._attempt(f"close {pid}", self._manager.close(pid), pid)

    async def remember_high(self, position: Position, high: Decimal) -> None:
        if self._memory is not None:
            await self._memory.save_high(position.position_id, high)

    async def _attempt(self, what: str, action: Awaitable[Position], position_id: str = "") -> Position | None:
        try:
            done = await action
        except TradeError as refused:
            # A refusal is the desk doing its job (no quote, a risk limit, a halted desk...): the strategy's
            # log says why, once while the same refusal of the same position repeats tick after tick.
            log.log(
                logging.DEBUG if self._refusals.again(position_id, str(refused)) else logging.INFO,
                "strategy %s could not %s: %s",
                self._strategy,
                what,
                refused,
            )
            return None
        self._refusals.forget(position_id)
        return done


def expiry_after(day: date, days: int) -> date:
    """The first trading day at least `days` calendar days after `day`."""
    expiry = day + timedelta(days=days)
    while not is_trading_day(expiry):
        expiry += timedelta(days=1)
    return expiry


def at_the_money(underlying: str, spot: Decimal, right: Right, expiry: date) -> OptionContract:
    return OptionContract(underlying, expiry, right, spot.quantize(Decimal(1)))


class Strategy:
    """A strategy with a name, the underlyings it watches, an entry hook and the shared exit rules."""

    def __init__(self, name: str, exits: ExitRules, *, no_entry_before_close: timedelta = timedelta(0)) -> None:
        self.name = name
        self.exits = exits
        self.no_entry_before_close = no_entry_before_close
        self._highs: dict[str, Decimal] = {}
        self._saved_highs: dict[str, Decimal] = {}
        self._exits_said = Repeats()  # the exit rule last said of each position
        self._desk: StrategyDesk | None = None

    @property
    def desk(self) -> StrategyDesk:
        if self._desk is None:
            raise RuntimeError(f"strategy {self.name} is not bound to a desk")
        return self._desk

    def bind(self, desk: StrategyDesk) -> None:
        self._desk = desk

    def may_enter(self) -> bool:
        """New entries stop a while before the close, so that the time stop does not meet fresh positions."""
        return self.desk.now() < self.desk.session_close() - self.no_entry_before_close

    async def add(self, position: Position, qty: int) -> Position | None:
        """Add to a position; an add is new risk, so it keeps the no-entry window before the close as an open does."""
        if not self.may_enter():
            return None
        return await self.desk.add(position, qty)

    def symbols(self) -> set[str]:
        """The symbols whose quotes reach `on_quote` (usually underlyings)."""
        return set()

    async def on_quote(self, symbol: str, quote: Quote) -> None:
        """The entry hook: may ask the desk to open (or add to) a position."""

    def resume(self, highs: Mapping[str, Decimal]) -> None:
        """Take back the high-water marks saved before a restart."""
        self._highs.update(highs)
        self._saved_highs.update(highs)

    async def on_position_update(self, position: Position, mark: Decimal) -> None:
        """Apply the shared exit rules to a new mark of one of this strategy's positions."""
        high = high_water_mark(position, self._highs.get(position.position_id), mark)
        self._highs[position.position_id] = high
        saved = self._saved_highs.get(position.position_id)
        if saved is None or high >= saved * HIGH_SAVE_STEP:
            self._saved_highs[position.position_id] = high
            await self.desk.remember_high(position, high)
        now = self.desk.now()
        decision = decide_exit(
            self.exits, position, mark, now=now, session_close=self.desk.session_close(now), high_water=high
        )
        if decision.action is ExitAction.NONE:
            return
        # Said once while it repeats: a rule the desk refuses (halted) fires again at every quote, at a new mark that
        # its sentence names, so the rule is compared (and the sentence written only when said).
        fired = (decision.action, decision.qty, decision.rule, decision.level)
        level = logging.DEBUG if self._exits_said.again(position.position_id, fired) else logging.INFO
        log.log(level, "strategy %s, position %s: %s", self.name, position.position_id, decision.reason)
        if decision.action is ExitAction.TRIM:
            await self.desk.trim(position, decision.qty)
        elif await self.desk.close(position) is not None:
            self._highs.pop(position.position_id, None)
            self._saved_highs.pop(position.position_id, None)
            self._exits_said.forget(position.position_id)


class ExitsConfig(Protocol):
    def rules(self) -> ExitRules: ...


class UnderlyingConfig(Protocol):
    """What a strategy on one underlying reads from its settings section (bot.settings' StrategyBase): the
    strategies say what they need, the settings import them, never the other way."""

    @property
    def name(self) -> str: ...
    @property
    def underlying(self) -> str: ...
    @property
    def contracts(self) -> int: ...
    @property
    def days_to_expiry(self) -> int: ...
    @property
    def target_delta(self) -> float | None: ...
    @property
    def no_entry_minutes_before_close(self) -> int: ...
    @property
    def exits(self) -> ExitsConfig: ...


class UnderlyingStrategy(Strategy):
    """A strategy that buys at-the-money options on one underlying, set up from its settings section."""

    def __init__(self, config: UnderlyingConfig) -> None:
        super().__init__(
            config.name,
            config.exits.rules(),
            no_entry_before_close=timedelta(minutes=config.no_entry_minutes_before_close),
        )
        self.underlying = config.underlying
        self.contracts = config.contracts
        self.days_to_expiry = config.days_to_expiry
        self.target_delta = config.target_delta

    def symbols(self) -> set[str]:
        return {self.underlying}

    def contract_for(self, spot: Decimal, right: Right, today: date) -> OptionContract:
        """The at-the-money contract of the configured days to expiry."""
        return at_the_money(self.underlying, spot, right, expiry_after(today, self.days_to_expiry))

    async def contract_to_open(self, spot: Decimal, right: Right, today: date) -> OptionContract:
        """The contract an entry buys: at the money, or with `target_delta` the one of the same expiry whose |delta|
        is nearest it."""
        contract = self.contract_for(spot, right, today)
        if self.target_delta is None:
            return contract
        return await self.desk.nearest_delta(contract, spot, self.target_delta)

    def open_positions(self) -> list[Position]:
        """This strategy's open positions on its underlying."""
        return [p for p in self.desk.positions() if p.contract.underlying == self.underlying]
