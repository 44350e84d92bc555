import asyncio
import io
import json
import logging
import os
import sqlite3
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from bot.options.orders import OrderRequest, OrderStatus, Side
from bot.options.trade_ledger import read_ledger
from bot.paths import StorageError
from bot.runtime import state_file
from bot.runtime.demo import run_demo_day
from bot.runtime.resume import UNANSWERED, resume, start_up
from bot.runtime.state_file import MIGRATIONS, pragma
from bot.runtime.state_store import StateStore
from bot.settings import Settings
from tests.core.factories import T0, quote

ZONE = Settings().zone


@pytest.fixture
async def store(tmp_path):
    store = await StateStore.open(tmp_path / "state.sqlite3")
    yield store
    await store.close()


async def trade(manager, quotes, spy):
    quotes.update(spy.symbol, quote("1.10", "1.20"))
    position = await manager.open_position(spy, 10, strategy="orb")
    quotes.update(spy.symbol, quote("2.00", "2.05"))
    return await manager.trim(position.position_id, qty=4)


def tables(path):
    with sqlite3.connect(path) as db:
        return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def rows(path, sql):
    with sqlite3.connect(path) as db:
        return db.execute(sql).fetchall()


def intent(order, contract, *, limit=None):
    """What the order manager hands the store before it sends `order` (an OrderContext)."""
    return OrderRequest(order.order_id, order.position_id, contract, order.side, order.requested_qty, limit)


async def test_a_new_store_is_at_the_latest_schema_in_wal_mode_with_every_commit_on_disk(store, tmp_path):
    assert await store.schema_version() == len(MIGRATIONS)
    with sqlite3.connect(tmp_path / "state.sqlite3") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert (tmp_path / "state.sqlite3").stat().st_mode & 0o077 == 0
    # FULL: a commit returns once it is on disk, as an order's intent must be before the order is sent.
    assert (await pragma(store._db, "synchronous"))[0] == 2


async def test_the_store_keeps_only_what_no_ledger_line_holds(store, tmp_path, manager, quotes, spy, ledger_file):
    position = await trade(manager, quotes, spy)

    report = await resume(read_ledger(ledger_file).events, store, now=T0, zone=ZONE)

    # The positions are the ledger's replay; the store holds no copy of them, of their fills or of the messages.
    assert report.positions == {position.position_id: position}
    assert tables(tmp_path / "state.sqlite3") == {"orders", "exit_highs", "checkpoint"}


async def test_an_order_left_unanswered_by_a_crash_is_resolved_from_the_ledger(
    store, manager, quotes, spy, ledger_file
):
    await trade(manager, quotes, spy)
    events = read_ledger(ledger_file).events
    filled = next(iter(manager.orders.values()))
    await store.record_intent(intent(filled, spy), "orb", T0)
    await store.record_end(filled, T0)
    # An order the process sent just before it died: the executor never answered, the ledger has no fill.
    ghost = filled.__class__("ord-ghost", filled.position_id, filled.side, 3)
    await store.record_intent(intent(ghost, spy), "orb", T0)

    report = await resume(events, store, now=T0, zone=ZONE)

    assert report.resolved_orders == ["ord-ghost"]
    assert await store.open_orders() == []
    got = rows(store.path, "SELECT order_id, status, filled_qty, reason FROM orders ORDER BY order_id")
    assert got == sorted([("ord-ghost", "cancelled", 0, UNANSWERED), (filled.order_id, "filled", 10, None)])


async def test_an_orders_intent_is_kept_with_what_a_restart_needs_to_follow_it(tmp_path, spy):
    path = tmp_path / "state.sqlite3"
    store = await StateStore.open(path)
    order = OrderRequest("ord-1", "pos-1", spy, Side.BUY, 3, Decimal("1.25"))
    await store.record_intent(order, "spy-orb", T0)
    await store.close()

    store = await StateStore.open(path)
    try:
        [kept] = await store.open_orders()
    finally:
        await store.close()

    assert (kept.order_id, kept.position_id, kept.side, kept.requested_qty, kept.filled_qty) == (
        "ord-1",
        "pos-1",
        "buy",
        3,
        0,
    )
    assert (kept.status, kept.contract, kept.strategy, kept.limit_price) == (
        OrderStatus.NEW,
        spy,
        "spy-orb",
        Decimal("1.25"),
    )


