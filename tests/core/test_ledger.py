import asyncio
import json
import logging
import os
from decimal import Decimal
from pathlib import Path

import pytest

from bot.options.ledger_verify import verify_events
from bot.options.trade_ledger import LedgerError, TradeLedger, last_event, parse_line, read_ledger, replay
from tests.core.factories import quote

FIELDS = {
    "v", "event_id", "ts", "kind", "position_id", "order_id", "fill_id", "strategy", "source", "actor", "symbol",
    "underlying", "expiry", "right", "strike", "side", "qty", "price", "multiplier", "fees", "position_qty",
    "avg_entry", "realized_pnl", "realized_pnl_total",
}  # fmt: skip


async def trade_a_little(manager, quotes, spy):
    quotes.update(spy.symbol, quote("1.10", "1.20"))
    position = await manager.open_position(spy, 10, strategy="orb")
    quotes.update(spy.symbol, quote("1.45", "1.50"))
    await manager.add(position.position_id, 5)
    quotes.update(spy.symbol, quote("2.00", "2.05"))
    await manager.trim(position.position_id, qty=5)
    quotes.update(spy.symbol, quote("1.00", "1.05"))
    return await manager.close(position.position_id)


async def test_each_line_holds_the_public_fields(manager, quotes, spy, ledger_file):
    await trade_a_little(manager, quotes, spy)

    lines = [json.loads(line) for line in ledger_file.read_text().splitlines()]

    assert [set(line) for line in lines] == [FIELDS] * 4
    first, add, trim, close = lines
    assert first["v"] == 1
    assert first["ts"] == "2026-11-25T15:00:00Z"
    assert (first["kind"], first["side"], first["qty"], first["price"]) == ("open", "buy", 10, "1.20")
    assert (first["symbol"], first["underlying"], first["expiry"], first["right"]) == (
        "SPY   261127C00450000", "SPY", "2026-11-27", "C",
    )  # fmt: skip
    assert (first["strike"], first["multiplier"], first["source"], first["actor"]) == ("450", 100, "strategy", None)
    assert add["avg_entry"] == "1.300000"
    assert (trim["kind"], trim["realized_pnl"], trim["position_qty"]) == ("trim", "350.00", 10)
    assert (close["kind"], close["realized_pnl"], close["realized_pnl_total"]) == ("close", "-300.00", "50.00")
    assert all(isinstance(line[key], str) for line in lines for key in ("price", "fees", "avg_entry", "strike"))
    assert len({line["event_id"] for line in lines}) == 4


async def test_replay_rebuilds_the_live_positions(manager, quotes, spy, ledger_file):
    position = await trade_a_little(manager, quotes, spy)
    quotes.update(spy.symbol, quote("1.00", "1.05"))
    still_open = await manager.open_position(spy, 3, strategy="mr")

    replayed = replay(read_ledger(ledger_file).events)

    assert replayed == {position.position_id: position, still_open.position_id: manager.get(still_open.position_id)}


async def test_append_returns_only_after_fsync(ledger, ledger_file, monkeypatch, manager, quotes, spy):
    synced: list[int] = []
    real_fsync = os.fsync

    def recording_fsync(fd):
        real_fsync(fd)
        synced.append(ledger_file.read_bytes().count(b"\n"))

    monkeypatch.setattr(os, "fsync", recording_fsync)
    quotes.update(spy.symbol, quote("1.10", "1.20"))

    await manager.open_position(spy, 1, strategy="orb")

    assert synced == [1]


async def test_concurrent_appends_share_fsyncs_and_never_interleave(
    ledger, ledger_file, monkeypatch, manager, quotes, spy
):
    quotes.update(spy.symbol, quote("1.10", "1.20"))
    position = await manager.open_position(spy, 1, strategy="orb")
    event = read_ledger(ledger_file).events[0]
    fsyncs = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (fsyncs.append(fd), real_fsync(fd)))
    events = [event._replace(event_id=f"evt-{i}", strategy="x" * i) for i in range(100)]

    await asyncio.gather(*(ledger.append(e) for e in events))

    lines = ledger_file.read_bytes().splitlines()
    assert [parse_line(ledger_file, n, line) for n, line in enumerate(lines[1:], start=2)] == events
    assert len(fsyncs) < 10
    assert position.qty == 1


async def test_a_failed_write_leaves_no_partial_line(ledger, ledger_file, monkeypatch, manager, quotes, spy):
    quotes.update(spy.symbol, quote("1.10", "1.20"))
    await manager.open_position(spy, 1, strategy="orb")
    before = ledger_file.read_bytes()
    event = read_ledger(ledger_file).events[0]._replace(event_id="evt-x")
    real_write = os.write

    def half_then_disk_full(fd, data):
        if len(data) > 10:
            return real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_disk_full)
    with pytest.raises(LedgerError, match="No space left on device"):
        await ledger.append(event)

    assert ledger_file.read_bytes() == before


