import io
import json
import logging
import os
import sqlite3
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from bot.options.trade_ledger import read_ledger
from bot.paths import StorageError
from bot.runtime import state_file
from bot.runtime.demo import run_demo_day
from bot.runtime.resume import resume, start_up
from bot.runtime.state_file import MIGRATIONS
from bot.runtime.state_store import StateStore, StoredPosition, count_outbox
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


async def test_a_new_store_is_at_the_latest_schema_in_wal_mode(store, tmp_path):
    assert await store.schema_version() == len(MIGRATIONS)
    with sqlite3.connect(tmp_path / "state.sqlite3") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert (tmp_path / "state.sqlite3").stat().st_mode & 0o077 == 0


async def test_resume_fills_an_empty_store_from_the_ledger(store, manager, quotes, spy, ledger_file):
    position = await trade(manager, quotes, spy)
    events = read_ledger(ledger_file).events

    report = await resume(events, store, now=T0, zone=ZONE)

    assert report.positions == {position.position_id: position}
    assert report.repaired == []  # nothing was there to repair: a rebuild
    assert await store.positions() == {position.position_id: StoredPosition.of(position, events[-1].event_id)}
    assert await store.fill_ids() == {e.fill_id for e in events}


async def test_the_ledger_wins_over_a_store_that_differs(store, manager, quotes, spy, ledger_file):
    position = await trade(manager, quotes, spy)
    events = read_ledger(ledger_file).events
    await resume(events, store, now=T0, zone=ZONE)
    wrong = position.__class__(position.position_id, position.contract, position.strategy, qty=99)
    await store.rewrite([(wrong, "evt-wrong")], [], [position.position_id], T0)

    report = await resume(events, store, now=T0, zone=ZONE)

    assert report.repaired == [position.position_id]
    assert "repaired 1 position(s) from the ledger" in report.summary()
    assert (await store.positions())[position.position_id].qty == 6


async def test_positions_closed_before_today_leave_the_store(store, manager, quotes, spy, ledger_file):
    position = await trade(manager, quotes, spy)
    await manager.close(position.position_id)
    events = read_ledger(ledger_file).events
    await resume(events, store, now=T0, zone=ZONE)
    assert position.position_id in await store.positions()

    await resume(events, store, now=datetime(2026, 11, 27, 15, tzinfo=UTC), zone=ZONE)

    assert await store.positions() == {}
    assert await store.fill_ids() == set()


async def test_an_order_left_unanswered_by_a_crash_is_resolved_from_the_ledger(
    store, manager, quotes, spy, ledger_file
):
    await trade(manager, quotes, spy)
    events = read_ledger(ledger_file).events
    filled = next(iter(manager.orders.values()))
    # An order the process sent just before it died: the executor never answered, the ledger has no fill.
    ghost = filled.__class__("ord-ghost", filled.position_id, filled.side, 3)
    for order in (filled, ghost):
        await store.save_order(order, T0)

    report = await resume(events, store, now=T0, zone=ZONE)

    assert report.resolved_orders == ["ord-ghost"]
    assert await store.open_orders() == []


async def test_a_corrupt_store_is_set_aside_and_started_anew(tmp_path):
    path = tmp_path / "state.sqlite3"
    path.write_bytes(b"this is not a database" * 100)

    store = await StateStore.open(path)
    try:
        assert await store.schema_version() == len(MIGRATIONS)
        assert await store.positions() == {}
    finally:
        await store.close()
    [aside] = tmp_path.glob("state.sqlite3.corrupt-*")
    assert store.set_aside == aside and aside.read_bytes().startswith(b"this is not a database")


async def test_a_zero_byte_store_is_started_anew_in_place(tmp_path):
    path = tmp_path / "state.sqlite3"
    path.write_bytes(b"")

    store = await StateStore.open(path)
    await store.close()

    assert store.set_aside is None and not list(tmp_path.glob("*.corrupt-*"))
    assert await_version(path) == len(MIGRATIONS)


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
        other.execute("DELETE FROM outbox")

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

    with sqlite3.connect(path) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "trading_state" not in tables and set(state_file.TABLES) <= tables


async def stored_trade(tmp_path, manager, quotes, spy, ledger_file):
    """A trade in the ledger and the store, the store closed."""
    position = await trade(manager, quotes, spy)
    ledger, store, _ = await start_up(tmp_path, now=T0, zone=ZONE)
    await store.save_high(position.position_id, Decimal("1.50"))
    await store.close()
    ledger.close()
    return position


def damage(tmp_path, sql):
    with sqlite3.connect(tmp_path / "state.sqlite3") as db:
        db.execute(sql)


