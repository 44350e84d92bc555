"""One fill as the trade ledger records it, and its JSON line: the ledger's public format.

Read and written with the standard library alone (a command that only reads the ledger starts without a validation
library). The lines are those pydantic wrote before (tests/core/golden_ledger.jsonl holds them byte for byte), and a
line is read as strictly: each field checked, the first wrong one named.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, TypedDict, get_args

from bot.options.contracts import OptionContract, Right
from bot.options.orders import Side
from bot.options.positions import ActionKind, Position, PositionAction, Source

SCHEMA_VERSION = 1
AVG_ENTRY_PLACES = Decimal("0.000001")  # the contract asks for at least 4 decimal places

LifecycleEvent = Literal["expire", "exercise", "assign"]


class Noted(TypedDict, total=False):
    """Fields of a line that a fill does not carry: set beside it by who records it (an expiry the broker reported)."""

    broker_ts: datetime
    event: LifecycleEvent


class LedgerError(Exception):
    """The ledger cannot be read or written; the message names the file and line."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TradeEvent:
    """One fill as the ledger records it, with the position as it stood after the fill. Fields in line order."""

    v: int = SCHEMA_VERSION
    event_id: str
    ts: datetime
    kind: ActionKind
    position_id: str
    order_id: str
    fill_id: str
    strategy: str
    source: Source
    actor: str | None
    symbol: str
    underlying: str
    expiry: date
    right: Right
    strike: Decimal
    side: Side
    qty: int
    price: Decimal
    multiplier: int
    fees: Decimal
    position_qty: int
    avg_entry: Decimal
    realized_pnl: Decimal
    realized_pnl_total: Decimal
    # When the broker executed a fill that was recorded later (by reconciliation); absent on other lines.
    broker_ts: datetime | None = None
    # How a position ended without an order (an expiry, exercise or assignment the broker reported); absent otherwise.
    event: LifecycleEvent | None = None

    @classmethod
    def record(cls, event_id: str, position: Position, action: PositionAction) -> TradeEvent:
        """The event for `action`, given the position right after it."""
        contract = position.contract
        return cls(
            event_id=event_id,
            ts=action.ts.astimezone(UTC),  # stored in UTC, so that the line says `Z`
            kind=action.kind,
            position_id=position.position_id,
            order_id=action.order_id,
            fill_id=action.fill_id,
            strategy=position.strategy,
            source=action.source,
            actor=action.actor,
            symbol=contract.symbol,
            underlying=contract.underlying,
            expiry=contract.expiry,
            right=contract.right,
            strike=contract.strike,
            side=action.side,
            qty=action.qty,
            price=action.price,
            multiplier=contract.multiplier,
            fees=action.fees,
            position_qty=position.qty,
            avg_entry=position.avg_entry.quantize(AVG_ENTRY_PLACES),
            realized_pnl=action.realized_pnl,
            realized_pnl_total=position.realized_pnl,
        )

    @property
    def contract(self) -> OptionContract:
        return OptionContract(self.underlying, self.expiry, self.right, self.strike, self.multiplier)

    def json_fields(self) -> dict[str, object]:
        """The line's fields as JSON values, in line order; `broker_ts` and `event` only when set. Raises ValueError
        for a time without a zone or an amount that is no number: the ledger could not read them back."""
        fields: dict[str, object] = {
            "v": self.v,
            "event_id": self.event_id,
            "ts": _time_text(self.ts),
            "kind": self.kind,
            "position_id": self.position_id,
            "order_id": self.order_id,
            "fill_id": self.fill_id,
            "strategy": self.strategy,
            "source": self.source,
            "actor": self.actor,
            "symbol": self.symbol,
            "underlying": self.underlying,
            "expiry": self.expiry.isoformat(),
            "right": self.right,
            "strike": _money_text(self.strike),
            "side": self.side,
            "qty": self.qty,
            "price": _money_text(self.price),
            "multiplier": self.multiplier,
            "fees": _money_text(self.fees),
            "position_qty": self.position_qty,
            "avg_entry": _money_text(self.avg_entry),
            "realized_pnl": _money_text(self.realized_pnl),
            "realized_pnl_total": _money_text(self.realized_pnl_total),
        }
        if self.broker_ts is not None:
            fields["broker_ts"] = _time_text(self.broker_ts)
        if self.event is not None:
            fields["event"] = self.event
        return fields

    def to_line(self) -> bytes:
        return _ENCODER.encode(self.json_fields()).encode() + b"\n"


# Compact and UTF-8 as pydantic wrote the lines (the enums are str, written as their values).
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
# A JSON number with a fraction is read as the exact Decimal its digits say, never through a float.
_DECODER = json.JSONDecoder(parse_float=Decimal)


