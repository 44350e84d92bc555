"""Concurrent trims, closes and ledger appends: never an oversell, one whole ledger line per fill, exact replay."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from bot.options.contracts import OptionContract, Right
from bot.options.errors import TradeError
from bot.options.execution_paper import PaperConfig, PaperExecutor
from bot.options.ledger_verify import verify_events
from bot.options.order_manager import OptionsOrderManager
from bot.options.orders import Fill, OrderRequest, Side
from bot.options.positions import ActionKind, Position, PositionStatus, Source
from bot.options.quotes import Quote, QuoteCache
from bot.options.trade_ledger import TradeEvent, TradeLedger, parse_line, read_ledger, replay

T0 = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


# --- factories ---------------------------------------------------------------------------------------------------


def contract(strike: int = 450) -> OptionContract:
    return OptionContract("SPY", date(2026, 11, 27), Right.CALL, Decimal(strike))


def two_sided(bid: str = "1.00", ask: str = "1.10") -> Quote:
    return Quote(bid=Decimal(bid), ask=Decimal(ask), ts=T0)


def clock() -> Callable[[], datetime]:
    ticks = iter(range(1, 1_000_000))
    return lambda: T0 + timedelta(milliseconds=next(ticks))


class YieldingExecutor:
    """The paper executor, but it gives the event loop away between taking an order and each fill.

    It records how many orders of one position were in the executor at once, and how many trade requests were
    pending (as counted by the test) each time it filled, so a test can show the race was real.
    """

    def __init__(self, inner: PaperExecutor, pending: Callable[[], int] = lambda: 0, turns: int = 3) -> None:
        self._inner = inner
        self._pending = pending
        self._turns = turns
        self._in_flight: dict[str, int] = {}
        self.max_in_flight = 0
        self.pending_at_fill: list[int] = []

    async def execute(self, order: OrderRequest) -> AsyncIterator[Fill]:
        self._in_flight[order.position_id] = self._in_flight.get(order.position_id, 0) + 1
        self.max_in_flight = max(self.max_in_flight, self._in_flight[order.position_id])
        try:
            for _ in range(self._turns):
                await asyncio.sleep(0)
            async for fill in self._inner.execute(order):
                self.pending_at_fill.append(self._pending())
                yield fill
                await asyncio.sleep(0)
        finally:
            self._in_flight[order.position_id] -= 1


def desk(tmp_path: Path, *, yielding: bool, pending: Callable[[], int] = lambda: 0):
    quotes = QuoteCache()
    ticking = clock()
    paper = PaperExecutor(quotes, PaperConfig(fee_per_contract=Decimal("0.65")), clock=ticking)
    executor = YieldingExecutor(paper, pending) if yielding else paper
    ledger = TradeLedger.open(tmp_path / "options" / "trade_events.jsonl")
    return quotes, executor, ledger, OptionsOrderManager(executor, ledger, clock=ticking)


def parse_line_by_line(path: Path) -> list[TradeEvent]:
    """Every line is one whole JSON object and one valid trade event; the file ends with a newline."""
    data = path.read_bytes()
    assert data.endswith(b"\n")
    lines = data[:-1].split(b"\n")
    for line in lines:
        assert isinstance(json.loads(line), dict)
    return [parse_line(path, n, line) for n, line in enumerate(lines, start=1)]


class Pending:
    """Counts trade requests that have started and not yet finished."""

    def __init__(self) -> None:
        self.count = 0

    async def run(self, request):
        self.count += 1
        try:
            return await request
        finally:
            self.count -= 1


# --- many trims and a close on one position ----------------------------------------------------------------------

OPEN_QTY = 100
CLOSE_AT = 25


def racing_requests() -> list[tuple[str, object]]:
    """50 requests: trims by quantity and by percentage, with a close in the middle of them."""
    requests: list[tuple[str, object]] = []
    for i in range(50):
        if i == CLOSE_AT:
            requests.append(("close", None))
        elif i % 2:
            requests.append(("qty", 1 + i % 7))
        else:
            requests.append(("percent", (10, 25, "33.3", 50)[i % 4]))
    return requests


def send(manager: OptionsOrderManager, position_id: str, kind: str, amount: object):
    if kind == "close":
        return manager.close(position_id, source=Source.MANUAL, actor="trader-1")
    if kind == "qty":
        return manager.trim(position_id, qty=amount)
    return manager.trim(position_id, percent=amount)


@pytest.mark.parametrize("yielding", [False, True], ids=["paper", "paper-yielding-before-fill"])
async def test_racing_trims_and_a_close_never_oversell_and_the_ledger_replays(tmp_path, yielding):
    pending = Pending()
    quotes, executor, ledger, manager = desk(tmp_path, yielding=yielding, pending=lambda: pending.count)
    spy = contract()
    quotes.update(spy.symbol, two_sided("1.50", "1.60"))
    position_id = (await manager.open_position(spy, OPEN_QTY, strategy="orb")).position_id
    requests = racing_requests()

    outcomes = await asyncio.gather(
        *(pending.run(send(manager, position_id, kind, amount)) for kind, amount in requests),
        return_exceptions=True,
    )

    unexpected = [o for o in outcomes if not isinstance(o, Position | TradeError)]
    assert not unexpected, unexpected
    filled = [(request, o) for request, o in zip(requests, outcomes, strict=True) if isinstance(o, Position)]
    refused = [o for o in outcomes if isinstance(o, TradeError)]
    assert filled and refused
    live = manager.get(position_id)
    assert (live.qty, live.status) == (0, PositionStatus.CLOSED)

    # Each accepted request sold what it asked for, sized against what was open when it got the lock.
    for (kind, amount), after in filled:
        sold = after.actions[-1]
        open_before = after.qty + sold.qty
        if kind == "qty":
            assert sold.qty == amount
        elif kind == "percent":
            assert sold.qty == max(1, math.floor(open_before * Decimal(amount) / 100))
        else:
            assert (sold.qty, after.qty, sold.kind) == (open_before, 0, ActionKind.CLOSE)

    events = parse_line_by_line(ledger.path)
    sells = [e for e in events if e.side is Side.SELL]
    assert sum(e.qty for e in sells) == OPEN_QTY  # everything bought was sold, nothing more
    assert len(events) == 1 + len(filled)  # the open, then one line per accepted request
    assert {e.fill_id for e in sells} == {after.actions[-1].fill_id for _, after in filled}
    assert [e.position_qty for e in sells] == sorted((e.position_qty for e in sells), reverse=True)
    assert [e.kind for e in events].count(ActionKind.CLOSE) == 1 and events[-1].kind is ActionKind.CLOSE
    report = verify_events(events)
    assert report.ok, report.problems
    assert replay(events) == {position_id: live}
    if yielding:
        assert executor.max_in_flight == 1  # the position's lock kept its orders one at a time
        assert max(executor.pending_at_fill) >= len(requests) - 1  # ...while (nearly) every request waited
    ledger.close()


@pytest.mark.parametrize("yielding", [False, True], ids=["paper", "paper-yielding-before-fill"])
async def test_a_close_racing_trims_leaves_nothing_for_the_ones_behind_it(tmp_path, yielding):
    quotes, _, ledger, manager = desk(tmp_path, yielding=yielding)
    spy = contract()
    quotes.update(spy.symbol, two_sided())
    position_id = (await manager.open_position(spy, 10, strategy="orb")).position_id

    # Each trim alone is fine; together with the close they ask for three times what is open.
    outcomes = await asyncio.gather(
        manager.trim(position_id, qty=6),
        manager.close(position_id),
        manager.trim(position_id, qty=6),
        manager.trim(position_id, percent=60),
        return_exceptions=True,
    )

    first_trim, close, *late = outcomes
    assert isinstance(first_trim, Position) and first_trim.qty == 4
    assert isinstance(close, Position) and (close.qty, close.status) == (0, PositionStatus.CLOSED)
    assert all(isinstance(o, TradeError) and "closed" in str(o) for o in late), late
    events = parse_line_by_line(ledger.path)
    assert [(e.kind, e.qty) for e in events] == [(ActionKind.OPEN, 10), (ActionKind.TRIM, 6), (ActionKind.CLOSE, 4)]
    assert replay(events) == {position_id: manager.get(position_id)}
    ledger.close()


# --- many positions writing to one ledger ------------------------------------------------------------------------


def events_of_one_position(n: int, fills: int) -> list[TradeEvent]:
    """An open of `fills` contracts followed by single-contract sells down to zero, as ledger events."""
    position = Position(f"pos-{n}", contract(400 + n), "orb")
    events = []
    for k in range(fills + 1):
        side, qty = (Side.BUY, fills) if k == 0 else (Side.SELL, 1)
        position, action = position.with_fill(
            side=side,
            qty=qty,
            price=Decimal("1.25") + Decimal(k) / 100,
            fees=Decimal("0.65") * qty,
            ts=T0 + timedelta(seconds=k),
            fill_id=f"fill-{n}-{k}",
            order_id=f"ord-{n}-{k}",
            source=Source.STRATEGY,
            # A long actor makes each line several kilobytes, so a torn or interleaved write would show.
            actor=f"strategy-{n}-" + "x" * 3000,
        )
        events.append(TradeEvent.record(f"evt-{n}-{k}", position, action))
    return events


async def test_concurrent_appends_from_many_positions_give_whole_lines_all_present(tmp_path):
    ledger = TradeLedger.open(tmp_path / "options" / "trade_events.jsonl")
    per_position = {n: events_of_one_position(n, fills=9) for n in range(20)}

    async def write(events: list[TradeEvent]) -> None:
        for event in events:
            await ledger.append(event)
            await asyncio.sleep(0)

    await asyncio.gather(*(write(events) for events in per_position.values()))

    events = parse_line_by_line(ledger.path)
    assert len(events) == sum(len(e) for e in per_position.values()) == 200
    assert sorted(e.event_id for e in events) == sorted(e.event_id for es in per_position.values() for e in es)
    for n, written in per_position.items():
        assert [e for e in events if e.position_id == f"pos-{n}"] == written
    assert len({e.position_id for e in events[:20]}) > 1, "the writers did not interleave"
    assert read_ledger(ledger.path).torn_tail == b""
    report = verify_events(events)
    assert report.ok, report.problems
    ledger.close()


async def test_concurrent_trades_on_many_positions_share_the_ledger_cleanly(tmp_path):
    quotes, executor, ledger, manager = desk(tmp_path, yielding=True)
    contracts = [contract(400 + n) for n in range(10)]
    for c in contracts:
        quotes.update(c.symbol, two_sided("2.00", "2.05"))
    opened = await asyncio.gather(*(manager.open_position(c, 8, strategy="orb") for c in contracts))
    ids = [p.position_id for p in opened]

    outcomes = await asyncio.gather(
        *(manager.trim(pid, qty=2) for pid in ids for _ in range(5)),
        *(manager.trim(pid, percent=50) for pid in ids),
        return_exceptions=True,
    )

    assert all(isinstance(o, Position | TradeError) for o in outcomes), outcomes
    events = parse_line_by_line(ledger.path)
    fills = sum(isinstance(o, Position) for o in outcomes)
    assert len(events) == len(ids) + fills
    for pid in ids:
        sold = sum(e.qty for e in events if e.position_id == pid and e.side is Side.SELL)
        assert sold == 8 - manager.get(pid).qty and sold <= 8
        # trims of 2 x 4 empty each position; the fifth trim and the 50% trim are refused
        assert manager.get(pid).status is PositionStatus.CLOSED
    assert sum(isinstance(o, TradeError) for o in outcomes) == 2 * len(ids)
    assert executor.max_in_flight == 1
    report = verify_events(events)
    assert report.ok, report.problems
    assert replay(events) == {p.position_id: p for p in manager.all_positions()}
    ledger.close()
