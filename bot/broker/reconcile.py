"""Reconciliation, the pure part: the ledger against the broker's fills of one day and its positions now.

It finds fills the ledger is missing, ledger fills the broker does not know, fills whose quantity or price
differ, and contracts whose open quantity differs. A missing fill may be applied (appended with source
`reconcile`, the broker's time in `broker_ts`) only to a position the ledger has open and knows the order
of; anything else is reported, never guessed. Nothing is ever removed from the ledger.

The day's expiries, exercises and assignments (see `bot.broker.activities`) are matched the same way: one the
ledger misses is reported as such (and may be applied as the close it makes), never as a quantity difference; the
shares an exercise or assignment moved are listed, as they are no position of the desk.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from decimal import Decimal
from typing import Any

from bot.broker.activities import BrokerActivity, close_event, plan_activities
from bot.broker.fills import BrokerFill
from bot.options.errors import TradeError
from bot.options.ids import new_id
from bot.options.positions import Position, Source
from bot.options.trade_ledger import TradeEvent, replay

RECONCILE_ACTOR = "reconcile"
# Expiry settlements are written by the desk, not executed at the broker.
_NOT_AT_BROKER = frozenset({"expiry"})


@dataclass(frozen=True, slots=True)
class Mismatch:
    fill_id: str
    symbol: str
    ledger: str  # "qty @ price" as the ledger has it
    broker: str


@dataclass(frozen=True, slots=True)
class QuantityGap:
    symbol: str
    ledger_qty: int
    broker_qty: int


@dataclass(frozen=True, slots=True)
class Refusal:
    fill: BrokerFill
    reason: str


@dataclass
class ReconcileReport:
    day: date
    missing: list[BrokerFill] = field(default_factory=list)
    unknown: list[TradeEvent] = field(default_factory=list)
    mismatched: list[Mismatch] = field(default_factory=list)
    gaps: list[QuantityGap] = field(default_factory=list)
    to_apply: list[TradeEvent] = field(default_factory=list)  # ledger lines for the missing fills that may be applied
    refused: list[Refusal] = field(default_factory=list)  # missing fills that may not
    applied: int = 0
    # Expiries, exercises and assignments the ledger misses, those of them that may not be applied (and why), and
    # the shares the day's exercises and assignments moved.
    lifecycle: list[BrokerActivity] = field(default_factory=list)
    lifecycle_refused: dict[str, str] = field(default_factory=dict)
    shares: list[BrokerActivity] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unknown or self.mismatched or self.gaps or self.lifecycle)

    def summary(self) -> str:
        if self.ok:
            return f"Reconcile {self.day}: the ledger matches the broker."
        applicable = sum(1 for event in self.to_apply if event.event is None)
        lifecycle = (
            f", {len(self.lifecycle)} expiry, exercise or assignment(s) missing "
            f"({len(self.lifecycle) - len(self.lifecycle_refused)} can be applied)"
            if self.lifecycle
            else ""
        )
        return (
            f"Reconcile {self.day}: {len(self.missing)} fill(s) missing from the ledger "
            f"({applicable} can be applied), {len(self.unknown)} unknown to the broker, "
            f"{len(self.mismatched)} mismatched, {len(self.gaps)} position quantity difference(s){lifecycle}."
        )

    def lines(self) -> list[str]:
        lines = [self.summary()]
        applicable = {event.fill_id for event in self.to_apply}
        for fill in self.missing:
            note = "can be applied" if fill.fill_id in applicable else "not applied"
            lines.append(f"  missing  {_fill_text(fill)} ({note})")
        lines += [f"  refused  {r.fill.fill_id}: {r.reason}" for r in self.refused]
        lines += [
            f"  unknown  {e.fill_id} {e.symbol.replace('  ', ' ')} {e.side} {e.qty} @ {e.price} (order {e.order_id})"
            for e in self.unknown
        ]
        lines += [f"  differs  {m.fill_id} {m.symbol}: ledger {m.ledger}, broker {m.broker}" for m in self.mismatched]
        lines += [f"  position {g.symbol}: ledger {g.ledger_qty} open, broker {g.broker_qty}" for g in self.gaps]
        for activity in self.lifecycle:
            reason = self.lifecycle_refused.get(activity.activity_id)
            lines.append(f"  missing  {activity.text()} ({'not applied: ' + reason if reason else 'can be applied'})")
        lines += [f"  shares   {a.shares_text()}" for a in self.shares]
        if self.applied:
            lines.append(f"  applied {self.applied} missing fill(s) to the ledger (source reconcile)")
        return lines

    def to_json(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "ok": self.ok,
            "missing": [_fill_json(f, f.fill_id in {e.fill_id for e in self.to_apply}) for f in self.missing],
            "refused": [{"fill_id": r.fill.fill_id, "reason": r.reason} for r in self.refused],
            "unknown": [
                {"fill_id": e.fill_id, "order_id": e.order_id, "symbol": e.symbol, "qty": e.qty, "price": str(e.price)}
                for e in self.unknown
            ],
            "mismatched": [vars_of(m) for m in self.mismatched],
            "positions": [vars_of(g) for g in self.gaps],
            "lifecycle": [
                {
                    "activity_id": a.activity_id,
                    "event": a.event,
                    "symbol": a.symbol,
                    "qty": a.contracts,
                    "day": a.day.isoformat(),
                    "applicable": a.activity_id not in self.lifecycle_refused,
                    "reason": self.lifecycle_refused.get(a.activity_id),
                }
                for a in self.lifecycle
            ],
            "shares": [
                {"activity_id": a.activity_id, "underlying": a.leg.underlying, "shares": a.leg.shares}
                | {"price": None if a.leg.price is None else str(a.leg.price)}
                for a in self.shares
                if a.leg is not None
            ],
            "applied": self.applied,
        }


def vars_of(item: Mismatch | QuantityGap) -> dict[str, object]:
    return {name: getattr(item, name) for name in item.__slots__}


def _fill_text(fill: BrokerFill) -> str:
    return f"{fill.fill_id} {fill.symbol} {fill.side} {fill.qty} @ {fill.price} at {fill.ts:%H:%M:%S}Z"


def _fill_json(fill: BrokerFill, applicable: bool) -> dict[str, object]:
    return {
        "fill_id": fill.fill_id,
        "order_id": fill.order_id,
        "symbol": fill.symbol,
        "side": fill.side.value,
        "qty": fill.qty,
        "price": str(fill.price),
        "ts": fill.ts.isoformat(),
        "applicable": applicable,
    }


def reconcile(
    events: list[TradeEvent],
    broker_fills: Iterable[BrokerFill],
    broker_positions: Mapping[str, int],
    *,
    day: date,
    zone: tzinfo,
    now: datetime,
    fee_per_contract: Decimal,
    activities: Iterable[BrokerActivity] = (),
) -> ReconcileReport:
    """Compare the whole ledger (`events`) with the broker's fills, expiries, exercises and assignments
    (`activities`) of `day` and its positions (symbol -> qty); a missing fill would be recorded with
    `fee_per_contract` (the broker reports none)."""
    report = ReconcileReport(day)
    fills = sorted(broker_fills, key=lambda f: f.ts)
    recorded = {event.fill_id: event for event in events}
    lifecycle = list(activities)
    at_broker = {fill.fill_id for fill in fills} | {activity.activity_id for activity in lifecycle}
    for fill in fills:
        event = recorded.get(fill.fill_id)
        if event is None:
            report.missing.append(fill)
        elif (event.qty, event.price, event.side) != (fill.qty, fill.price, fill.side):
            ledger, broker = f"{event.side} {event.qty} @ {event.price}", f"{fill.side} {fill.qty} @ {fill.price}"
            report.mismatched.append(Mismatch(fill.fill_id, fill.symbol, ledger, broker))
    report.unknown = [
        event
        for event in events
        if (event.broker_ts or event.ts).astimezone(zone).date() == day
        and event.actor not in _NOT_AT_BROKER
        and _at_broker_as(event) not in at_broker
    ]
    positions = replay(events)
    _plan_lifecycle(report, events, positions, lifecycle)
    held: dict[str, int] = {}
    for position in positions.values():
        if position.is_open:
            held[position.contract.symbol] = held.get(position.contract.symbol, 0) + position.qty
    report.gaps = [
        QuantityGap(symbol, held.get(symbol, 0), broker_positions.get(symbol, 0))
        for symbol in sorted(held.keys() | broker_positions.keys())
        if held.get(symbol, 0) != broker_positions.get(symbol, 0)
    ]
    _plan(report, events, positions, now, fee_per_contract)
    return report


def _at_broker_as(event: TradeEvent) -> str:
    """The id the broker knows a ledger line by: its fill id, or for an expiry, exercise or assignment the activity's
    (a position's part of one shared by several positions carries both, see `fill_id_for`)."""
    return event.fill_id.partition("/")[0] if event.event is not None else event.fill_id


def _plan_lifecycle(
    report: ReconcileReport, events: list[TradeEvent], positions: dict[str, Position], lifecycle: list[BrokerActivity]
) -> None:
    """The ledger lines of the expiries, exercises and assignments the ledger misses, applied to `positions` (so no
    quantity difference is reported for them), and why the others may not be applied."""
    plan = plan_activities(lifecycle, positions.values(), (event.fill_id for event in events))
    for close in plan.closes:
        positions[close.position.position_id], event = close_event(close, Source.RECONCILE, RECONCILE_ACTOR)
        report.to_apply.append(event)
    for activity in plan.not_held:
        report.lifecycle_refused[activity.activity_id] = f"no open position of the desk holds {activity.symbol}"
    for activity in plan.unpriced:
        report.lifecycle_refused[activity.activity_id] = (
            "no price of the underlying at that close to value it by (Alpaca gave the strike): the running desk "
            "records it from its quotes"
        )
    for activity in plan.fewer:
        report.lifecycle_refused[activity.activity_id] = (
            f"the desk holds more than its {activity.contracts}: a fill the ledger misses comes first (apply it, "
            "then run reconcile again)"
        )
    planned = [close.activity for close in plan.closes] + plan.not_held + plan.unpriced + plan.fewer
    report.lifecycle = list({activity.activity_id: activity for activity in planned}.values())
    report.shares = [activity for activity in lifecycle if activity.shares_text() is not None]


def _plan(
    report: ReconcileReport,
    events: list[TradeEvent],
    positions: dict[str, Position],
    now: datetime,
    fee_per_contract: Decimal,
) -> None:
    """Which missing fills may be applied, as the ledger lines they would be, and why the others may not."""
    position_of_order = {event.order_id: event.position_id for event in events}
    for fill in report.missing:
        position_id = position_of_order.get(fill.order_id or "")
        position = positions.get(position_id or "")
        if fill.order_id is None:
            reason = "its order was not sent by the desk"
        elif position is None:
            reason = f"no fill of its order {fill.order_id} is in the ledger: the position's opening fill is missing"
        elif not position.is_open:
            reason = f"position {position.position_id} is already closed in the ledger"
        elif position.contract.symbol != fill.symbol:
            reason = f"position {position.position_id} holds {position.contract.symbol}, not {fill.symbol}"
        else:
            try:
                after, action = position.with_fill(
                    side=fill.side,
                    qty=fill.qty,
                    price=fill.price,
                    fees=fee_per_contract * fill.qty,
                    ts=now,
                    fill_id=fill.fill_id,
                    order_id=fill.order_id,
                    source=Source.RECONCILE,
                    actor=RECONCILE_ACTOR,
                )
            except TradeError as error:
                reason = str(error)
            else:
                positions[after.position_id] = after
                event = TradeEvent.record(new_id("evt"), after, action)
                report.to_apply.append(event._replace(broker_ts=fill.ts))
                continue
        report.refused.append(Refusal(fill, reason))
