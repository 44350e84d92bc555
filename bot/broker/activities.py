"""How options end at Alpaca without a fill: an expiry (`OPEXP`), an exercise (`OPEXC`) or an assignment (`OPASN`),
each with its stock leg (`OPTRD`) when shares change hands. Read over REST as the fill history is, and planned as the
ledger closes they make: one `close` per position holding the contract, its fill id the activity's id (so it is
applied once, across restarts and `reconcile --apply`), stamped at the close of the activity's day (as the paper
path stamps an expiry) with that time in `broker_ts` and the kind in `event`.

Prices: an expiry closes at 0. An exercise or assignment closes at intrinsic value from the underlying's price at that
day's close, the paper path's rule, so both paths book the same P&L: the price the desk saw at the close, else the
stock leg's price when Alpaca gives one other than the strike. Without either it is not recorded yet (said once).
The shares are not a position of the desk: the admins are told, and the reconcile report lists them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from alpaca.trading.client import TradingClient

from bot.broker.alpaca_fills import account_activities, ledger_symbol, whole_contracts
from bot.options.contracts import OptionContract
from bot.options.errors import TradeError, escaped
from bot.options.ids import new_id
from bot.options.market_hours import session_close
from bot.options.orders import Side
from bot.options.positions import Position, Source
from bot.options.trade_event import LifecycleEvent, Noted, TradeEvent
from bot.strategies.options.exit_rules import expiry_settlement_price

EVENTS: dict[str, LifecycleEvent] = {"OPEXP": "expire", "OPEXC": "exercise", "OPASN": "assign"}
log = logging.getLogger(__name__)

STOCK_LEG = "OPTRD"
# Activities Alpaca sent that cannot be read, said once a process (the desk asks again every few minutes).
_UNREADABLE: set[str] = set()
_NOUN = {"expire": "expiry", "exercise": "exercise", "assign": "assignment"}

# The underlying's price at an activity's close, as the desk saw it (None: it has none).
Spot = Callable[[str, datetime], Decimal | None]


def no_spot(underlying: str, at: datetime) -> Decimal | None:
    return None


@dataclass(frozen=True, slots=True)
class ShareLeg:
    """Shares received (+) or delivered (-) at an exercise or assignment, at `price` a share."""

    activity_id: str
    underlying: str
    shares: int
    price: Decimal | None


@dataclass(frozen=True, slots=True)
class BrokerActivity:
    activity_id: str
    event: LifecycleEvent
    symbol: str  # padded OCC, as the ledger writes it
    contracts: int
    day: date
    leg: ShareLeg | None = None

    @property
    def at(self) -> datetime:
        """When it took effect: Alpaca gives a day, and expiries and exercises are done at its close."""
        return session_close(self.day).astimezone(UTC)

    @property
    def noun(self) -> str:
        return _NOUN[self.event]

    @property
    def label(self) -> str:
        contract = contract_of(self.symbol)
        return contract.label if contract is not None else self.symbol

    def text(self) -> str:
        return f"{self.activity_id} {self.noun} of {self.contracts} {self.label} on {self.day}"

    def shares_text(self) -> str | None:
        """The shares it moved, in one sentence for the admins (escaped: Discord reads it), or None."""
        if self.leg is None or not self.leg.shares:
            return None
        moved = "received" if self.leg.shares > 0 else "delivered"
        at = f" at {self.leg.price}" if self.leg.price is not None else ""
        return escaped(
            f"the {self.noun} of {self.contracts} {self.label} at Alpaca on {self.day} "
            f"{moved} {abs(self.leg.shares)} {self.leg.underlying} shares{at}; shares are not a desk position: "
            "manage them at Alpaca"
        )


def parse_activities(raw: Iterable[dict[str, Any]]) -> list[BrokerActivity]:
    """The option activities among `raw` (Alpaca's JSON), each with the first stock leg of the same day and
    underlying that no other took. One that cannot be read (a field missing, a fractional quantity) is left out
    with one line: the others still count."""
    options: dict[str, tuple[dict[str, Any], str, date]] = {}
    legs: list[tuple[ShareLeg, date]] = []
    for item in raw:
        kind = item.get("activity_type")
        if kind != STOCK_LEG and kind not in EVENTS:
            continue
        try:
            activity_id, day = str(item["id"]), date.fromisoformat(str(item["date"]))
            if kind == STOCK_LEG:
                if all(leg.activity_id != activity_id for leg, _ in legs):  # a leg reported twice is one
                    price = item.get("price")
                    symbol, qty = str(item["symbol"]), whole_contracts(item.get("qty"))
                    legs.append(
                        (ShareLeg(activity_id, symbol, qty, None if price is None else Decimal(str(price))), day)
                    )
            else:
                options[activity_id] = (item, ledger_symbol(str(item["symbol"])), day)  # one reported twice is one
        except (KeyError, ValueError, TypeError, InvalidOperation) as error:
            _say_unreadable(item, error)
    found = []
    for activity_id, (item, symbol, day) in options.items():
        try:
            contracts = abs(whole_contracts(item.get("qty")))
        except (ValueError, InvalidOperation) as error:
            _say_unreadable(item, error)
            continue
        leg: ShareLeg | None = None
        if item["activity_type"] != "OPEXP":
            contract = contract_of(symbol)
            underlying = contract.underlying if contract is not None else None
            taken = next(((g, d) for g, d in legs if g.underlying == underlying and d == day), None)
            if taken is not None:
                legs.remove(taken)
                leg = taken[0]
        found.append(BrokerActivity(activity_id, EVENTS[item["activity_type"]], symbol, contracts, day, leg))
    return found


def _say_unreadable(item: dict[str, Any], error: Exception) -> None:
    name = f"{item.get('activity_type')} {item.get('id', '(no id)')}"
    if name not in _UNREADABLE:
        _UNREADABLE.add(name)
        log.warning("broker: Alpaca's activity %s cannot be read (%s); left out: look at it at Alpaca", name, error)


def fetch_activities(client: TradingClient, after: datetime, until: datetime | None = None) -> list[BrokerActivity]:
    """Alpaca's option activities (and their stock legs) after `after` (and before `until`). Blocking."""
    raw = [item for kind in (*EVENTS, STOCK_LEG) for item in account_activities(client, kind, after, until)]
    return parse_activities(raw)


def shared(activity_id: str, fill_ids: Iterable[str]) -> bool:
    """Whether the ledger holds the close of some position's part of it (see `fill_id_for`)."""
    return any(f.startswith(f"{activity_id}/") for f in fill_ids)


def fill_id_for(activity: BrokerActivity, position: Position, parts: bool) -> str:
    """The activity's id; with more than one open position in the contract (`parts`), each has its own (fill ids are
    unique)."""
    return f"{activity.activity_id}/{position.position_id}" if parts else activity.activity_id


def price_of(activity: BrokerActivity, contract: OptionContract, spot: Spot) -> Decimal | None:
    """What the close is recorded at (see the module's note); None: no price to value it by yet."""
    if activity.event == "expire":
        return Decimal(0)
    underlying = spot(contract.underlying, activity.at)
    if underlying is None and activity.leg is not None and activity.leg.price not in (None, contract.strike):
        underlying = activity.leg.price
    return None if underlying is None else expiry_settlement_price(contract, underlying)


@dataclass(frozen=True, slots=True)
class ActivityClose:
    position: Position
    activity: BrokerActivity
    fill_id: str
    price: Decimal

    @property
    def noted(self) -> Noted:
        """The ledger fields a fill does not have."""
        return {"event": self.activity.event, "broker_ts": self.activity.at}


@dataclass
class ActivityPlan:
    closes: list[ActivityClose] = field(default_factory=list)
    not_held: list[BrokerActivity] = field(default_factory=list)  # a contract no open position of the desk holds
    unpriced: list[BrokerActivity] = field(default_factory=list)  # an exercise or assignment with no price yet
    # For fewer contracts than the desk holds: a sell the ledger misses comes first (reconcile finds it); closing the
    # whole position at the activity's price would book that sell's contracts at it.
    fewer: list[BrokerActivity] = field(default_factory=list)


def plan_activities(
    activities: Iterable[BrokerActivity], positions: Iterable[Position], fill_ids: Iterable[str], spot: Spot = no_spot
) -> ActivityPlan:
    """The closes the activities the ledger does not hold yet make of the open `positions`."""
    plan = ActivityPlan()
    known = set(fill_ids)
    holding: dict[str, list[Position]] = {}
    for position in positions:
        if position.is_open:
            holding.setdefault(position.contract.symbol, []).append(position)
    for activity in activities:
        if activity.activity_id in known:
            continue
        # Shared by several positions, some of whose closes are recorded (a restart came between): the others' are due.
        parts = shared(activity.activity_id, known)
        holders = holding.pop(activity.symbol, [])
        if not holders:
            if not parts:
                plan.not_held.append(activity)
            continue
        if not parts and activity.contracts < sum(p.qty for p in holders):
            plan.fewer.append(activity)
            holding[activity.symbol] = holders
            continue
        price = price_of(activity, holders[0].contract, spot)
        if price is None:
            plan.unpriced.append(activity)
            holding[activity.symbol] = holders
            continue
        parts = parts or len(holders) > 1
        plan.closes += [ActivityClose(p, activity, fill_id_for(activity, p, parts), price) for p in holders]
    return plan


def close_event(close: ActivityClose, source: Source, actor: str | None) -> tuple[Position, TradeEvent]:
    """The position after `close`, and its ledger line as `reconcile --apply` writes it (the desk records it through
    its order manager)."""
    after, action = close.position.with_fill(
        side=Side.SELL,
        qty=close.position.qty,
        price=close.price,
        fees=Decimal(0),
        ts=close.activity.at,
        fill_id=close.fill_id,
        order_id=new_id("ord"),
        source=source,
        actor=actor,
    )
    return after, TradeEvent.record(new_id("evt"), after, action)._replace(**close.noted)


def contract_of(symbol: str) -> OptionContract | None:
    try:
        return OptionContract.parse(symbol)
    except TradeError:
        return None