async def test_an_orders_end_waits_for_the_next_commit_or_the_close(tmp_path, manager, quotes, spy):
    path = tmp_path / "state.sqlite3"
    store = await StateStore.open(path)
    quotes.update(spy.symbol, quote("1.10", "1.20"))
    await manager.open_position(spy, 2, strategy="orb")
    [first] = manager.orders.values()
    await store.record_intent(intent(first, spy), "orb", T0)
    await store.record_end(first, T0)
    on_disk = "SELECT order_id, status FROM orders ORDER BY updated_at, order_id"
    assert rows(path, on_disk) == [(first.order_id, "new")]  # nothing written for it yet: no trade waits on it

    await store.save_high("pos-1", Decimal("1.50"))  # the next commit carries it
    assert rows(path, on_disk) == [(first.order_id, "filled")]
    await manager.open_position(spy, 1, strategy="orb")
    [second] = [order for order in manager.orders.values() if order is not first]
    await store.record_intent(intent(second, spy), "orb", T0)
    await store.record_end(second, T0)
    await store.close()  # and so does the close

    assert sorted(rows(path, on_disk)) == sorted([(first.order_id, "filled"), (second.order_id, "filled")])


async def test_intents_asked_for_during_a_commit_share_the_next_one(store, spy, monkeypatch):
    commits = []
    real_commit = type(store._db).commit

    async def counted(self):
        commits.append(1)
        await real_commit(self)

    monkeypatch.setattr(type(store._db), "commit", counted)
    orders = [OrderRequest(f"ord-{n}", f"pos-{n}", spy, Side.BUY, 1) for n in range(10)]

    await asyncio.gather(*(store.record_intent(order, "orb", T0) for order in orders))

    assert len(await store.open_orders()) == 10
    assert len(commits) == 2  # the first alone, the nine asked for meanwhile together


async def test_a_failed_intent_leaves_nothing_a_later_commit_could_carry(store, spy, monkeypatch):
    order = OrderRequest("ord-refused", "pos-1", spy, Side.BUY, 1)

    async def full(self):
        error = sqlite3.OperationalError("database or disk is full")
        error.sqlite_errorcode = sqlite3.SQLITE_FULL
        raise error

    with monkeypatch.context() as patch:
        patch.setattr(type(store._db), "commit", full)
        with pytest.raises(StorageError, match="the disk is full"):
            await store.record_intent(order, "orb", T0)
    await store.save_high("pos-1", Decimal("1.50"))  # the next write commits only itself

    assert await store.open_orders() == []


async def test_highs_of_positions_closed_before_today_and_orders_ended_before_today_leave_the_store(
    store, manager, quotes, spy, ledger_file
):
    position = await trade(manager, quotes, spy)
    await manager.close(position.position_id)
    events = read_ledger(ledger_file).events
    await store.save_high(position.position_id, Decimal("2.05"))
    ended = next(iter(manager.orders.values()))
    await store.record_intent(intent(ended, spy), "orb", T0)
    await store.record_end(ended, T0)
    await resume(events, store, now=T0, zone=ZONE)
    assert await store.highs() == {position.position_id: Decimal("2.05")}  # closed today: kept

    await resume(events, store, now=datetime(2026, 11, 27, 15, tzinfo=UTC), zone=ZONE)

    assert await store.highs() == {}
    assert rows(store.path, "SELECT order_id FROM orders") == []


async def test_a_corrupt_store_is_set_aside_and_started_anew(tmp_path):
    path = tmp_path / "state.sqlite3"
    path.write_bytes(b"this is not a database" * 100)

    store = await StateStore.open(path)
    try:
        assert await store.schema_version() == len(MIGRATIONS)
        assert await store.open_orders() == []
    finally:
        await store.close()
    [aside] = tmp_path.glob("state.sqlite3.corrupt-*")
    assert store.set_aside == aside and aside.read_bytes().startswith(b"this is not a database")
    assert store.anew


async def test_a_zero_byte_store_is_started_anew_in_place(tmp_path):
    path = tmp_path / "state.sqlite3"
    path.write_bytes(b"")

    store = await StateStore.open(path)
    await store.close()

    assert store.set_aside is None and not list(tmp_path.glob("*.corrupt-*"))
    assert await_version(path) == len(MIGRATIONS) and store.anew


def await_version(path):
    with sqlite3.connect(path) as db:
        return db.execute("PRAGMA user_version").fetchone()[0]


