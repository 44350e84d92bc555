"""Start-up: rebuild the positions from the ledger and verify them, resolve the orders the last run left open, and
settle the trading state the desk starts in.

The ledger is the positions: nothing else holds them. Orders left unanswered by a crash are resolved from the ledger
(for the paper executor an order with no recorded fill was never filled); a broker's are asked about later
(`bot.broker.restart`). A ledger that does not verify, a trading state that cannot be known or a corrupt store
tightens the trading state (see `bot.runtime.trading_state.start_state`).
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import date, datetime, time, tzinfo
from pathlib import Path
from typing import Any

from bot.options.ledger_verify import EarlierLines, verify_events
from bot.options.orders import OrderStatus
from bot.options.positions import Position
from bot.options.trade_ledger import TradeEvent, TradeLedger, parse_line
from bot.paths import ledger_path
from bot.runtime.state_file import STATE_FILE
from bot.runtime.state_store import Checkpoint, StateStore
from bot.runtime.trading_journal import first_line
from bot.runtime.trading_state import NEW_DESK, Held, start_state

log = logging.getLogger(__name__)

UNANSWERED = "not answered before a restart"


@dataclass
class ResumeReport:
    positions: dict[str, Position]
    problems: list[str] = field(default_factory=list)  # ledger invariants that do not hold
    resolved_orders: list[str] = field(default_factory=list)
    events: list[TradeEvent] = field(default_factory=list)  # the lines replayed (all, or since a checkpoint)
    kept: frozenset[str] = frozenset()  # open positions and those closed today
    trading: Held = NEW_DESK  # the trading state the desk starts in
    trading_set: str = ""  # what start-up set the trading state to and why ('' when it kept the journal's)
    store_lost: str = ""  # what was lost with a state store found missing or empty ('' when none was lost)
    ledger_lost: str = ""  # fills the ledger no longer holds, as the state store or the last start knew them

    def summary(self) -> str:
        lines = [line for line in (self.trading_set, self.store_lost) if line]
        if self.resolved_orders:
            lines.append(f"resolved {len(self.resolved_orders)} order(s) left open by a restart")
        if self.problems:
            lines.append(f"the ledger has {len(self.problems)} problem(s); first: {self.problems[0]}")
        return "; ".join(lines)


def _kept(position: Position, today: date, zone: tzinfo) -> bool:
    """Open positions and those closed today: the ones a restart replays and the store keeps highs of."""
    return position.is_open or (position.closed_at is not None and position.closed_at.astimezone(zone).date() == today)


async def resume(
    events: list[TradeEvent],
    store: StateStore,
    *,
    now: datetime,
    zone: tzinfo,
    earlier: EarlierLines | None = None,
    numbers: list[int] | None = None,
    orders_at_broker: bool = False,
    remembered: frozenset[str] = frozenset(),
) -> ResumeReport:
    """`events`: the ledger, or (with `earlier`) the lines of the positions a checkpoint kept and all after it,
    which are the ledger's lines `numbers`. `remembered`: the positions the last start kept (its checkpoint's)."""
    today = now.astimezone(zone).date()
    verified = verify_events(events, earlier, numbers)
    report = ResumeReport(verified.positions, problems=verified.problems, events=events)
    for problem in verified.problems[:20]:
        log.error("ledger: %s", problem)
    report.kept = frozenset(pid for pid, position in verified.positions.items() if _kept(position, today, zone))
    filled_by_order: dict[str, int] = {}
    for event in events:
        filled_by_order[event.order_id] = filled_by_order.get(event.order_id, 0) + event.qty
    report.ledger_lost = await _fills_lost(store, verified.positions, earlier, remembered, filled_by_order)

    # A broker's orders may still be working: the broker is asked about them (bot.broker.restart).
    if not orders_at_broker:
        for order in await store.open_orders():
            filled = filled_by_order.get(order.order_id, 0)
            status = OrderStatus.FILLED if filled >= order.requested_qty else OrderStatus.CANCELLED
            await store.resolve_order(order.order_id, status, filled, UNANSWERED, now)
            report.resolved_orders.append(order.order_id)
            log.warning("order %s was %s at the restart: %s", order.order_id, status, UNANSWERED)
    await store.prune(report.kept, datetime.combine(today, time.min, tzinfo=zone))
    if store.anew and store.set_aside is None and events:
        open_positions = sum(1 for position in verified.positions.values() if position.is_open)
        report.store_lost = (
            f"the state store {store.path} was missing or empty and was started anew: the trailing highs of "
            f"{open_positions} open position(s) start again from the next quote, and an order left in flight at a "
            "broker is not followed (python -m bot reconcile finds its fills)"
        )
    return report


async def start_up(
    storage: Path, *, now: datetime, zone: tzinfo, orders_at_broker: bool = False
) -> tuple[TradeLedger, StateStore, ResumeReport]:
    """The bot's start-up: open the ledger (cutting away a torn tail), rebuild and verify the positions from
    it, and resolve what the state store holds of the last run (`resume`).

    The part of the ledger verified at the last start-up is trusted if its digest still holds (the state
    store keeps it as a checkpoint): only the positions then kept and the lines written since are replayed
    and verified. Anything else (no checkpoint, a changed ledger) verifies the whole ledger.
    """
    ledger = TradeLedger.open(ledger_path(storage))
    try:
        # Before the store opens: its migration drops the table where older desks kept the trading state.
        before = first_line(storage)
        store = await StateStore.open(storage / STATE_FILE)
    except BaseException:
        ledger.close()
        raise
    # Reading a long ledger allocates an object per line and keeps them all: the cyclic garbage collector
    # would rescan them again and again for nothing (none of them form cycles), so it waits meanwhile.
    collecting = gc.isenabled()
    gc.disable()
    try:
        data = ledger.path.read_bytes()
        checkpoint = await store.checkpoint()
        digest, events, earlier, numbers = _lines_to_replay(ledger.path, data, checkpoint)
        report = await resume(
            events,
            store,
            now=now,
            zone=zone,
            earlier=earlier,
            numbers=numbers,
            orders_at_broker=orders_at_broker,
            remembered=checkpoint.kept if checkpoint is not None else frozenset(),
        )
        if checkpoint is not None and checkpoint.ledger_bytes > len(data):
            shorter = f"it is {len(data)} bytes long where the last start verified {checkpoint.ledger_bytes}"
            report.ledger_lost = "; ".join(part for part in (shorter, report.ledger_lost) if part)
        if not report.problems:
            await store.save_checkpoint(Checkpoint(len(data), digest.hexdigest(), report.kept))
        report.trading, report.trading_set = start_state(
            storage,
            now,
            before=before,
            problems=report.problems,
            set_aside=store.set_aside,
            ledger_lost=report.ledger_lost,
        )
    except BaseException:
        await store.close()
        ledger.close()
        raise
    finally:
        if collecting:
            gc.enable()
    if report.summary():
        log.warning("start-up: %s", report.summary())
    return ledger, store, report


def _lines_to_replay(
    path: Path, data: bytes, checkpoint: Checkpoint | None
) -> tuple[Any, list[TradeEvent], EarlierLines | None, list[int] | None]:
    """The digest of the whole ledger, the events to replay, what the trusted part holds besides, and the line
    number of each event replayed (None: all of them from the first)."""
    digest = hashlib.blake2b(digest_size=32)
    trusted = 0
    if checkpoint is not None and checkpoint.ledger_bytes <= len(data):
        digest.update(memoryview(data)[: checkpoint.ledger_bytes])
        if digest.hexdigest() == checkpoint.digest:
            trusted = checkpoint.ledger_bytes
        else:
            log.warning("the ledger changed since the last start-up; verifying all of it")
            digest = hashlib.blake2b(memoryview(data)[: checkpoint.ledger_bytes], digest_size=32)
    digest.update(memoryview(data)[trusted:])
    lines = data.split(b"\n")[:-1]  # the torn tail, if any, was cut away when the ledger opened
    if not trusted:
        return digest, [parse_line(path, n, line) for n, line in enumerate(lines, start=1)], None, None
    assert checkpoint is not None
    events: list[TradeEvent] = []
    numbers: list[int] = []
    earlier = EarlierLines(set(), set(), set())
    offset = 0
    for number, line in enumerate(lines, start=1):
        if offset >= trusted or (ids := _ids(line))[0] in checkpoint.kept:
            events.append(parse_line(path, number, line))
            numbers.append(number)
        else:
            position_id, event_id, fill_id = ids
            earlier.event_ids.add(event_id)
            earlier.fill_ids.add(fill_id)
            earlier.closed_positions.add(position_id)
        offset += len(line) + 1
    return digest, events, earlier, numbers


_ID_KEYS = (b'"position_id":"', b'"event_id":"', b'"fill_id":"')


async def _fills_lost(
    store: StateStore,
    replayed: dict[str, Position],
    earlier: EarlierLines | None,
    remembered: frozenset[str],
    filled_by_order: dict[str, int],
) -> str:
    """What the ledger lost of the fills the state store saw and the last start kept ('' when nothing): positions it
    holds no line of, and orders of a position replayed now with fewer fills than the order recorded (a position's
    lines are all replayed, so its orders' sums are whole). Forgotten once said: an operator's resume holds."""
    held = set(replayed) | (earlier.closed_positions if earlier is not None else set())
    orders = await store.filled_orders()
    # A position with a trailing high or an order with fills had a fill: its line was written before the store heard.
    filled = set(await store.highs()) | {position_id for position_id, _ in orders.values()}
    missing = sorted((filled | remembered) - held)
    short = sorted(
        order_id
        for order_id, (position_id, qty) in orders.items()
        if position_id in replayed and filled_by_order.get(order_id, 0) < qty
    )
    lost = []
    if missing:
        lost.append(f"it holds no line of {len(missing)} position(s) the desk filled ({_first(missing)})")
    if short:
        lost.append(f"it holds fewer fills than {len(short)} order(s) recorded ({_first(short)})")
    if lost:
        await store.forget(missing, short)
    return "; ".join(lost)


def _first(ids: list[str]) -> str:
    return ", ".join(ids[:3]) + (f" and {len(ids) - 3} more" if len(ids) > 3 else "")


def _ids(line: bytes) -> tuple[str, str, str]:
    """The position, event and fill ids of a verified line, read without parsing all of it."""
    if b"\\" in line:  # an escaped character: let the JSON parser read it
        raw = json.loads(line)
        return raw["position_id"], raw["event_id"], raw["fill_id"]
    found = []
    for key in _ID_KEYS:
        start = line.index(key) + len(key)
        found.append(line[start : line.index(b'"', start)].decode())
    return found[0], found[1], found[2]
