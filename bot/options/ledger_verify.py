"""Checks every invariant of the ledger by replaying it; pure, so tests and the CLI share it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from bot.options.contracts import OptionContract
from bot.options.errors import TradeError
from bot.options.positions import Position
from bot.options.trade_ledger import TradeEvent, apply_event

# Lines written by other tools may round money to the cent; anything larger is a real mismatch.
_MONEY_TOLERANCE = Decimal("0.005")
_MIN_AVG_PLACES = 4


class LedgerReport:
    """What a replay found, filled in as it goes. (A plain class, not a dataclass: `ledger verify` and `report daily`
    import this module, and a dataclass takes Python 3.11 ~1 ms to make.)"""

    __slots__ = ("events", "first_ts", "last_ts", "positions", "problems")

    def __init__(self) -> None:
        self.events = 0
        self.positions: dict[str, Position] = {}
        self.problems: list[str] = []
        self.first_ts: datetime | None = None
        self.last_ts: datetime | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def open_positions(self) -> list[Position]:
        return [p for p in self.positions.values() if p.is_open]

    @property
    def realized_pnl(self) -> Decimal:
        return sum((p.realized_pnl for p in self.positions.values()), Decimal(0))


class EarlierLines(NamedTuple):
    """What an already verified part of the ledger, not replayed now, holds: the ids it uses and the
    positions it closed (an event for one of those now would come after its close). (A NamedTuple: `ledger verify`
    and `report daily` import this module, and a frozen dataclass takes 0.7 ms to make.)"""

    event_ids: set[str]
    fill_ids: set[str]
    closed_positions: set[str]


def verify_events(
    events: Iterable[TradeEvent], earlier: EarlierLines | None = None, numbers: Sequence[int] | None = None
) -> LedgerReport:
    """`numbers`: the ledger line of each event, when `events` are not all the lines from the first."""
    report = LedgerReport()
    event_ids: set[str] = set(earlier.event_ids) if earlier else set()
    fill_ids: set[str] = set(earlier.fill_ids) if earlier else set()
    closed_earlier = earlier.closed_positions if earlier else set()
    symbols: dict[tuple[object, ...], list[str]] = {}  # each distinct contract is checked once
    for index, event in enumerate(events):
        line = numbers[index] if numbers is not None else index + 1
        report.events += 1
        report.first_ts = report.first_ts or event.ts
        report.last_ts = event.ts
        problems = _check_identity(event, event_ids, fill_ids, report.positions.get(event.position_id), symbols)
        if event.position_id in closed_earlier:
            problems.append(f"position {event.position_id} was closed earlier in the ledger")
        try:
            after, action = apply_event(report.positions, event)
        except TradeError as error:
            problems.append(f"cannot be applied: {error}")
        else:
            problems += _check_effect(event, after, action.kind, action.realized_pnl)
        report.problems += [f"line {line} ({event.event_id}): {problem}" for problem in problems]
        event_ids.add(event.event_id)
        fill_ids.add(event.fill_id)
    return report


def _check_identity(
    event: TradeEvent,
    event_ids: set[str],
    fill_ids: set[str],
    position: Position | None,
    symbols: dict[tuple[object, ...], list[str]],
) -> list[str]:
    problems = []
    if event.event_id in event_ids:
        problems.append("event_id appears twice")
    if event.fill_id in fill_ids:
        problems.append(f"fill {event.fill_id} is recorded twice")
    fields = (event.symbol, event.underlying, event.expiry, event.right, event.strike, event.multiplier)
    known = symbols.get(fields)
    if known is None:
        known = symbols[fields] = _check_symbol(event)
    problems += known
    if position is not None and (
        position.contract.symbol != event.symbol or position.contract.multiplier != event.multiplier
    ):
        problems.append(f"contract {event.symbol!r} differs from the position's {position.contract.symbol!r}")
    return problems


def _check_symbol(event: TradeEvent) -> list[str]:
    try:
        if OptionContract.parse(event.symbol, event.multiplier) != event.contract:
            return [f"symbol {event.symbol!r} disagrees with underlying/expiry/right/strike"]
    except TradeError as error:
        return [str(error)]
    return []


def _check_effect(event: TradeEvent, after: Position, kind: str, realized: Decimal) -> list[str]:
    problems = []
    if event.kind != kind:
        problems.append(f"kind is {event.kind} but the fill is a {kind}")
    if event.position_qty != after.qty:
        problems.append(f"position_qty is {event.position_qty}, the fills give {after.qty}")
    places = -int(event.avg_entry.as_tuple().exponent)
    if places < _MIN_AVG_PLACES:
        problems.append(f"avg_entry {event.avg_entry} has fewer than {_MIN_AVG_PLACES} decimal places")
    if abs(event.avg_entry - after.avg_entry) > Decimal(1).scaleb(-places) / 2:
        problems.append(f"avg_entry is {event.avg_entry}, the fills give {after.avg_entry:.6f}")
    if abs(event.realized_pnl - realized) > _MONEY_TOLERANCE:
        problems.append(f"realized_pnl is {event.realized_pnl}, the fills give {realized:.2f}")
    if abs(event.realized_pnl_total - after.realized_pnl) > _MONEY_TOLERANCE:
        problems.append(f"realized_pnl_total is {event.realized_pnl_total}, the fills give {after.realized_pnl:.2f}")
    return problems