@pytest.mark.parametrize(
    ("sql", "where"),
    [
        ("DROP TABLE exit_levels", "table exit_levels is missing"),
        ("UPDATE exit_highs SET high = 'abc'", "table exit_highs, position pos-"),
        ("UPDATE orders SET status = 'paused'", "table orders, order "),
    ],
    ids=["dropped table", "bad decimal in a saved high", "bad order status"],
)
async def test_a_value_the_ledger_cannot_rebuild_stops_the_start_naming_file_and_field(
    tmp_path, manager, quotes, spy, ledger_file, sql, where
):
    await stored_trade(tmp_path, manager, quotes, spy, ledger_file)
    for order in manager.orders.values():
        store = await StateStore.open(tmp_path / "state.sqlite3")
        await store.save_order(order, T0)
        await store.close()
    damage(tmp_path, sql)

    with pytest.raises(StorageError) as raised:
        ledger, store, _ = await start_up(tmp_path, now=T0, zone=ZONE)
        try:
            await store.highs()
        finally:
            await store.close()
            ledger.close()

    assert str(raised.value).startswith(f"state store {tmp_path / 'state.sqlite3'}: {where}")
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("sql", "said"),
    [
        ("UPDATE checkpoint SET kept = '{not json'", "table checkpoint cannot be read"),
        ("UPDATE positions SET avg_entry = 'abc'", "table positions, position pos-"),
    ],
    ids=["bad checkpoint", "bad position"],
)
async def test_a_value_the_ledger_can_rebuild_is_rebuilt_and_said(
    tmp_path, manager, quotes, spy, ledger_file, caplog, sql, said
):
    position = await stored_trade(tmp_path, manager, quotes, spy, ledger_file)
    damage(tmp_path, sql)

    ledger, store, report = await start_up(tmp_path, now=T0, zone=ZONE)
    try:
        stored = await store.positions()
        checkpoint = await store.checkpoint()
    finally:
        await store.close()
        ledger.close()

    [line] = [r.getMessage() for r in caplog.records if said in r.getMessage()]
    assert str(tmp_path / "state.sqlite3") in line and r_level(caplog, said) == logging.WARNING
    assert stored[position.position_id].avg_entry == Decimal("1.20") and report.problems == []
    assert checkpoint is not None and checkpoint.ledger_bytes == ledger_file.stat().st_size


def r_level(caplog, said):
    return next(r.levelno for r in caplog.records if said in r.getMessage())


async def test_outbox_and_exit_levels_survive_a_reopen(tmp_path, manager, quotes, spy, ledger_file):
    position = await trade(manager, quotes, spy)
    last = read_ledger(ledger_file).events[-1]
    store = await StateStore.open(tmp_path / "state.sqlite3")
    await store.record_fill(last, position)
    await store.fire_level(position.position_id, "profit", 1)
    await store.close()

    store = await StateStore.open(tmp_path / "state.sqlite3")
    try:
        assert count_outbox(store.path) == 1  # read as `status` reads it, beside the open store
        assert await store.fired() == {position.position_id: {("profit", 1)}}
        await store.delivered(position.position_id, "evt-other")
        assert count_outbox(store.path) == 1  # a later event is still to be shown
        await store.delivered(position.position_id, last.event_id)
        assert count_outbox(store.path) == 0
        assert (await store.positions())[position.position_id].avg_entry == Decimal("1.20")
    finally:
        await store.close()


async def test_an_unanswered_opening_order_is_resolved_though_its_position_never_existed(
    store, manager, quotes, spy, ledger_file
):
    position = await trade(manager, quotes, spy)
    await manager.close(position.position_id)
    events = read_ledger(ledger_file).events
    opening = next(iter(manager.orders.values()))
    # An opening order sent just before a crash: its position never existed in the ledger.
    unanswered = opening.__class__("ord-open", "pos-never", opening.side, 2)
    await store.save_order(unanswered, T0)

    report = await resume(events, store, now=datetime(2026, 11, 27, 15, tzinfo=UTC), zone=ZONE)

    assert report.resolved_orders == ["ord-open"]
    assert await store.open_orders() == []


async def test_fired_exit_levels_and_trailing_highs_are_recorded_in_the_store(tmp_path):
    storage = tmp_path / "storage"
    settings = Settings()
    day = date(2026, 11, 25)
    # A demo day leaves fired exit levels and saved highs in the store; a fresh desk takes the highs back.
    await run_demo_day(settings, storage, seed=3, day=day, out=io.StringIO())
    store = await StateStore.open(storage / "state.sqlite3")
    try:
        highs, fired = await store.highs(), await store.fired()
    finally:
        await store.close()
    ladder_trims = [e for e in read_ledger(storage / "options" / "trade_events.jsonl").events if e.kind == "trim"]

    assert {rule for levels in fired.values() for rule, _ in levels} >= {"profit"}
    assert sum(1 for levels in fired.values() for rule, _ in levels if rule == "profit") >= len(ladder_trims)
    assert highs
    assert all(isinstance(high, Decimal) and high > 0 for high in highs.values())


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