def sqlite_error(code, message):
    error = sqlite3.OperationalError(message)
    error.sqlite_errorcode = code
    return error


@pytest.mark.parametrize(
    ("error", "what_to_do"),
    [
        (sqlite_error(sqlite3.SQLITE_FULL, "database or disk is full"), "the disk is full: free space"),
        (sqlite_error(sqlite3.SQLITE_IOERR_WRITE, "disk I/O error"), "the disk reported an I/O error"),
        (sqlite_error(sqlite3.SQLITE_READONLY, "attempt to write a readonly database"), "make the file and its"),
        (sqlite_error(sqlite3.SQLITE_CANTOPEN, "unable to open database file"), "make the file and its folder"),
        (sqlite_error(sqlite3.SQLITE_BUSY, "database is locked"), "another program holds it locked"),
    ],
    ids=["disk full", "I/O error", "read-only", "cannot open", "locked"],
)
async def test_a_fault_that_is_not_corruption_names_the_file_and_moves_nothing(
    tmp_path, monkeypatch, error, what_to_do
):
    # Arrange: a healthy store, whose next open meets a fault of the disk (injected where SQLite would raise it).
    path = tmp_path / "state.sqlite3"
    await (await StateStore.open(path)).close()
    before = path.read_bytes()
    real_pragma = state_file.pragma

    async def failing(db, pragma):
        if pragma == "quick_check":
            raise error
        return await real_pragma(db, pragma)

    monkeypatch.setattr(state_file, "pragma", failing)

    # Act
    with pytest.raises(StorageError) as raised:
        await StateStore.open(path)

    # Assert: one line naming the file and what to do; the file where it was, as it was
    assert str(raised.value).startswith(f"state store {path}: {error}: ") and what_to_do in str(raised.value)
    assert "\n" not in str(raised.value)
    assert sorted(os.listdir(tmp_path)) == ["state.sqlite3"] and path.read_bytes() == before


async def test_a_store_locked_by_another_program_is_waited_for_then_named(tmp_path, monkeypatch, ledger_file):
    ledger_file.parent.mkdir(parents=True)
    await (await StateStore.open(tmp_path / "state.sqlite3")).close()
    monkeypatch.setattr(state_file, "BUSY_SECONDS", 0.2)  # 10 s in the bot
    other = sqlite3.connect(tmp_path / "state.sqlite3")
    try:
        other.execute("BEGIN EXCLUSIVE")
        other.execute("DELETE FROM exit_highs")

        with pytest.raises(StorageError, match="database is locked: another program holds it locked"):
            await start_up(tmp_path, now=T0, zone=ZONE)
    finally:
        other.rollback()
        other.close()
    assert not list(tmp_path.glob("*.corrupt-*"))


async def test_a_store_of_a_newer_bot_is_refused_and_left_as_it_is(tmp_path):
    path = tmp_path / "state.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")

    with pytest.raises(StorageError, match=f"schema version {len(MIGRATIONS) + 1}, newer than this bot's"):
        await StateStore.open(path)

    assert await_version(path) == len(MIGRATIONS) + 1 and not list(tmp_path.glob("*.corrupt-*"))


async def test_the_trading_state_table_of_an_older_store_goes_at_the_migration(tmp_path):
    path = tmp_path / "state.sqlite3"
    with sqlite3.connect(path) as db:
        for number, script in enumerate(MIGRATIONS[:4], start=1):
            db.executescript(f"{script}; PRAGMA user_version = {number};")

    await (await StateStore.open(path)).close()

    assert "trading_state" not in tables(path) and set(state_file.TABLES) <= tables(path)


async def test_an_older_store_loses_its_copies_of_the_ledger_and_keeps_its_orders_in_flight_and_highs(tmp_path, spy):
    path = tmp_path / "state.sqlite3"
    with sqlite3.connect(path) as db:
        for number, script in enumerate(MIGRATIONS[:5], start=1):
            db.executescript(f"{script}; PRAGMA user_version = {number};")
        db.execute(
            "INSERT INTO orders VALUES ('ord-old', 'pos-1', 'buy', 3, 1, 'partially_filled', NULL, ?)",
            (T0.isoformat(),),
        )
        db.execute("INSERT INTO exit_highs VALUES ('pos-1', '1.50')")
        db.execute("INSERT INTO outbox VALUES ('pos-1', 'evt-1')")

    store = await StateStore.open(path)
    try:
        [order] = await store.open_orders()
        highs = await store.highs()
    finally:
        await store.close()

    assert tables(path) == set(state_file.TABLES) == {"orders", "exit_highs", "checkpoint"}
    assert (order.order_id, order.filled_qty, order.status) == ("ord-old", 1, OrderStatus.PARTIALLY_FILLED)
    assert order.contract is None and order.strategy is None  # the broker's restart finds them (bot.broker.restart)
    assert highs == {"pos-1": Decimal("1.50")}


