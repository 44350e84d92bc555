"""The desk's trading state at run time: kept in its journal (`bot.runtime.trading_journal`), held in memory for
the order path.

Admins, the operator and the desk's own checks (`risk`) change it; every change is journaled first, then logged
and told to the listeners (the admin channel on Discord). A change made from the shell while the bot runs
(`python -m bot state --set ...`) is picked up by the `watch` worker within WATCH_SECONDS: orders never wait on a
file read.

No fault loosens the brakes: a desk that cannot know its state holds `halted` and journals that (set by `risk`,
so it waits for an admin); a tightening the journal cannot take holds in memory anyway (`unsaved` says why),
while a loosening it cannot take is refused.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path

from bot.options.clock import Clock
from bot.options.errors import TradeError
from bot.options.market_hours import MARKET_TZ, trading_day
from bot.options.positions import Position
from bot.options.risk import (
    NEVER_SET,
    DeskState,
    RiskLimits,
    TradingState,
    dollars,
    looser,
    loss_limit_reached,
    realized_on,
    unknown_state,
)
from bot.options.trade_ledger import TradeEvent
from bot.paths import StorageError
from bot.runtime.trading_journal import Signature, append_journal, journal_path, read_journal, signature

log = logging.getLogger(__name__)

# Who set a state when it was not a Discord admin.
OPERATOR = "operator"
RISK = "risk"
WATCH_SECONDS = 2.0
THEN_RESUME = "check, then resume (/resume, or python -m bot state --set active --reason TEXT)"

StateListener = Callable[[DeskState, DeskState], Awaitable[None]]


class StateNotSaved(TradeError):
    """A loosening of the trading state that could not be journaled: nothing changed."""


def log_change(before: DeskState, after: DeskState) -> None:
    log.warning("trading state %s -> %s, set by %s: %s", before.state, after.state, after.set_by, after.reason or "-")


@dataclass(frozen=True, slots=True)
class Held:
    """A state to hold, and the journal's signature when it was read or written (a later change shows against it)."""

    state: DeskState
    seen: Signature


NEW_DESK = Held(NEVER_SET, None)  # no journal yet, nothing traded


def _halt_unknown(why: str, now: datetime) -> DeskState:
    return DeskState(TradingState.HALTED, f"the trading state could not be known ({why}); {THEN_RESUME}", RISK, now)


class TradingSwitch:
    def __init__(self, path: Path, clock: Clock, held: Held) -> None:
        self.path = path
        self._clock = clock
        self._current = held.state
        self._seen = held.seen
        self.unsaved: str | None = None  # why the state held is not the journal's last line, if it is not
        self._listeners: list[StateListener] = []
        self._lock = asyncio.Lock()  # a read racing a write must not announce one change twice

    @property
    def current(self) -> DeskState:
        """The state as last read or set; what every order is checked against."""
        return self._current

    def subscribe(self, listener: StateListener) -> None:
        """Call `listener(before, after)` after each change is journaled (or held in memory, see `unsaved`)."""
        self._listeners.append(listener)

    async def load(self) -> DeskState:
        """The state as journaled now; a change made elsewhere (the shell) is announced here."""
        async with self._lock:
            if signature(self.path) == self._seen:
                return self._current
            reading = read_journal(self.path)
            self._seen = reading.signature
            state = reading.state or unknown_state(f"{self.path} is missing")
            if state.known:
                self.unsaved = None
            else:
                state = _halt_unknown(state.reason, self._clock())
                await self._journal(state)
            if state != self._current:
                await self._changed(state)
            return self._current

    async def set(self, state: TradingState, reason: str, by: str) -> DeskState:
        """Journal the state, then hold and announce it. StateNotSaved if it would loosen the brakes and the
        journal cannot take it."""
        async with self._lock:
            after = DeskState(state, reason, by, self._clock())
            refuse = looser(state, self._current.state)
            if await self._journal(after, refuse=refuse) is not None and refuse:
                raise StateNotSaved(
                    f"Nothing changed: the trading state could not be saved, so the desk stays {self._current.state} "
                    "(the log says why)."
                )
            await self._changed(after)
            return after

    async def watch(self, every: float = WATCH_SECONDS) -> None:
        """Worker: notice changes made from the shell while no order comes, until cancelled."""
        while True:
            await asyncio.sleep(every)
            await self.load()

    async def _journal(self, after: DeskState, *, refuse: bool = False) -> StorageError | None:
        """Append `after`; on failure log one line and, unless `refuse`, hold it in memory only (`unsaved`).
        Returns the failure if there was one."""
        try:
            self._seen = await asyncio.to_thread(append_journal, self.path, after)
        except StorageError as error:
            self._seen = signature(self.path)  # what the failed write left: not a change to take
            if refuse:
                log.error("%s; the desk stays %s", error, self._current.state)
            else:
                self.unsaved = str(error)
                log.error("%s; the desk holds %s in memory only until then", error, after.state)
            return error
        self.unsaved = None
        return None

    async def _changed(self, after: DeskState) -> None:
        before, self._current = self._current, after
        log_change(before, after)
        for listener in self._listeners:
            try:
                await listener(before, after)
            except Exception:
                log.exception("a trading-state listener failed")


