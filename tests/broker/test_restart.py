"""A restart with orders in flight at Alpaca, through the desk as the bot builds it: the broker is asked by
client order id, fills the ledger misses are applied once with the broker's ids, an order still working is
followed to its end, and nothing is ever sent again. New orders wait until that is done (or has taken too
long), so no order of the new run is taken for one left open. The state store that keeps each order's intent is for
its owner's eyes only, and an upgraded desk takes the contracts an older one kept in broker_orders.json."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path

import pytest

from bot.broker.link import RESUMING
from bot.broker.restart import OLD_JOURNAL, UNKNOWN_CONTRACT
from bot.cli.reconcile import reconcile_command
from bot.options.contracts import OptionContract
from bot.options.errors import TradeError
from bot.options.orders import OrderStatus
from bot.options.positions import Position, Source
from bot.options.quotes import Quote
from bot.options.risk import RiskRefused
from bot.runtime import desk as desk_module
from bot.runtime.desk import Desk
from bot.runtime.state_file import STATE_FILE
from bot.runtime.state_store import StateStore
from bot.runtime.supervisor import supervise
from bot.settings import OpeningRangeBreakoutSettings, RiskSettings, Settings
from bot.strategies.base import UnderlyingStrategy
from tests.broker.conftest import NOW, Clock, broker_desk, broker_settings, until
from tests.broker.fake_alpaca import FakeAlpaca

SPY = OptionContract.parse("SPY   261127C00450000")
QQQ = OptionContract.parse("QQQ   261127P00400000")


async def crash_during(desk: Desk, ledger_lines: int) -> None:
    """Open a position, and die (the task is cancelled) once `ledger_lines` lines are in the ledger."""
    # The quote the desk's risk checks price the buy by, as Alpaca's option feed would have brought it.
    desk.quotes.update(SPY.symbol, Quote(bid=Decimal("1.05"), ask=Decimal("1.15"), ts=NOW))
    opening = asyncio.create_task(desk.manager.open_position(SPY, 3, strategy="spy-orb"))
    await until(lambda: len(desk.ledger.read()) == ledger_lines and desk.manager.orders)
    await asyncio.sleep(0.05)
    opening.cancel()
    await asyncio.gather(opening, return_exceptions=True)


@asynccontextmanager
async def trade_stream(fake: FakeAlpaca, desk: Desk) -> AsyncIterator[None]:
    """The executor's trade-updates stream, connected to the fake, for the block."""
    assert desk.broker is not None
    stream = asyncio.create_task(desk.broker.executor.run())
    await until(lambda: fake._trade_sockets)
    try:
        yield
    finally:
        stream.cancel()
        await asyncio.gather(stream, return_exceptions=True)


async def crashed_with_an_order_at_alpaca(
    fake: FakeAlpaca, storage: Path, clock: Clock, plan: list[tuple[object, ...]], *, ledger_lines: int
) -> str:
    """A desk that sent an order (filled at Alpaca as `plan` says) and died as in `crash_during`; its client id."""
    fake.plans.append(plan)
    async with broker_desk(fake, storage, clock) as desk:
        await crash_during(desk, ledger_lines)
    (cid,) = fake.orders
    return cid


async def resume_orders(desk: Desk) -> None:
    assert desk.broker is not None
    await desk.broker.workers(desk.manager, desk.store)["broker orders"]()


async def test_fills_made_while_down_are_applied_once_and_the_order_is_not_sent_again(
    fake: FakeAlpaca, storage: Path, clock: Clock
) -> None:
    cid = await crashed_with_an_order_at_alpaca(fake, storage, clock, [("fill", 1, "1.10"), ("hold",)], ledger_lines=1)
    late = fake.fill(cid, 2, "1.20", tell=False)  # while the bot was down

    async with broker_desk(fake, storage, clock) as desk:
        await resume_orders(desk)
        (position,) = desk.manager.open_positions()
        events = desk.ledger.read()
        assert position.qty == 3 and [e.qty for e in events] == [1, 2]
        assert events[1].fill_id == late and events[1].source is Source.BROKER
        assert await desk.store.open_orders() == []
    async with broker_desk(fake, storage, clock) as desk:  # a second restart: nothing more to do
        await resume_orders(desk)
        assert len(desk.ledger.read()) == 2
    assert fake.posts[cid] == 1


async def test_an_opening_order_with_no_fill_yet_keeps_its_strategy(
    fake: FakeAlpaca, storage: Path, clock: Clock
) -> None:
    cid = await crashed_with_an_order_at_alpaca(fake, storage, clock, [("hold",)], ledger_lines=0)
    fake.fill(cid, 3, "1.30", tell=False)

    async with broker_desk(fake, storage, clock) as desk:
        await resume_orders(desk)
        (position,) = desk.manager.open_positions()
        assert (position.strategy, position.qty, position.contract) == ("spy-orb", 3, SPY)
        assert desk.manager.orders[cid].status is OrderStatus.FILLED
    assert fake.posts[cid] == 1