async def stored_trade(tmp_path, manager, quotes, spy, ledger_file):
    """A trade in the ledger and the store, the store closed."""
    position = await trade(manager, quotes, spy)
    ledger, store, _ = await start_up(tmp_path, now=T0, zone=ZONE)
    await store.save_high(position.position_id, Decimal("1.50"))
    for order in manager.orders.values():
        await store.record_intent(intent(order, spy), "orb", T0)  # orders in flight at a broker: not resolved
    await store.close()
    ledger.close()
    return position


def damage(tmp_path, sql):
    with sqlite3.connect(tmp_path / "state.sqlite3") as db:
        db.execute(sql)


@pytest.mark.parametrize(
    ("sql", "where"),
    [
        ("DROP TABLE exit_highs", "table exit_highs is missing"),
        ("UPDATE exit_highs SET high = 'abc'", "table exit_highs, position pos-"),
        ("UPDATE orders SET status = 'paused'", "table orders, order "),
        ("UPDATE orders SET symbol = 'SPY 450 call'", "table orders, order "),
        ("UPDATE orders SET limit_price = 'cheap'", "table orders, order "),
    ],
    ids=["dropped table", "bad decimal in a saved high", "bad order status", "bad contract", "bad limit"],
)
async def test_a_value_the_ledger_cannot_rebuild_stops_the_start_naming_file_and_field(
    tmp_path, manager, quotes, spy, ledger_file, sql, where
):
    await stored_trade(tmp_path, manager, quotes, spy, ledger_file)
    damage(tmp_path, sql)

    with pytest.raises(StorageError) as raised:
        ledger, store, _ = await start_up(tmp_path, now=T0, zone=ZONE)
        try:
            await store.highs()
            await store.open_orders()  # as a broker's desk reads them
        finally:
            await store.close()
            ledger.close()

    assert str(raised.value).startswith(f"state store {tmp_path / 'state.sqlite3'}: {where}")
    assert "\n" not in str(raised.value)


async def test_a_checkpoint_that_cannot_be_read_is_said_and_the_whole_ledger_verified(
    tmp_path, manager, quotes, spy, ledger_file, caplog
):
    position = await stored_trade(tmp_path, manager, quotes, spy, ledger_file)
    said = "table checkpoint cannot be read"
    damage(tmp_path, "UPDATE checkpoint SET kept = '{not json'")

    ledger, store, report = await start_up(tmp_path, now=T0, zone=ZONE, orders_at_broker=True)
    try:
        checkpoint = await store.checkpoint()
    finally:
        await store.close()
        ledger.close()

    [line] = [r.getMessage() for r in caplog.records if said in r.getMessage()]
    assert str(tmp_path / "state.sqlite3") in line and r_level(caplog, said) == logging.WARNING
    assert report.positions[position.position_id].avg_entry == Decimal("1.20") and report.problems == []
    assert checkpoint is not None and checkpoint.ledger_bytes == ledger_file.stat().st_size


def r_level(caplog, said):
    return next(r.levelno for r in caplog.records if said in r.getMessage())


async def test_an_unanswered_opening_order_is_resolved_though_its_position_never_existed(
    store, manager, quotes, spy, ledger_file
):
    position = await trade(manager, quotes, spy)
    await manager.close(position.position_id)
    events = read_ledger(ledger_file).events
    opening = next(iter(manager.orders.values()))
    # An opening order sent just before a crash: its position never existed in the ledger.
    unanswered = opening.__class__("ord-open", "pos-never", opening.side, 2)
    await store.record_intent(intent(unanswered, spy), "orb", T0)

    report = await resume(events, store, now=datetime(2026, 11, 27, 15, tzinfo=UTC), zone=ZONE)

    assert report.resolved_orders == ["ord-open"]
    assert await store.open_orders() == []


