"""Faults inside the desk, without Discord: the ledger's disk full or read-only, the executor failing or timing out
in the middle of an order, the state database locked by another connection or corrupt. Each ends with nothing lost
and the ledger verifying."""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
from pathlib import Path

import pytest

from bot.options.errors import TradeError
from bot.options.execution_paper import PaperExecutor
from bot.options.order_manager import OptionsOrderManager
from bot.options.orders import OrderStatus
from bot.options.quotes import QuoteCache
from bot.options.trade_ledger import TradeLedger
from bot.runtime.admin_alerts import AdminAlerts
from bot.runtime.resume import STATE_FILE, start_up
from bot.settings import Settings
from tests.core.factories import T0, quote
from tests.discord.conftest import QQQ, SPY
from tests.reliability.checks import assert_nothing_lost, open_offline_desk
from tests.reliability.faults import PartlyFilling, ledger_writes_fail
from tests.resume.harness import assert_state_matches_replay

ZONE = Settings().zone


def at(quotes: QuoteCache, symbol: str, bid: str, ask: str) -> None:
    quotes.update(symbol, quote(bid, ask, size=100))


# ---------------------------------------------------------------------------------------------------------------
# The ledger's disk full or read-only


@pytest.mark.parametrize(("code", "half_first"), [(errno.ENOSPC, True), (errno.ENOSPC, False), (errno.EROFS, False)])
async def test_a_ledger_that_cannot_be_written_refuses_every_trade_leaves_no_partial_line_and_alerts(
    manager: OptionsOrderManager,
    quotes: QuoteCache,
    ledger: TradeLedger,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    code: int,
    half_first: bool,
) -> None:
    sent: list[str] = []

    async def send(text: str) -> None:
        sent.append(text)

    alerts = AdminAlerts(send, interval=300, clock=lambda: 0.0)
    ledger.subscribe_failures(lambda error: alerts.alert("ledger", str(error)))
    at(quotes, SPY.symbol, "1.00", "1.10")
    at(quotes, QQQ.symbol, "2.00", "2.10")
    spy = await manager.open_position(SPY, 10, strategy="orb")
    qqq = await manager.open_position(QQQ, 10, strategy="mr")
    before = ledger.path.read_bytes()

    # Act: the disk fills up (or turns read-only); a trim of each position, and a new position, are asked for.
    with ledger_writes_fail(ledger, code, half_first=half_first) as failed:
        refusals = []
        for attempt in (
            manager.trim(spy.position_id, qty=5),
            manager.trim(qqq.position_id, qty=5),
            manager.open_position(SPY, 1, strategy="orb"),
        ):
            with pytest.raises(TradeError) as refused:
                await attempt
            refusals.append(str(refused.value))
        await alerts.drain()

    # Assert: every trade refused in a sentence, nothing changed, no byte of a partial line left.
    assert len(failed) == 3
    assert all("could not be recorded, so nothing changed" in text for text in refusals), refusals
    assert ledger.path.read_bytes() == before
    assert (manager.get(spy.position_id).qty, manager.get(qqq.position_id).qty) == (10, 10)
    assert len(manager.all_positions()) == 2
    # The admins heard of it once (a storm sends one alert), and the log says what failed.
    assert len(sent) == 1 and os.strerror(code) in sent[0] and str(ledger.path) in sent[0]
    assert [r for r in caplog.records if r.levelno >= logging.ERROR and os.strerror(code) in r.getMessage()]

    # Once the ledger can be written again, trading goes on for every position.
    await manager.trim(spy.position_id, qty=5)
    await manager.trim(qqq.position_id, qty=5)
    assert_nothing_lost(tmp_path, manager.all_positions())


async def test_admin_alerts_of_a_storm_are_one_message_then_one_per_interval_counting_the_rest() -> None:
    sent: list[str] = []

    async def send(text: str) -> None:
        sent.append(text)

    now = [0.0]
    alerts = AdminAlerts(send, interval=60, clock=lambda: now[0])
    for second in range(0, 130, 10):  # a failure every 10 s for two minutes
        now[0] = second
        alerts.alert("ledger", "could not write the trade ledger")
    await alerts.drain()
    assert len(sent) == 3  # at 0, 60 and 120 s
    assert sent[1].endswith("(5 more since the last alert)") and sent[2].endswith("(5 more since the last alert)")


async def test_an_alert_that_cannot_be_sent_is_logged_and_changes_nothing(caplog: pytest.LogCaptureFixture) -> None:
    async def send(text: str) -> None:
        raise ConnectionError("Discord is down")

    alerts = AdminAlerts(send)
    alerts.alert("ledger", "could not write the trade ledger")
    await alerts.drain()
    assert "could not alert the admins" in caplog.text