async def test_a_queued_line_is_written_even_if_its_caller_is_cancelled(ledger, ledger_file, manager, quotes, spy):
    quotes.update(spy.symbol, quote("1.10", "1.20"))
    await manager.open_position(spy, 1, strategy="orb")
    first = read_ledger(ledger_file).events[0]
    leader = asyncio.create_task(ledger.append(first._replace(event_id="evt-a")))
    follower = asyncio.create_task(ledger.append(first._replace(event_id="evt-b")))
    await asyncio.sleep(0)  # both queued, the leader is yielding once

    leader.cancel()
    follower.cancel()
    await asyncio.gather(leader, follower, return_exceptions=True)

    assert [e.event_id for e in read_ledger(ledger_file).events] == [first.event_id, "evt-a", "evt-b"]


async def test_a_closed_ledger_refuses_appends(ledger, ledger_file, manager, quotes, spy):
    quotes.update(spy.symbol, quote("1.10", "1.20"))
    await manager.open_position(spy, 1, strategy="orb")
    event = read_ledger(ledger_file).events[0]
    ledger.close()

    with pytest.raises(LedgerError, match="not open"):
        await ledger.append(event)


async def test_a_torn_last_line_is_cut_away_at_open_and_kept_aside(ledger_file, manager, quotes, spy, caplog, ledger):
    quotes.update(spy.symbol, quote("1.10", "1.20"))
    await manager.open_position(spy, 1, strategy="orb")
    ledger.close()
    good = ledger_file.read_bytes()
    torn = good.splitlines()[0][:37]
    ledger_file.write_bytes(good + torn)
    assert read_ledger(ledger_file).torn_tail == torn

    with caplog.at_level(logging.WARNING):
        reopened = TradeLedger.open(ledger_file)
    reopened.close()

    assert ledger_file.read_bytes() == good
    [side] = ledger_file.parent.glob("trade_events.jsonl.torn-*")
    assert side.read_bytes() == torn
    assert "torn last line of 37 bytes" in caplog.text
    assert str(side) in caplog.text


def test_a_malformed_line_is_an_error_naming_its_line(tmp_path, ledger_file, ledger):
    ledger_file.write_bytes(b'{"v": 1}\n')
    with pytest.raises(LedgerError, match="line 1 is not a valid trade event"):
        read_ledger(ledger_file)
    ledger_file.write_bytes(b"not json\n")
    with pytest.raises(LedgerError, match="line 1"):
        read_ledger(ledger_file)


async def test_readers_accept_added_fields_and_refuse_bad_values(manager, quotes, spy, ledger_file):
    quotes.update(spy.symbol, quote("1.10", "1.20"))
    await manager.open_position(spy, 1, strategy="orb")
    line = json.loads(ledger_file.read_text())
    ledger_file.write_text(json.dumps({**line, "venue": "later"}) + "\n" + json.dumps({**line, "price": "NaN"}) + "\n")

    with pytest.raises(LedgerError, match=r"line 2 .*price"):
        read_ledger(ledger_file)


async def test_verify_finds_tampered_lines(manager, quotes, spy, ledger_file):
    await trade_a_little(manager, quotes, spy)
    lines = [json.loads(line) for line in ledger_file.read_text().splitlines()]
    lines[2]["realized_pnl"] = "351.00"
    lines[1]["avg_entry"] = "1.3100"
    lines[3]["event_id"] = lines[0]["event_id"]
    events = [parse_line(Path("tampered"), n, json.dumps(line).encode()) for n, line in enumerate(lines, start=1)]

    report = verify_events(events)

    assert not report.ok
    assert any(p.startswith("line 2 ") and "avg_entry" in p for p in report.problems)
    assert any(p.startswith("line 3 ") and "realized_pnl is 351.00" in p for p in report.problems)
    assert any(p.startswith("line 4 ") and "event_id appears twice" in p for p in report.problems)


async def test_verify_finds_events_after_a_close_and_oversells(manager, quotes, spy, ledger_file):
    position = await trade_a_little(manager, quotes, spy)
    events = read_ledger(ledger_file).events
    after_close = events[2]._replace(event_id="evt-late", fill_id="fill-late")
    oversell = events[2]._replace(event_id="evt-big", fill_id="fill-big", qty=16)

    late = verify_events([*events, after_close])
    big = verify_events([*events[:2], oversell])

    assert verify_events(events).ok
    assert verify_events(events).realized_pnl == Decimal("50.00")
    assert late.problems == [
        f"line 5 (evt-late): cannot be applied: Position {position.position_id} is closed; it cannot be traded."
    ]
    assert big.problems == [
        f"line 3 (evt-big): cannot be applied: Cannot sell 16 contracts of position {position.position_id}: "
        "only 15 are open."
    ]
    with pytest.raises(LedgerError, match="event 5 \\(evt-late\\) cannot be replayed"):
        replay([*events, after_close])


async def test_the_last_event_is_read_from_the_end_of_the_file(manager, quotes, spy, ledger_file):
    assert last_event(ledger_file) is None
    await trade_a_little(manager, quotes, spy)
    events = read_ledger(ledger_file).events

    assert last_event(ledger_file) == events[-1]
    with ledger_file.open("ab") as file:
        file.write(b'{"v": 1, "event_id": "torn')  # a crash mid-write: the last complete line still counts
    assert last_event(ledger_file) == events[-1]
