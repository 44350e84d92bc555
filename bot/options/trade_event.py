"""One fill as the trade ledger records it, and its JSON line: the ledger's public format.

Read and written with the standard library alone (a command that only reads the ledger starts without a validation
library). The lines are those pydantic wrote before (tests/core/golden_ledger.jsonl holds them byte for byte), and a
line is read as strictly: each field checked, the first wrong one named.
"""

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from json.encoder import encode_basestring
from typing import Literal, NamedTuple, TypedDict, get_args

from bot.options.contracts import OptionContract, Right
from bot.options.json_values import (
    REQUIRED,
    Reader,
    Unreadable,
    aware_time,
    decimal,
    iso_date,
    non_empty,
    not_negative,
    one_of,
    or_none,
    parse_json,
    positive,
    read_object,
    text,
    whole,
)
from bot.options.positions import ActionKind, Position, PositionAction, Source
from bot.options.side import Side

SCHEMA_VERSION = 1
AVG_ENTRY_PLACES = Decimal("0.000001")  # the contract asks for at least 4 decimal places

LifecycleEvent = Literal["expire", "exercise", "assign"]


class Noted(TypedDict, total=False):
    """Fields of a line that a fill does not carry: set beside it by who records it (an expiry the broker reported)."""

    broker_ts: datetime
    event: LifecycleEvent


class LedgerError(Exception):
    """The ledger cannot be read or written; the message names the file and line."""


# A NamedTuple, not a frozen dataclass: every read-only command imports this module, and a dataclass takes Python 3.11
# ~1.5 ms to make. No annotations from __future__ here: typing would compile each field's type given as text (~30 us
# a field).
class TradeEvent(NamedTuple):
    """One fill as the ledger records it, with the position as it stood after the fill. Fields in line order but `v`,
    which the line writes first (LINE_FIELDS)."""

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
    v: int = SCHEMA_VERSION  # the schema's version: last here, so that the others may be given in order

    @classmethod
    def record(cls, event_id: str, position: Position, action: PositionAction) -> "TradeEvent":
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
        """The line's fields as JSON values (amounts and times as text), in line order; `broker_ts` and `event` only
        when set."""
        fields: dict[str, object] = json.loads(self.to_line())
        return fields

    def to_line(self) -> bytes:
        """The ledger line, byte for byte as pydantic wrote it. Raises ValueError for a time without a zone or an
        amount that is no number: the ledger could not read them back."""
        # Formatted here rather than by a JSON encoder from a dict (a third of the time, on every fill): only the texts
        # need JSON's escaping; enums, dates, whole numbers and amounts are written as they are.
        q = encode_basestring  # a JSON string: its characters as they are, quotes, backslashes and controls escaped
        line = (
            f'{{"v":{self.v},"event_id":{q(self.event_id)},"ts":"{_time_text(self.ts)}","kind":"{self.kind}",'
            f'"position_id":{q(self.position_id)},"order_id":{q(self.order_id)},"fill_id":{q(self.fill_id)},'
            f'"strategy":{q(self.strategy)},"source":"{self.source}",'
            f'"actor":{"null" if self.actor is None else q(self.actor)},'
            f'"symbol":{q(self.symbol)},"underlying":{q(self.underlying)},"expiry":"{self.expiry.isoformat()}",'
            f'"right":"{self.right}","strike":"{_amount(self.strike)}","side":"{self.side}","qty":{self.qty},'
            f'"price":"{_amount(self.price)}","multiplier":{self.multiplier},"fees":"{_amount(self.fees)}",'
            f'"position_qty":{self.position_qty},"avg_entry":"{_amount(self.avg_entry)}",'
            f'"realized_pnl":"{_amount(self.realized_pnl)}","realized_pnl_total":"{_amount(self.realized_pnl_total)}"'
        )
        if self.broker_ts is not None:
            line += f',"broker_ts":"{_time_text(self.broker_ts)}"'
        if self.event is not None:
            line += f',"event":{q(self.event)}'
        return (line + "}\n").encode()


def _time_text(ts: datetime) -> str:
    """ISO 8601 as pydantic wrote it: microseconds only when set, a zero offset as `Z`, another as ±HH:MM."""
    offset = ts.utcoffset()
    if offset is None:
        raise ValueError(f"a trade event's time must say its time zone: {ts}")
    local = ts.replace(tzinfo=None).isoformat()
    seconds = int(offset.total_seconds())
    if not seconds:
        return local + "Z"
    hours, minutes = divmod(abs(seconds) // 60, 60)
    return f"{local}{'-' if seconds < 0 else '+'}{hours:02d}:{minutes:02d}"


def _amount(amount: Decimal) -> str:
    if amount.is_finite():
        return str(amount)
    raise ValueError(f"a trade event's amount must be a finite number, not {amount}")


# Each field in line order: its reader, and its value when the line leaves it out (`broker_ts` and `event`, and `v`
# on the first lines ever written).
_FIELDS: tuple[tuple[str, Reader, object], ...] = (
    ("v", whole, SCHEMA_VERSION),
    ("event_id", non_empty, REQUIRED),
    ("ts", aware_time, REQUIRED),
    ("kind", one_of(ActionKind), REQUIRED),
    ("position_id", non_empty, REQUIRED),
    ("order_id", non_empty, REQUIRED),
    ("fill_id", non_empty, REQUIRED),
    ("strategy", text, REQUIRED),
    ("source", one_of(Source), REQUIRED),
    ("actor", or_none(text), REQUIRED),
    ("symbol", text, REQUIRED),
    ("underlying", text, REQUIRED),
    ("expiry", iso_date, REQUIRED),
    ("right", one_of(Right), REQUIRED),
    ("strike", decimal, REQUIRED),
    ("side", one_of(Side), REQUIRED),
    ("qty", positive, REQUIRED),
    ("price", decimal, REQUIRED),
    ("multiplier", positive, REQUIRED),
    ("fees", decimal, REQUIRED),
    ("position_qty", not_negative, REQUIRED),
    ("avg_entry", decimal, REQUIRED),
    ("realized_pnl", decimal, REQUIRED),
    ("realized_pnl_total", decimal, REQUIRED),
    ("broker_ts", or_none(aware_time), None),
    ("event", or_none(one_of(get_args(LifecycleEvent))), None),
)


LINE_FIELDS = tuple(name for name, _, _ in _FIELDS)  # the line's keys in its order (`v` first): the trades CSV's


def parse_line(path: object, number: int, line: bytes) -> TradeEvent:
    """One ledger line as an event; a malformed one raises LedgerError naming the file (`path`, named only: the core
    reads no files here), the line and the field."""
    try:
        v, *fields = read_object(parse_json(line), _FIELDS)
    except Unreadable as error:
        where = error.where or "line"
        raise LedgerError(f"{path}: line {number} is not a valid trade event ({where}: {error.what})") from None
    return TradeEvent._make((*fields, v))
