"""Options that end at Alpaca without a fill (an expiry, an exercise, an assignment, each with its stock leg) reach the
ledger as the close of the position, once: on the running desk, across a restart and across `reconcile --apply`;
the shares are told to the admins, and an activity for a contract the desk does not hold is logged once."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from bot.cli.reconcile import reconcile_command
from bot.options.contracts import OptionContract
from bot.options.ledger_verify import verify_events
from bot.options.market_hours import session_close
from bot.options.positions import Source
from bot.options.quotes import Quote
from bot.options.trade_ledger import TradeEvent, parse_line, read_ledger
from bot.paths import ledger_path
from bot.runtime.desk import Desk
from tests.broker.conftest import NOW, Clock, broker_desk, broker_settings
from tests.broker.fake_alpaca import FakeAlpaca

DAY = NOW.date()  # the contracts expire today
EXPIRES = OptionContract.parse("SPY   261125C00460000")  # out of the money at 455
EXERCISED = OptionContract.parse("SPY   261125C00450000")  # 5 in the money at 455
ASSIGNED = OptionContract.parse("SPY   261125P00470000")
NEXT_DAY = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)  # Thanksgiving is between
CLOSE = session_close(DAY).astimezone(UTC)


async def hold_three(desk: Desk) -> dict[str, str]:
    """The desk holds 2 of each contract, and saw SPY at 455.05 before the close; position id by symbol."""
    held = {}
    for contract in (EXPIRES, EXERCISED, ASSIGNED):
        desk.quotes.update(contract.symbol, Quote(bid=Decimal("1.00"), ask=Decimal("1.05"), ts=NOW))
        position = await desk.manager.open_position(contract, 2, strategy="spy-orb")
        held[contract.symbol] = position.position_id
    desk.quotes.update("SPY", Quote(bid=Decimal("455.00"), ask=Decimal("455.10"), ts=NOW))
    return held


def alpaca_ends_them(fake: FakeAlpaca, *, strikes: bool = False) -> dict[str, str]:
    """What Alpaca reports after the close: activity id by event. The stock legs carry SPY's price at the close, or
    with `strikes` each its contract's strike (then they tell nothing of SPY's price)."""
    for contract in (EXPIRES, EXERCISED, ASSIGNED):
        fake.positions[contract.compact] = 0
    ids = {
        "expire": fake.add_event("OPEXP", EXPIRES.compact, -2, DAY),
        "exercise": fake.add_event("OPEXC", EXERCISED.compact, -2, DAY),
        "assign": fake.add_event("OPASN", ASSIGNED.compact, 2, DAY),
    }
    fake.add_event("OPTRD", "SPY", 200, DAY, "450" if strikes else "455.05")
    fake.add_event("OPTRD", "SPY", -200, DAY, "470" if strikes else "455.05")
    return ids


def lifecycle_lines(storage: Path) -> list[TradeEvent]:
    return [e for e in read_ledger(ledger_path(storage)).events if e.event is not None]


async def test_each_kind_is_recorded_once_as_the_close_of_its_position(
    fake: FakeAlpaca, storage: Path, clock: Clock
) -> None:
    told: list[tuple[str, str]] = []
    async with broker_desk(fake, storage, clock) as desk:
        assert desk.broker is not None
        desk.broker.admins = lambda kind, text: told.append((kind, text))
        held = await hold_three(desk)
        ids = alpaca_ends_them(fake)
        clock.now = NEXT_DAY
        assert await desk.broker.record_activities(desk.manager) == 3
        assert desk.manager.open_positions() == []
        assert await desk.broker.record_activities(desk.manager) == 0  # applied once

    lines = {e.event: e for e in lifecycle_lines(storage)}
    assert set(lines) == {"expire", "exercise", "assign"}
    for event, line in lines.items():
        assert (line.kind, line.fill_id, line.source, line.qty) == ("close", ids[event], Source.BROKER, 2)
        assert line.broker_ts == CLOSE and line.ts == CLOSE  # done at the expiry day's close, as Alpaca dates it
    assert lines["expire"].position_id == held[EXPIRES.symbol]
    assert lines["expire"].price == 0
    assert lines["exercise"].price == Decimal("5.05")  # intrinsic on the 455.05 the desk saw before the close
    assert lines["assign"].price == Decimal("14.95")  # a 470 put on 455.05
    assert lines["exercise"].realized_pnl == Decimal("5.05") * 200 - Decimal("1.00") * 200
    assert verify_events(read_ledger(ledger_path(storage)).events).ok
    # The shares are not the desk's: the admins hear of each leg, with nothing Discord would read as markup.
    texts = sorted(text for _, text in told)
    assert len(texts) == 2 and all("shares are not a desk position" in text for text in texts)
    assert any("received 200 SPY shares" in text for text in texts)
    assert any("delivered 200 SPY shares" in text for text in texts)


async def test_applied_once_across_a_restart(fake: FakeAlpaca, storage: Path, clock: Clock) -> None:
    async with broker_desk(fake, storage, clock) as desk:
        await hold_three(desk)
    alpaca_ends_them(fake)
    clock.now = NEXT_DAY
    async with broker_desk(fake, storage, clock) as desk:
        assert desk.broker is not None
        # Restarted after the close: no SPY price of that close reached this run, so the stock leg values the exercise.
        assert await desk.broker.record_activities(desk.manager) == 3
    async with broker_desk(fake, storage, clock) as desk:
        assert desk.broker is not None
        assert await desk.broker.record_activities(desk.manager) == 0
        assert desk.manager.open_positions() == []
    lines = lifecycle_lines(storage)
    assert len(lines) == 3
    assert {e.event: e.price for e in lines}["exercise"] == Decimal("5.05")


async def test_not_asked_before_an_expiry_day(fake: FakeAlpaca, storage: Path, clock: Clock) -> None:
    async with broker_desk(fake, storage, clock) as desk:
        assert desk.broker is not None
        desk.quotes.update("SPY   261127C00450000", Quote(bid=Decimal("1.00"), ask=Decimal("1.05"), ts=NOW))
        await desk.manager.open_position(OptionContract.parse("SPY   261127C00450000"), 1, strategy="spy-orb")
        assert await desk.broker.record_activities(desk.manager) == 0
    assert not [r for r in fake.requests if r.startswith("GET /v2/account/activities/OP")]


async def test_an_activity_for_a_contract_the_desk_does_not_hold_is_logged_once(
    fake: FakeAlpaca, storage: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.broker.link")
    async with broker_desk(fake, storage, clock) as desk:
        assert desk.broker is not None
        desk.quotes.update(EXPIRES.symbol, Quote(bid=Decimal("1.00"), ask=Decimal("1.05"), ts=NOW))
        await desk.manager.open_position(EXPIRES, 1, strategy="spy-orb")
        foreign = fake.add_event("OPEXP", "QQQ261125C00400000", -1, DAY)
        clock.now = NEXT_DAY
        for _ in range(2):
            assert await desk.broker.record_activities(desk.manager) == 0
        assert len(desk.manager.open_positions()) == 1
    said = [r.getMessage() for r in caplog.records if foreign in r.getMessage()]
    assert len(said) == 1 and "no open position of the desk holds it; nothing recorded" in said[0]
    assert lifecycle_lines(storage) == []


async def test_reconcile_matches_them_and_apply_records_each_once(
    fake: FakeAlpaca, storage: Path, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    async with broker_desk(fake, storage, clock) as desk:
        held = await hold_three(desk)
    ids = alpaca_ends_them(fake)
    settings = broker_settings(fake)

    code = await asyncio.to_thread(reconcile_command, settings, storage, day=DAY, as_json=True, apply=False)
    report = json.loads(capsys.readouterr().out)
    assert code == 1
    assert report["positions"] == []  # matched with the activities: no quantity difference
    assert {a["event"]: (a["activity_id"], a["applicable"]) for a in report["lifecycle"]} == {
        event: (activity_id, True) for event, activity_id in ids.items()
    }
    assert sorted(s["shares"] for s in report["shares"]) == [-200, 200]

    code = await asyncio.to_thread(reconcile_command, settings, storage, day=DAY, as_json=True, apply=True)
    assert json.loads(capsys.readouterr().out)["applied"] == 3
    lines = lifecycle_lines(storage)
    assert {(e.event, e.source, e.actor, e.fill_id) for e in lines} == {
        (event, Source.RECONCILE, "reconcile", activity_id) for event, activity_id in ids.items()
    }
    assert {e.position_id for e in lines} == set(held.values())
    assert {e.event: e.price for e in lines}["exercise"] == Decimal("5.05")  # the stock leg's price

    # Once: a second reconcile finds the ledger matching, and a desk started on it records nothing more.
    code = await asyncio.to_thread(reconcile_command, settings, storage, day=DAY, as_json=False, apply=True)
    assert code == 0, capsys.readouterr().out
    clock.now = NEXT_DAY
    async with broker_desk(fake, storage, clock) as desk:
        assert desk.broker is not None
        assert await desk.broker.record_activities(desk.manager) == 0
    assert len(lifecycle_lines(storage)) == 3
    assert verify_events(read_ledger(ledger_path(storage)).events).ok


async def test_reconcile_leaves_an_exercise_it_cannot_price(
    fake: FakeAlpaca, storage: Path, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    async with broker_desk(fake, storage, clock) as desk:
        await hold_three(desk)
    alpaca_ends_them(fake, strikes=True)  # no price of SPY at the close
    code = await asyncio.to_thread(
        reconcile_command, broker_settings(fake), storage, day=DAY, as_json=False, apply=True
    )
    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    unpriced = [line for line in lines if "not applied: no price of the underlying" in line]
    assert len(unpriced) == 2 and "exercise of 2 SPY" in unpriced[0] and "assignment of 2 SPY" in unpriced[1]
    assert len([line for line in lines if line.startswith("  shares")]) == 2
    assert {e.event for e in lifecycle_lines(storage)} == {"expire"}


def test_an_old_ledger_line_reads_without_the_event_field() -> None:
    line = (
        b'{"v":1,"event_id":"e","ts":"2026-11-25T15:00:00Z","kind":"open","position_id":"p","order_id":"o",'
        b'"fill_id":"f","strategy":"s","source":"strategy","actor":null,"symbol":"SPY   261125C00450000",'
        b'"underlying":"SPY","expiry":"2026-11-25","right":"C","strike":"450","side":"buy","qty":1,"price":"1",'
        b'"multiplier":100,"fees":"0","position_qty":1,"avg_entry":"1.000000","realized_pnl":"0",'
        b'"realized_pnl_total":"0"}'
    )
    event = parse_line(Path("old"), 1, line)
    assert event.event is None and b'"event"' not in event.to_line()
    assert parse_line(Path("new"), 1, event._replace(event="expire").to_line()).event == "expire"
