import io
import json
import sqlite3
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from bot.options.risk import TradingState
from bot.options.trade_ledger import read_ledger
from bot.runtime.demo import run_demo_day
from bot.runtime.resume import resume, start_up
from bot.runtime.state_store import MIGRATIONS, StateStore, StoredPosition
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
        # The kill switch was in the lost file: no new risk until an admin has looked.
        assert (await store.trading_state()).state is TradingState.REDUCE_ONLY
    finally:
        await store.close()
    assert list(tmp_path.glob("state.sqlite3.corrupt-*"))


async def test_outbox_and_exit_levels_survive_a_reopen(tmp_path, manager, quotes, spy, ledger_file):
    position = await trade(manager, quotes, spy)
    last = read_ledger(ledger_file).events[-1]
    store = await StateStore.open(tmp_path / "state.sqlite3")
    await store.record_fill(last, position)
    await store.fire_level(position.position_id, "profit", 1)
    await store.close()

    store = await StateStore.open(tmp_path / "state.sqlite3")
    try:
        assert await store.outbox() == {position.position_id: last.event_id}
        assert await store.fired() == {position.position_id: {("profit", 1)}}
        await store.delivered(position.position_id, last.event_id)
        assert await store.outbox() == {}
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

    assert any(f"position {yesterday.position_id} was closed earlier" in p for p in report.problems)
    assert any("event_id appears twice" in p for p in report.problems)