async def test_a_demo_day_leaves_trailing_highs_and_every_order_ended_in_the_store(tmp_path):
    storage = tmp_path / "storage"
    settings = Settings()
    day = date(2026, 11, 25)
    # A demo day leaves saved highs in the store, which a fresh desk takes back, and no order in flight.
    await run_demo_day(settings, storage, seed=3, day=day, out=io.StringIO())
    store = await StateStore.open(storage / "state.sqlite3")
    try:
        highs, left_open = await store.highs(), await store.open_orders()
    finally:
        await store.close()
    events = read_ledger(storage / "options" / "trade_events.jsonl").events

    assert highs
    assert all(isinstance(high, Decimal) and high > 0 for high in highs.values())
    assert left_open == []
    # Every order that filled had its intent recorded first (an expiry settlement is no order sent anywhere).
    recorded = {row[0] for row in rows(storage / "state.sqlite3", "SELECT order_id FROM orders")}
    assert events and all(e.order_id in recorded or e.actor == "expiry" for e in events)


async def start_twice(storage, now):
    for _ in range(2):
        ledger, store, report = await start_up(storage, now=now, zone=ZONE)
        await store.close()
        ledger.close()
    return report


async def two_days_of_trading(manager, quotes, spy, ledger_file):
    """Yesterday's position closed, today's still open."""
    yesterday = await trade(manager, quotes, spy)
    await manager.close(yesterday.position_id)
    quotes.update(spy.symbol, quote("1.10", "1.20"))
    today = await manager.open_position(spy, 3, strategy="orb")
    lines = ledger_file.read_text().splitlines()
    # The open of today's position happened a day later than the rest.
    moved = [line.replace("2026-11-25T15:00:00Z", "2026-11-26T15:00:00Z") if i == len(lines) - 1 else line
             for i, line in enumerate(lines)]  # fmt: skip
    ledger_file.write_text("\n".join(moved) + "\n")
    return yesterday, today


NEXT_DAY = datetime(2026, 11, 26, 16, tzinfo=UTC)


async def test_a_restart_replays_only_what_the_checkpoint_kept_and_the_lines_since(manager, quotes, spy, ledger_file):
    _, today = await two_days_of_trading(manager, quotes, spy, ledger_file)

    report = await start_twice(ledger_file.parent.parent, NEXT_DAY)

    assert report.problems == []
    assert set(report.positions) == {today.position_id}  # yesterday's closed position is trusted, not replayed
    assert [e.position_id for e in report.events] == [today.position_id]


async def test_a_ledger_changed_behind_the_checkpoint_is_verified_in_full(manager, quotes, spy, ledger_file):
    yesterday, _ = await two_days_of_trading(manager, quotes, spy, ledger_file)
    await start_twice(ledger_file.parent.parent, NEXT_DAY)
    first = json.loads(ledger_file.read_text().splitlines()[0])
    tampered = ledger_file.read_text().replace(f'"qty":{first["qty"]}', '"qty":7', 1)
    ledger_file.write_text(tampered)

    ledger, store, report = await start_up(ledger_file.parent.parent, now=NEXT_DAY, zone=ZONE)
    await store.close()
    ledger.close()

    assert yesterday.position_id in report.positions  # replayed again, in full
    assert any("line 1 " in problem for problem in report.problems)


async def test_a_new_line_for_a_position_closed_before_the_checkpoint_is_a_problem(manager, quotes, spy, ledger_file):
    yesterday, today = await two_days_of_trading(manager, quotes, spy, ledger_file)
    await start_twice(ledger_file.parent.parent, NEXT_DAY)
    old = json.loads(ledger_file.read_text().splitlines()[0])
    late = {**old, "event_id": "evt-late", "fill_id": "fill-late", "kind": "add", "ts": "2026-11-26T15:30:00Z"}
    again = {**old, "ts": "2026-11-26T15:31:00Z", "position_id": today.position_id, "fill_id": "fill-new"}
    with ledger_file.open("a") as file:
        file.write(json.dumps(late) + "\n" + json.dumps(again) + "\n")

    ledger, store, report = await start_up(ledger_file.parent.parent, now=NEXT_DAY, zone=ZONE)
    await store.close()
    ledger.close()

    # Named by their lines in the ledger (the fifth and sixth), not by their place among the lines replayed.
    assert any(f"line 5 (evt-late): position {yesterday.position_id} was closed earlier" in p for p in report.problems)
    assert any(p.startswith("line 6 (") and "event_id appears twice" in p for p in report.problems)