async def test_an_order_still_working_is_followed_through_the_stream(
    fake: FakeAlpaca, storage: Path, clock: Clock
) -> None:
    cid = await crashed_with_an_order_at_alpaca(fake, storage, clock, [("fill", 1, "1.10"), ("hold",)], ledger_lines=1)

    async with broker_desk(fake, storage, clock) as desk, trade_stream(fake, desk):
        following = asyncio.create_task(resume_orders(desk))
        await asyncio.sleep(0.1)
        assert not following.done()  # still working at Alpaca: followed, not given up
        fake.fill(cid, 2, "1.25")
        await following
        assert [e.qty for e in desk.ledger.read()] == [1, 2]
    assert fake.posts[cid] == 1


async def test_trading_opens_after_the_resume_timeout_with_the_admins_told_and_the_order_still_counted(
    fake: FakeAlpaca, storage: Path, clock: Clock
) -> None:
    cid = await crashed_with_an_order_at_alpaca(fake, storage, clock, [("hold",)], ledger_lines=0)
    # The order stays working at Alpaca (never cancelled by its own timeout here) past the start-up's timeout.
    slow = broker_settings(fake, order_timeout_seconds=600.0, resume_timeout_seconds=0.2)
    one_open = slow.replace(risk=RiskSettings(max_open_positions=1))
    told: list[str] = []

    async with broker_desk(fake, storage, clock, one_open) as desk, trade_stream(fake, desk):
        assert desk.broker is not None
        desk.broker.alert = told.append
        following = asyncio.create_task(resume_orders(desk))
        desk.quotes.update(QQQ.symbol, Quote(bid=Decimal("0.95"), ask=Decimal("1.00"), ts=NOW))
        # Held until the timeout, then checked: the opening order still followed counts as a buy in flight.
        with pytest.raises(RiskRefused, match="0 positions are open and 1 being opened, the limit is 1"):
            await desk.manager.open_position(QQQ, 1, strategy="qqq-meanrev")
        assert len(told) == 1 and "within 0.2 s ([broker] resume_timeout_seconds)" in told[0]
        assert not following.done()
        fake.fill(cid, 3, "1.25")
        await following
        assert [p.contract for p in desk.manager.open_positions()] == [SPY]
    assert len(fake.orders) == 1  # the refused buy never reached Alpaca


class FirstQuoteBuyer(UnderlyingStrategy):
    """Buys 2 QQQ puts on the first quote of its underlying."""

    asked = False
    bought: Position | None = None

    async def on_quote(self, symbol: str, quote: Quote) -> None:
        if not self.asked:
            self.asked = True
            self.bought = await self.desk.open(QQQ, 2)


@asynccontextmanager
async def running(desk: Desk) -> AsyncIterator[None]:
    """The desk's background work, started as the bot starts it."""
    assert desk.broker is not None
    work = [asyncio.create_task(supervise(name, start)) for name, start in desk.workers().items()]
    try:
        yield
    finally:
        for task in work:
            task.cancel()
        await asyncio.gather(*work, return_exceptions=True)


