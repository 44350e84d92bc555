"""Exit rules every options strategy shares: time stop, stop loss, trailing stop and a profit ladder.

Pure functions of a position, a mark and the clock; the ladder's progress is read from the position's history.
"""

from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation
from enum import StrEnum
from functools import lru_cache
from itertools import pairwise
from typing import Any, NamedTuple, Self

from bot.options import market_hours
from bot.options.contracts import OptionContract, Right
from bot.options.positions import ActionKind, Position, Source
from bot.options.side import Side

__all__ = [
    "NO_EXIT",
    "ExitAction",
    "ExitDecision",
    "ExitRules",
    "ProfitLevel",
    "decide_exit",
    "expiry_settlement_price",
    "fired_levels",
    "high_water_mark",
    "is_expired",
]

HUNDRED = Decimal(100)
ZERO = Decimal(0)


class ExitAction(StrEnum):
    NONE = "none"
    TRIM = "trim"
    CLOSE = "close"


class ExitDecision:
    """What the exit rules ask for: nothing, a trim of `qty` contracts, or a close of all `qty` open.

    The reason is a sentence for the log, written only when someone reads it: the rules run on every tick.
    `rule` and `level` say which rule fired ("profit" level 1, "stop", "trailing", "time"), for the state store.
    """

    __slots__ = ("_reason", "action", "level", "qty", "rule")

    def __init__(
        self, action: ExitAction, qty: int = 0, reason: str | Callable[[], str] = "", rule: str = "", level: int = 0
    ) -> None:
        self.action = action
        self.qty = qty
        self._reason = reason
        self.rule = rule
        self.level = level

    @property
    def reason(self) -> str:
        if not isinstance(self._reason, str):
            self._reason = self._reason()
        return self._reason

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ExitDecision):
            return NotImplemented
        return (self.action, self.qty, self.reason) == (other.action, other.qty, other.reason)

    def __hash__(self) -> int:
        return hash((self.action, self.qty, self.reason))

    def __repr__(self) -> str:
        return f"ExitDecision({self.action.value}, {self.qty}, {self.reason!r})"


NO_EXIT = ExitDecision(ExitAction.NONE)