# ---------------------------------------------------------------------------------------------------------------
# The executor failing or timing out in the middle of an order


@pytest.mark.looptime
@pytest.mark.parametrize(
    ("then", "reason"), [("fail", "the executor failed"), ("hang", "the executor did not finish within 30 s")]
)
async def test_an_executor_stopping_mid_order_keeps_the_filled_part_and_cancels_the_rest(
    quotes: QuoteCache, ledger: TradeLedger, tmp_path: Path, then: str, reason: str
) -> None:
    executor = PartlyFilling(PaperExecutor(quotes, clock=lambda: T0), first=4, then=then, armed=False)
    manager = OptionsOrderManager(executor, ledger, clock=lambda: T0, order_timeout=30)
    at(quotes, SPY.symbol, "1.00", "1.10")
    position = await manager.open_position(SPY, 10, strategy="orb")
    executor.armed = True  # the broker breaks from now on

    # Act
    after = await manager.close(position.position_id)

    # Assert: 4 sold and recorded, the other 6 cancelled with the reason, the executor's iterator closed.
    assert (after.qty, after.is_open) == (6, True)
    order = manager.orders[after.actions[-1].order_id]
    assert (order.status, order.filled_qty, order.requested_qty, order.reason) == (OrderStatus.CANCELLED, 4, 10, reason)
    assert executor.closed == 1
    assert_nothing_lost(tmp_path, manager.all_positions())

    # An order the executor breaks on before any fill is refused in a sentence, and nothing is written.
    executor.first = 0
    before = ledger.path.read_bytes()
    with pytest.raises(TradeError, match=f"was not filled: {reason}"):
        await manager.close(position.position_id)
    assert ledger.path.read_bytes() == before and manager.get(position.position_id).qty == 6


# ---------------------------------------------------------------------------------------------------------------
# The state database locked by another connection, or corrupt


async def test_a_locked_state_database_refuses_orders_until_it_is_free_and_the_next_start_has_nothing_open(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    desk = await open_offline_desk(tmp_path)
    await desk.store._db.execute("PRAGMA busy_timeout = 50")  # SQLite's default waits 5 s for the lock
    at(desk.quotes, SPY.symbol, "1.00", "1.10")
    position = await desk.manager.open_position(SPY, 10, strategy="orb")
    other = sqlite3.connect(tmp_path / STATE_FILE)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock

        # Act: trades while the store cannot be written: an order whose intent it cannot take is not sent.
        with pytest.raises(TradeError, match="could not be recorded, so it was not sent"):
            await desk.manager.trim(position.position_id, qty=3)
        at(desk.quotes, QQQ.symbol, "2.00", "2.10")
        with pytest.raises(TradeError, match="could not be recorded, so it was not sent"):
            await desk.manager.open_position(QQQ, 2, strategy="mr")
    finally:
        other.rollback()
        other.close()
    await desk.manager.trim(position.position_id, qty=1)  # the lock is gone
    await desk.close()

    # Assert: only the trades sent happened and are in the ledger; the store's failures were logged, not raised.
    assert desk.manager.get(position.position_id).qty == 9 and len(desk.manager.all_positions()) == 1
    assert "database is locked" in caplog.text
    events = assert_nothing_lost(tmp_path, desk.manager.all_positions())
    # The next start finds every order sent recorded and ended: nothing to resolve.
    ledger, store, report = await start_up(tmp_path, now=T0, zone=ZONE)
    await store.close()
    ledger.close()
    assert report.resolved_orders == [] and report.problems == []
    assert_state_matches_replay(tmp_path, events)


async def test_a_corrupt_state_database_is_set_aside_and_started_anew_the_positions_from_the_ledger(
    tmp_path: Path,
) -> None:
    desk = await open_offline_desk(tmp_path)
    at(desk.quotes, SPY.symbol, "1.00", "1.10")
    position = await desk.manager.open_position(SPY, 10, strategy="orb")
    await desk.manager.trim(position.position_id, qty=4)
    await desk.close()
    (tmp_path / STATE_FILE).write_bytes(b"SQLite format 3\x00" + os.urandom(4096))

    desk = await open_offline_desk(tmp_path)
    await desk.close()

    assert [name for name in os.listdir(tmp_path) if name.startswith(f"{STATE_FILE}.corrupt-")]
    assert desk.manager.get(position.position_id).qty == 6 and "state store was corrupt" in desk.resumed.trading_set
    events = assert_nothing_lost(tmp_path, desk.manager.all_positions())
    assert_state_matches_replay(tmp_path, events)
