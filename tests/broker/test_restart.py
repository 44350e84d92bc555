"""A restart with orders in flight at Alpaca, through the desk as the bot builds it: the broker is asked by
client order id, fills the ledger misses are applied once with the broker's ids, an order still working is
followed to its end, and nothing is ever sent again. The order journal is written for its owner's eyes only."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path

import pytest

from bot.broker.restart import JOURNAL_FILE, OrderJournal
from bot.options.contracts import OptionContract
from bot.options.orders import OrderStatus
from bot.options.positions import Source
from bot.options.quotes import Quote
from bot.options.risk import RiskRefused
from bot.runtime.desk import Desk
from bot.settings import RiskSettings
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


async def test_an_opening_order_still_working_after_a_restart_counts_against_the_limits(
    fake: FakeAlpaca, storage: Path, clock: Clock
) -> None:
    cid = await crashed_with_an_order_at_alpaca(fake, storage, clock, [("hold",)], ledger_lines=0)
    one_open = broker_settings(fake).model_copy(update={"risk": RiskSettings(max_open_positions=1)})

    async with broker_desk(fake, storage, clock, one_open) as desk, trade_stream(fake, desk):
        following = asyncio.create_task(resume_orders(desk))
        await until(lambda: cid in desk.manager.orders)
        desk.quotes.update(QQQ.symbol, Quote(bid=Decimal("0.95"), ask=Decimal("1.00"), ts=NOW))
        with pytest.raises(RiskRefused, match="0 positions are open and 1 being opened, the limit is 1"):
            await desk.manager.open_position(QQQ, 1, strategy="qqq-meanrev")
        fake.fill(cid, 3, "1.25")
        await following
        assert [p.contract for p in desk.manager.open_positions()] == [SPY]
    assert len(fake.orders) == 1  # the refused buy never reached Alpaca


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
async def test_the_order_journal_is_readable_by_its_owner_only_whatever_the_umask(
    fake: FakeAlpaca, storage: Path, clock: Clock, tmp_path: Path, umask: int
) -> None:
    fake.plans.append([("hold",)])
    fresh = tmp_path / "not" / "there"
    previous = os.umask(umask)
    try:
        async with broker_desk(fake, storage, clock) as desk:
            await crash_during(desk, 0)
        OrderJournal(fresh / JOURNAL_FILE).keep_only(set())  # its directories made by the journal itself
    finally:
        os.umask(previous)
    journal = storage / JOURNAL_FILE
    assert len(json.loads(journal.read_text())) == 1
    assert [n for n in os.listdir(storage) if n.startswith(f".{JOURNAL_FILE}")] == []  # no temp file left
    for path in (journal, fresh / JOURNAL_FILE):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for directory in (tmp_path / "not", fresh):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