def _as_decimal(value: object, name: str) -> Decimal:
    """Settings may arrive as int or str (TOML, env); keep them exact as Decimal."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str | float):
        raise ValueError(f"{name} must be a number, not {value!r}.")
    try:
        result = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"{name} must be a number, not {value!r}.") from None
    if not result.is_finite():
        raise ValueError(f"{name} must be a finite number, not {value!r}.")
    return result


# The records here are NamedTuples, not frozen dataclasses: every command imports this module (the settings), and a
# dataclass takes Python 3.11 ~1.5 ms to make. A record that checks its values is a NamedTuple of its fields and a
# subclass whose __new__ checks them, and `_replace` through it. No annotations from __future__ here: typing would
# compile each field's type given as text (~30 us a field).
class _ProfitLevel(NamedTuple):
    gain_pct: Decimal
    sell_pct: Decimal


class ProfitLevel(_ProfitLevel):
    """At `gain_pct` above the average entry, sell `sell_pct` of what is open (100 closes)."""

    __slots__ = ()

    def __new__(cls, gain_pct: Decimal, sell_pct: Decimal) -> Self:
        gain = _as_decimal(gain_pct, "A profit level's gain")
        sell = _as_decimal(sell_pct, "A profit level's sell percentage")
        if gain <= 0:
            raise ValueError(f"A profit level's gain must be above 0%, not {_pct(gain)}%.")
        if not ZERO < sell <= HUNDRED:
            raise ValueError(f"A profit level must sell more than 0% and at most 100%, not {_pct(sell)}%.")
        return super().__new__(cls, gain, sell)

    def _replace(self, **changes: Any) -> Self:
        return type(self)(**{**self._asdict(), **changes})


class _ExitRules(NamedTuple):
    profit_ladder: tuple[ProfitLevel, ...]
    stop_loss_pct: Decimal | None
    trailing_stop_pct: Decimal | None
    # The trailing stop arms only once the high-water mark is this far above the average entry.
    trailing_activation_pct: Decimal
    time_stop_minutes: int | None
    time_stop_expiry_only: bool


class ExitRules(_ExitRules):
    """One strategy's exit settings; None (or an empty ladder) switches a rule off."""

    __slots__ = ()

    def __new__(
        cls,
        profit_ladder: tuple[ProfitLevel, ...] = (
            ProfitLevel(Decimal(30), Decimal(50)),
            ProfitLevel(Decimal(60), Decimal(100)),
        ),
        stop_loss_pct: Decimal | None = Decimal(40),
        trailing_stop_pct: Decimal | None = Decimal(20),
        trailing_activation_pct: Decimal = Decimal(20),
        time_stop_minutes: int | None = 10,
        time_stop_expiry_only: bool = False,
    ) -> Self:
        ladder = tuple(profit_ladder)
        if not all(isinstance(level, ProfitLevel) for level in ladder):
            raise ValueError("The profit ladder must be a sequence of ProfitLevel(gain_pct, sell_pct).")
        gains = [level.gain_pct for level in ladder]
        if any(lower >= higher for lower, higher in pairwise(gains)):
            shown = ", ".join(f"+{_pct(gain)}%" for gain in gains)
            raise ValueError(f"The profit ladder must be sorted by gain with no level repeated, not {shown}.")

        stop = stop_loss_pct
        if stop is not None:
            stop = _as_decimal(stop, "The stop loss")
            if not ZERO < stop <= HUNDRED:
                raise ValueError(f"The stop loss must be above 0% and at most 100%, not {_pct(stop)}%.")
        trail = trailing_stop_pct
        if trail is not None:
            trail = _as_decimal(trail, "The trailing stop")
            if not ZERO < trail <= HUNDRED:
                raise ValueError(f"The trailing stop must be above 0% and at most 100%, not {_pct(trail)}%.")
        activation = _as_decimal(trailing_activation_pct, "The trailing stop activation")
        if activation < 0:
            raise ValueError(f"The trailing stop activation must be 0% or more, not {_pct(activation)}%.")
        minutes = time_stop_minutes
        if minutes is not None and (isinstance(minutes, bool) or not isinstance(minutes, int) or minutes <= 0):
            raise ValueError(f"The time stop must be a positive whole number of minutes, not {minutes!r}.")
        return super().__new__(cls, ladder, stop, trail, activation, minutes, time_stop_expiry_only)

    def _replace(self, **changes: Any) -> Self:
        return type(self)(**{**self._asdict(), **changes})


def fired_levels(position: Position) -> int:
    """How many ladder levels already fired: the strategy's trims in the position's history.

    Read from history, never from memory, so a restart resumes the ladder where it was. Manual trims are the
    trader's own and do not count; a close ends the position, so it needs no counting.
    """
    fired = 0
    for action in position.actions:  # a plain loop: this runs on every tick of every position
        if action.kind is ActionKind.TRIM and action.source is Source.STRATEGY:
            fired += 1
    return fired


def high_water_mark(position: Position, previous: Decimal | None, mark: Decimal) -> Decimal:
    """The highest price seen: the in-memory high, the mark, the average entry and every sell in the history."""
    high = _history_high(position)
    if mark > high:
        high = mark
    if previous is not None and previous > high:
        high = previous
    return high


_HISTORY_HIGHS: dict[int, tuple[Position, Decimal]] = {}


def _history_high(position: Position) -> Decimal:
    """The average entry and every sell price, worked out once per position state (it runs on every tick)."""
    found = _HISTORY_HIGHS.get(id(position))
    if found is not None and found[0] is position:
        return found[1]
    if len(_HISTORY_HIGHS) > 50_000:
        _HISTORY_HIGHS.clear()
    high = position.avg_entry
    for action in position.actions:
        if action.side is Side.SELL and action.price > high:
            high = action.price
    _HISTORY_HIGHS[id(position)] = (position, high)
    return high