def start_state(
    storage: Path,
    now: datetime,
    *,
    before: DeskState,
    problems: list[str],
    set_aside: Path | None,
    ledger_lost: str = "",
) -> tuple[Held, str]:
    """The trading state a desk starts in, journaled, and what start-up changed and why ('' if nothing).

    It is the journal's (`before`, what the storage held before the state store opened, when there is no
    journal), tightened by what start-up found: halted when the state cannot be known or the ledger does not
    verify or has lost fills (deleted, cut short, an older copy put back: the positions it gives are not the desk's);
    at least reduce-only when a corrupt state store was started anew, as the trailing highs and orders in flight it
    held are lost. A state set by anyone is never loosened.
    """
    path = journal_path(storage)
    reading = read_journal(path)
    current = reading.state or before
    found: list[tuple[TradingState, str]] = []
    if not current.known:
        found.append((TradingState.HALTED, f"the trading state could not be known ({current.reason})"))
    if problems:
        found.append((TradingState.HALTED, f"the ledger does not verify ({problems[0]})"))
    if ledger_lost:
        found.append(
            (
                TradingState.HALTED,
                f"the ledger has lost fills ({ledger_lost}): put back the whole ledger from a copy and start again, "
                "or check the positions and resume",
            )
        )
    if set_aside is not None:
        lost = f"the old file is {set_aside}; the trailing highs and orders in flight it held are lost"
        found.append((TradingState.REDUCE_ONLY, f"the state store was corrupt and a new one was started ({lost})"))
    target = TradingState.ACTIVE
    for state, _ in found:
        target = state if looser(target, state) else target
    if current.known and not looser(current.state, target):
        return Held(current, reading.signature), ""
    after = DeskState(target, "; ".join(why for _, why in found) + f"; {THEN_RESUME}", RISK, now)
    note = f"the desk starts {after.state}: {after.reason}"
    try:
        return Held(after, append_journal(path, after)), note
    except StorageError as error:
        log.error("%s; the desk holds %s in memory only", error, after.state)
        return Held(after, signature(path)), f"{note} (held in memory only: {error})"


def guard_daily_loss(
    switch: TradingSwitch, positions: Callable[[], Iterable[Position]], limits: RiskLimits, zone: tzinfo = MARKET_TZ
) -> Callable[[TradeEvent, Position], Awaitable[None]]:
    """A fill listener: the fill that takes today's realized loss to the limit moves an active desk to
    reduce-only. Only the crossing fill does, so a desk an admin resumed afterwards stays resumed."""

    async def after_fill(event: TradeEvent, position: Position) -> None:
        if limits.max_daily_loss is None or switch.current.state is not TradingState.ACTIVE:
            return
        after = realized_on(positions(), trading_day(event.ts, zone))
        if loss_limit_reached(limits, after) and not loss_limit_reached(limits, after - event.realized_pnl):
            reason = (
                f"today's realized P&L {dollars(after)} reached the max daily loss limit "
                f"(a loss of {dollars(limits.max_daily_loss)})"
            )
            await switch.set(TradingState.REDUCE_ONLY, reason, RISK)

    return after_fill