def _time_text(ts: datetime) -> str:
    """ISO 8601 as pydantic wrote it: microseconds only when set, a zero offset as `Z`, another as ±HH:MM."""
    offset = ts.utcoffset()
    if offset is None:
        raise ValueError(f"a trade event's time must say its time zone: {ts}")
    text = ts.replace(tzinfo=None).isoformat()
    seconds = int(offset.total_seconds())
    if not seconds:
        return text + "Z"
    hours, minutes = divmod(abs(seconds) // 60, 60)
    return f"{text}{'-' if seconds < 0 else '+'}{hours:02d}:{minutes:02d}"


def _money_text(amount: Decimal) -> str:
    if amount.is_finite():
        return str(amount)
    raise ValueError(f"a trade event's amount must be a finite number, not {amount}")


# Readers of one field's JSON value: the value the event holds, or ValueError saying what is wrong with it.


def _text(value: Any) -> str:
    if type(value) is str:
        return value
    raise ValueError("not a string")


def _id(value: Any) -> str:
    if type(value) is str and value:
        return value
    raise ValueError("not a string" if type(value) is not str else "empty")


def _whole(value: Any) -> int:
    # A bool is a JSON true or false, not a number; 10.0 (a JSON number, read as a Decimal) is whole.
    if type(value) is int:
        return value
    if type(value) is Decimal and value.is_finite() and value == value.to_integral_value():
        return int(value)
    raise ValueError("not a whole number")


def _count(value: Any) -> int:
    number = _whole(value)
    if number > 0:
        return number
    raise ValueError("not above 0")


def _held(value: Any) -> int:
    number = _whole(value)
    if number >= 0:
        return number
    raise ValueError("below 0")


def _money(value: Any) -> Decimal:
    # A string as the desk writes amounts, or a JSON number (int, or Decimal through the decoder).
    if type(value) is str or type(value) is int or type(value) is Decimal:
        try:
            amount = Decimal(value)
        except ArithmeticError:
            raise ValueError("not a decimal number") from None
        if amount.is_finite():
            return amount
        raise ValueError("not a finite number")
    raise ValueError("not a decimal number (a string or a number)")


def _time(value: Any) -> datetime:
    if type(value) is str:
        try:
            ts = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("not an ISO 8601 time") from None
        if ts.utcoffset() is not None:
            return ts
        raise ValueError("a time without its time zone")
    raise ValueError("not an ISO 8601 time")


def _day(value: Any) -> date:
    if type(value) is str:
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError("not an ISO 8601 date")


def _one_of(values: type[StrEnum] | tuple[str, ...]) -> Callable[[Any], Any]:
    members: dict[str, Any] = {str(value): value for value in values}
    wanted = "not one of " + ", ".join(members)

    def read(value: Any) -> Any:
        try:
            return members[value]
        except (KeyError, TypeError):  # TypeError: a list or an object, which cannot be looked up
            raise ValueError(wanted) from None

    return read


def _or_none(read: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def optional(value: Any) -> Any:
        return None if value is None else read(value)

    return optional


_REQUIRED = object()
# Each field in line order: its reader, and its value when the line leaves it out. Keys a line holds besides are
# ignored, so that a later version may add fields.
_FIELDS: tuple[tuple[str, Callable[[Any], Any], object], ...] = (
    ("v", _whole, SCHEMA_VERSION),
    ("event_id", _id, _REQUIRED),
    ("ts", _time, _REQUIRED),
    ("kind", _one_of(ActionKind), _REQUIRED),
    ("position_id", _id, _REQUIRED),
    ("order_id", _id, _REQUIRED),
    ("fill_id", _id, _REQUIRED),
    ("strategy", _text, _REQUIRED),
    ("source", _one_of(Source), _REQUIRED),
    ("actor", _or_none(_text), _REQUIRED),
    ("symbol", _text, _REQUIRED),
    ("underlying", _text, _REQUIRED),
    ("expiry", _day, _REQUIRED),
    ("right", _one_of(Right), _REQUIRED),
    ("strike", _money, _REQUIRED),
    ("side", _one_of(Side), _REQUIRED),
    ("qty", _count, _REQUIRED),
    ("price", _money, _REQUIRED),
    ("multiplier", _count, _REQUIRED),
    ("fees", _money, _REQUIRED),
    ("position_qty", _held, _REQUIRED),
    ("avg_entry", _money, _REQUIRED),
    ("realized_pnl", _money, _REQUIRED),
    ("realized_pnl_total", _money, _REQUIRED),
    ("broker_ts", _or_none(_time), None),
    ("event", _or_none(_one_of(get_args(LifecycleEvent))), None),
)


def parse_line(path: Path, number: int, line: bytes) -> TradeEvent:
    """One ledger line as an event; a malformed one raises LedgerError naming the file, the line and the field."""
    try:
        raw = _DECODER.decode(line.decode())
    except (ValueError, RecursionError) as error:  # not UTF-8, not JSON, nested too deep
        raise _not_valid(path, number, "line", f"not JSON: {error}") from None
    if type(raw) is not dict:
        raise _not_valid(path, number, "line", "not a JSON object")
    values = {}
    for name, read, default in _FIELDS:
        value = raw.get(name, default)
        if value is _REQUIRED:
            raise _not_valid(path, number, name, "missing")
        try:
            values[name] = read(value)
        except ValueError as error:
            raise _not_valid(path, number, name, str(error)) from None
    return TradeEvent(**values)


def _not_valid(path: Path, number: int, where: str, what: str) -> LedgerError:
    return LedgerError(f"{path}: line {number} is not a valid trade event ({where}: {what})")