def decide_exit(
    rules: ExitRules,
    position: Position,
    mark: Decimal,
    *,
    now: datetime,
    session_close: datetime,
    high_water: Decimal | None = None,
) -> ExitDecision:
    """The exit the rules ask for at this mark; precedence is time stop, stop loss, trailing stop, profit ladder."""
    _require_aware(now, "now")
    _require_aware(session_close, "session_close")
    if not mark.is_finite() or mark < 0:
        raise ValueError(f"A mark must be a price of 0 or more, not {mark}.")
    if not position.is_open or position.qty <= 0:
        return NO_EXIT
    triggers = _triggers(rules, position)
    time_stop, stop_loss, trailing_stop, ladder = _may_fire(triggers, mark, now, session_close, high_water)
    # Only a rule that may fire is evaluated (exactly), in the order of precedence.
    decision = None
    if time_stop:
        decision = _time_stop(rules, position, now, session_close)
    if decision is None and stop_loss:
        decision = _stop_loss(rules, position, mark)
    if decision is None and trailing_stop:
        decision = _trailing_stop(rules, position, mark, max(triggers.history_high, high_water or ZERO))
    if decision is None and ladder:
        decision = _profit_ladder(rules, position, mark, triggers.fired)
    return decision or NO_EXIT


# Most ticks are far from every threshold. Per position state (positions are immutable, so a state is an
# object) the trigger prices are worked out once; a mark clearly between them needs no rule at all. "Clearly"
# keeps a margin, so that a mark at a threshold always gets the exact evaluation below.
_MARGIN = Decimal("1e-9")


class _Triggers(NamedTuple):
    rules: ExitRules
    position: Position
    stop_below: Decimal | None  # a mark above this cannot hit the stop loss
    ladder_above: Decimal | None  # a mark below this cannot reach the next profit level
    arm_at: Decimal | None  # the trailing stop is armed from this high on
    trail_factor: Decimal  # ... and fires at the high times this
    history_high: Decimal  # the average entry and every sell price
    fired: int  # ladder levels fired so far


_TRIGGERS: dict[tuple[int, int], _Triggers] = {}


def _triggers(rules: ExitRules, position: Position) -> _Triggers:
    key = (id(rules), id(position))
    found = _TRIGGERS.get(key)
    if found is not None and found.position is position and found.rules is rules:
        return found
    if len(_TRIGGERS) > 50_000:
        _TRIGGERS.clear()
    entry = position.avg_entry
    stop = rules.stop_loss_pct
    fired = fired_levels(position)
    ladder = rules.profit_ladder[fired].gain_pct if fired < len(rules.profit_ladder) else None
    trail = rules.trailing_stop_pct
    found = _TRIGGERS[key] = _Triggers(
        rules,
        position,
        None if stop is None else entry - stop * entry / HUNDRED + _MARGIN,
        None if ladder is None else entry + ladder * entry / HUNDRED - _MARGIN,
        None if trail is None else entry + rules.trailing_activation_pct * entry / HUNDRED - _MARGIN,
        ZERO if trail is None else (HUNDRED - trail) / HUNDRED + _MARGIN,
        _history_high(position),
        fired,
    )
    return found


def _may_fire(
    triggers: _Triggers, mark: Decimal, now: datetime, session_close: datetime, high_water: Decimal | None
) -> tuple[bool, bool, bool, bool]:
    """Which of time stop, stop loss, trailing stop and profit ladder this mark may fire (False: surely not)."""
    rules = triggers.rules
    if triggers.position.avg_entry <= 0:
        return True, True, True, True
    time_stop = rules.time_stop_minutes is not None and now >= _time_stop_at(session_close, rules.time_stop_minutes)
    stop_loss = triggers.stop_below is not None and mark <= triggers.stop_below
    ladder = triggers.ladder_above is not None and mark >= triggers.ladder_above
    trailing_stop = False
    if triggers.arm_at is not None:
        high = max(triggers.history_high, mark, high_water or ZERO)
        trailing_stop = high >= triggers.arm_at and mark <= high * triggers.trail_factor
    return time_stop, stop_loss, trailing_stop, ladder


def expiry_settlement_price(contract: OptionContract, underlying_price: Decimal) -> Decimal:
    """The per-share intrinsic value at expiry: max(0, S - K) for a call, max(0, K - S) for a put."""
    if not underlying_price.is_finite() or underlying_price < 0:
        raise ValueError(f"An underlying price must be 0 or more, not {underlying_price}.")
    if contract.right is Right.CALL:
        return max(ZERO, underlying_price - contract.strike)
    return max(ZERO, contract.strike - underlying_price)


def is_expired(contract: OptionContract, now: datetime) -> bool:
    """True from the session close (16:00 New York) on the expiry date."""
    _require_aware(now, "now")
    return now >= market_hours.session_close(contract.expiry)