async def test_a_strategy_buying_on_the_first_quote_waits_for_the_last_runs_order_and_each_is_followed_once(
    fake: FakeAlpaca,
    storage: Path,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cid = await crashed_with_an_order_at_alpaca(fake, storage, clock, [("fill", 1, "1.10"), ("hold",)], ledger_lines=1)
    missed = fake.fill(cid, 1, "1.15", tell=False)  # while the bot was down
    monkeypatch.setitem(desk_module.STRATEGY_KINDS, "opening_range_breakout", FirstQuoteBuyer)
    first_quote = OpeningRangeBreakoutSettings(name="first-quote", underlying="QQQ")
    settings: Settings = broker_settings(fake).replace(strategies=[first_quote])
    caplog.set_level(logging.INFO)

    async with broker_desk(fake, storage, clock, settings) as desk:
        strategy = desk.runner.strategies["first-quote"]
        assert isinstance(strategy, FirstQuoteBuyer)
        (left,) = desk.manager.open_positions()
        async with running(desk):
            # The first quotes arrive as the desk starts: the strategy asks to buy at once.
            desk.quotes.update(QQQ.symbol, Quote(bid=Decimal("0.95"), ask=Decimal("1.00"), ts=NOW))
            desk.quotes.update("QQQ", Quote(bid=Decimal("400.00"), ask=Decimal("400.02"), ts=NOW))
            await until(lambda: missed in {e.fill_id for e in desk.ledger.read()}, within=30)
            assert strategy.asked and list(fake.orders) == [cid]  # its buy waits for the last run's order
            with pytest.raises(TradeError, match=RESUMING):  # and a trader is told to try again
                await desk.manager.close(left.position_id, source=Source.MANUAL, actor="trader")
            last = fake.fill(cid, 1, "1.20")  # the last run's order ends: trading opens
            await until(lambda: strategy.bought is not None, within=30)
            (new,) = set(fake.orders) - {cid}
            events = desk.ledger.read()
            assert [(e.order_id, e.qty) for e in events] == [(cid, 1), (cid, 1), (cid, 1), (new, 2)]
            assert events[2].fill_id == last and len({e.fill_id for e in events}) == 4
            assert await desk.store.open_orders() == []
    followed = [r.getMessage() for r in caplog.records if "in flight at the restart" in r.getMessage()]
    assert followed == [f"order {cid} was in flight at the restart; asking Alpaca about it"]
    assert not [r for r in caplog.records if "reported again" in r.getMessage()]
    assert not [r for r in fake.requests if r.startswith("DELETE")]  # nothing cancelled
    assert fake.posts == {cid: 1, new: 1}


async def test_an_order_reconcile_completed_is_closed_at_the_next_start_without_asking_alpaca(
    fake: FakeAlpaca, storage: Path, clock: Clock
) -> None:
    cid = await crashed_with_an_order_at_alpaca(fake, storage, clock, [("fill", 1, "1.10"), ("hold",)], ledger_lines=1)
    fake.fill(cid, 2, "1.20", tell=False)  # while the bot was down; then the operator reconciles
    await asyncio.to_thread(reconcile_command, broker_settings(fake), storage, day=NOW.date(), as_json=True, apply=True)
    asked = len(fake.requests)

    for _ in range(2):  # the next start, and the one after
        async with broker_desk(fake, storage, clock) as desk:
            assert await desk.store.open_orders() == []
            await resume_orders(desk)
            (position,) = desk.manager.open_positions()
            assert position.qty == 3 and [e.source for e in desk.ledger.read()] == [Source.STRATEGY, Source.RECONCILE]
    assert [r for r in fake.requests[asked:] if cid in r] == []


async def test_an_order_that_never_reached_alpaca_is_cancelled(fake: FakeAlpaca, storage: Path, clock: Clock) -> None:
    fake.plans.append([("hold",)])
    async with broker_desk(fake, storage, clock) as desk:
        await crash_during(desk, 0)
    fake.orders.clear()  # as if the crash came before the order was sent

    async with broker_desk(fake, storage, clock) as desk:
        await resume_orders(desk)
        assert desk.manager.open_positions() == [] and desk.ledger.read() == []
        assert await desk.store.open_orders() == []
    assert sum(fake.posts.values()) == 1


@pytest.mark.parametrize("umask", [0o000, 0o022])
async def test_the_state_store_keeping_the_orders_in_flight_is_readable_by_its_owner_only_whatever_the_umask(
    fake: FakeAlpaca, storage: Path, clock: Clock, tmp_path: Path, umask: int
) -> None:
    fake.plans.append([("hold",)])
    fresh = tmp_path / "not" / "there"
    previous = os.umask(umask)
    try:
        async with broker_desk(fake, storage, clock) as desk:
            await crash_during(desk, 0)
            [order] = await desk.store.open_orders()  # the order at Alpaca, recorded before it was sent
            assert (order.contract, order.strategy) == (SPY, "spy-orb")
        await (await StateStore.open(fresh / STATE_FILE)).close()  # its directories made by the store itself
    finally:
        os.umask(previous)
    for folder in (storage, fresh):
        for path in folder.glob(f"{STATE_FILE}*"):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for directory in (tmp_path / "not", fresh):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory


def as_an_older_desk_left_it(storage: Path, journal: dict[str, object] | None) -> None:
    """The orders' contracts and strategies gone from the store, as before it kept them; `journal`: what the older
    desk's broker_orders.json held."""
    with sqlite3.connect(storage / STATE_FILE) as db:
        db.execute("UPDATE orders SET symbol = NULL, multiplier = NULL, strategy = NULL")
    if journal is not None:
        (storage / OLD_JOURNAL).write_text(json.dumps(journal))


async def test_an_upgraded_desk_follows_an_opening_order_from_the_older_desks_journal_then_deletes_it(
    fake: FakeAlpaca, storage: Path, clock: Clock
) -> None:
    cid = await crashed_with_an_order_at_alpaca(fake, storage, clock, [("hold",)], ledger_lines=0)
    as_an_older_desk_left_it(storage, {cid: {"symbol": SPY.symbol, "multiplier": 100, "strategy": "spy-orb"}})
    fake.fill(cid, 3, "1.30", tell=False)

    async with broker_desk(fake, storage, clock) as desk:
        await resume_orders(desk)
        (position,) = desk.manager.open_positions()
        assert (position.strategy, position.qty, position.contract) == ("spy-orb", 3, SPY)
    assert not (storage / OLD_JOURNAL).exists()  # read once
    assert fake.posts[cid] == 1


async def test_an_older_desks_opening_order_without_its_journal_is_cancelled_and_left_to_reconcile(
    fake: FakeAlpaca, storage: Path, clock: Clock
) -> None:
    cid = await crashed_with_an_order_at_alpaca(fake, storage, clock, [("hold",)], ledger_lines=0)
    as_an_older_desk_left_it(storage, None)

    async with broker_desk(fake, storage, clock) as desk:
        await resume_orders(desk)
        assert desk.manager.open_positions() == [] and await desk.store.open_orders() == []
    with sqlite3.connect(storage / STATE_FILE) as db:
        assert db.execute("SELECT status, reason FROM orders WHERE order_id = ?", (cid,)).fetchall() == [
            ("cancelled", UNKNOWN_CONTRACT)
        ]
    assert fake.posts[cid] == 1