@lru_cache(maxsize=64)
def _time_stop_at(session_close: datetime, minutes: int) -> datetime:
    return session_close - timedelta(minutes=minutes)


def _time_stop(rules: ExitRules, position: Position, now: datetime, session_close: datetime) -> ExitDecision | None:
    minutes = rules.time_stop_minutes
    if minutes is None or now < _time_stop_at(session_close, minutes):
        return None
    # A session after the expiry date counts too: a contract still open then must not be carried further.
    session_day = session_close.astimezone(market_hours.MARKET_TZ).date()
    if rules.time_stop_expiry_only and session_day < position.contract.expiry:
        return None
    when = "on expiry day" if rules.time_stop_expiry_only else ""
    return _close(
        position,
        lambda: f"time stop: {minutes} minute{'s' if minutes != 1 else ''} before the close {when}".rstrip(),
        "time",
    )


def _stop_loss(rules: ExitRules, position: Position, mark: Decimal) -> ExitDecision | None:
    entry = position.avg_entry
    if rules.stop_loss_pct is None or entry <= 0:
        return None
    # Compare cross-multiplied so the threshold is exact (no rounding from a division).
    if (entry - mark) * HUNDRED < rules.stop_loss_pct * entry:
        return None
    stop = rules.stop_loss_pct
    return _close(
        position, lambda: f"stop loss -{_pct(stop)}% hit (mark {_price(mark)}, entry {_price(entry)})", "stop"
    )


def _trailing_stop(rules: ExitRules, position: Position, mark: Decimal, known_high: Decimal) -> ExitDecision | None:
    """`known_high`: the highest of the average entry, the sells in the history and the high seen so far."""
    entry = position.avg_entry
    if rules.trailing_stop_pct is None or entry <= 0:
        return None
    high = max(known_high, mark)
    if (high - entry) * HUNDRED < rules.trailing_activation_pct * entry:
        return None
    if (high - mark) * HUNDRED < rules.trailing_stop_pct * high:
        return None
    drop = (high - mark) * HUNDRED / high
    return _close(
        position,
        lambda: f"trailing stop: mark {_price(mark)} is {_pct(drop)}% below the high {_price(high)}",
        "trailing",
    )


def _profit_ladder(rules: ExitRules, position: Position, mark: Decimal, fired: int) -> ExitDecision | None:
    entry = position.avg_entry
    if entry <= 0 or fired >= len(rules.profit_ladder):
        return None
    # Only the next unfired level: when the mark passed several, the following ticks fire the rest.
    level = rules.profit_ladder[fired]
    if (mark - entry) * HUNDRED < level.gain_pct * entry:
        return None

    def reached() -> str:
        return f"profit target +{_pct(level.gain_pct)}% reached (mark {_price(mark)}, entry {_price(entry)})"

    qty = max(1, int((position.qty * level.sell_pct / HUNDRED).to_integral_value(rounding=ROUND_FLOOR)))
    if level.sell_pct == HUNDRED or qty >= position.qty:
        open_qty = position.qty
        return _close(position, lambda: f"{reached()}: close ({_contracts(open_qty)})", "profit", fired + 1)
    return ExitDecision(
        ExitAction.TRIM,
        qty,
        lambda: f"{reached()}: trim {_pct(level.sell_pct)}% ({_contracts(qty)})",
        "profit",
        fired + 1,
    )


def _close(position: Position, reason: Callable[[], str], rule: str, level: int = 0) -> ExitDecision:
    return ExitDecision(ExitAction.CLOSE, position.qty, reason, rule, level)


def _require_aware(moment: datetime, name: str) -> None:
    if moment.tzinfo is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, not {moment.isoformat()}.")


def _pct(value: Decimal) -> str:
    """A percentage for a trader: `30`, `12.5`, `33.33`."""
    return f"{value.quantize(Decimal('0.01'), ROUND_HALF_UP).normalize():f}"


def _price(value: Decimal) -> str:
    """A price with at least two decimals and at most four: `1.20`, `0.05`, `1.2333`."""
    whole, _, fraction = f"{value.quantize(Decimal('0.0001'), ROUND_HALF_UP).normalize():f}".partition(".")
    return f"{whole}.{fraction.ljust(2, '0')}"


def _contracts(qty: int) -> str:
    return f"{qty} contract{'s' if qty != 1 else ''}"
