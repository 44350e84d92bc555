"""Attacks on the options lifecycle at the broker: an activity Alpaca reports twice, one activity for two positions
with a restart between their closes, an exercise of a put, and the expiry-day guard whose close fills only in part."""

from __future__ import annotations

import io
import logging
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from bot.broker.activities import BrokerActivity, ShareLeg, parse_activities, plan_activities
from bot.broker.reconcile import reconcile
from bot.options.clock import SimulatedClock
from bot.options.contracts import OptionContract
from bot.options.orders import Side
from bot.options.positions import Position, Source
from bot.options.risk import TradingState
from bot.options.trade_ledger import TradeEvent, read_ledger
from bot.paths import ledger_path
from bot.runtime.desk import open_desk
from bot.runtime.expiry_guard import GUARD_ACTOR
from bot.runtime.message_board import ConsoleBoard
from bot.settings import PaperSettings, RiskSettings, Settings
from tests.broker.test_expiry_guard import REGULAR, at, quote
from tests.core.factories import QuietFeed

DAY = date(2026, 11, 25)
CALL = OptionContract.parse("SPY   261125C00450000")
PUT = OptionContract.parse("SPY   261125P00470000")
BOUGHT = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


def held(position_id: str, contract: OptionContract, qty: int = 2) -> Position:
    position, _ = Position(position_id, contract, "spy-orb").with_fill(
        side=Side.BUY,
        qty=qty,
        price=Decimal("1.00"),
        fees=Decimal(0),
        ts=BOUGHT,
        fill_id=f"buy-{position_id}",
        order_id=f"ord-{position_id}",
        source=Source.STRATEGY,
    )
    return position


def raw(activity_id: str, kind: str, symbol: str, qty: int, price: str | None = None) -> dict[str, object]:
    item: dict[str, object] = {"id": activity_id, "activity_type": kind, "date": DAY.isoformat()}
    item |= {"symbol": symbol, "qty": str(qty)}
    return item | ({} if price is None else {"price": price})


def test_an_activity_alpaca_reports_twice_is_one_activity() -> None:
    reported = [raw("a1", "OPEXP", CALL.compact, -2), raw("a1", "OPEXP", CALL.compact, -2)]

    activities = parse_activities(reported)

    assert [a.activity_id for a in activities] == ["a1"]
    events = [TradeEvent.record(f"evt-{i}", p, p.actions[-1]) for i, p in enumerate([held("p1", CALL)])]
    report = reconcile(
        events, [], {}, day=DAY, zone=UTC, now=BOUGHT, fee_per_contract=Decimal(0), activities=activities
    )
    assert report.summary().endswith("1 expiry, exercise or assignment(s) missing (1 can be applied).")
    assert [e.fill_id for e in report.to_apply] == ["a1"]
    assert report.to_json()["lifecycle"][0]["applicable"] is True


def test_an_activity_that_cannot_be_read_is_left_out_in_one_line_and_the_others_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fractional = raw("bad", "OPEXP", PUT.compact, -1) | {"qty": "-1.5"}
    no_date = {"id": "nodate", "activity_type": "OPASN", "symbol": CALL.compact, "qty": "1"}
    reported = [fractional, no_date, raw("a1", "OPEXP", CALL.compact, -2)]

    with caplog.at_level(logging.WARNING, logger="bot.broker.activities"):
        first = parse_activities(reported)
        again = parse_activities(reported)  # the desk asks again at its next poll

    assert [a.activity_id for a in first] == [a.activity_id for a in again] == ["a1"]
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 2 and all("cannot be read" in line and "\n" not in line for line in said)
    assert any("OPEXP bad" in line for line in said) and any("OPASN nodate" in line for line in said)


def test_one_activity_for_two_positions_closes_the_second_after_a_restart_between_them() -> None:
    expiry = BrokerActivity("a1", "expire", CALL.symbol, 4, DAY)
    first, second = held("p1", CALL), held("p2", CALL)
    plan = plan_activities([expiry], [first, second], [])
    assert sorted(c.fill_id for c in plan.closes) == ["a1/p1", "a1/p2"]

    # The desk recorded the first close and stopped before the second: the next run closes the second, once.
    after_restart = plan_activities([expiry], [second], ["buy-p1", "buy-p2", "a1/p1"])

    assert [(c.position.position_id, c.fill_id) for c in after_restart.closes] == [("p2", "a1/p2")]
    assert plan_activities([expiry], [], ["a1/p1", "a1/p2"]).closes == []


def test_an_activity_for_fewer_contracts_than_held_waits_for_the_sell_the_ledger_misses() -> None:
    position = held("p1", CALL, qty=3)  # Alpaca sold one the ledger never heard of, then expired the other two
    expiry = BrokerActivity("a1", "expire", CALL.symbol, 2, DAY)

    plan = plan_activities([expiry], [position], [])

    assert (plan.closes, plan.fewer) == ([], [expiry])  # nothing booked at 0 for the contract that was sold
    events = [TradeEvent.record("evt-1", position, position.actions[-1])]
    report = reconcile(events, [], {}, day=DAY, zone=UTC, now=BOUGHT, fee_per_contract=Decimal(0), activities=[expiry])
    assert report.to_apply == []
    assert "a fill the ledger misses comes first" in report.lifecycle_refused["a1"]
    # Once the missing sell is in the ledger, the quantities agree and the expiry closes the rest.
    (close,) = plan_activities([expiry], [held("p1", CALL, qty=2)], []).closes
    assert (close.position.position_id, close.price) == ("p1", Decimal(0))
    # More contracts than the desk holds (others in the account traded elsewhere) still close the desk's.
    assert len(plan_activities([BrokerActivity("a3", "expire", CALL.symbol, 5, DAY)], [position], []).closes) == 1


def test_an_exercised_long_put_closes_at_its_intrinsic_and_says_the_shares_delivered() -> None:
    leg = ShareLeg("t1", "SPY", -200, Decimal("455.05"))
    exercise = BrokerActivity("a2", "exercise", PUT.symbol, 2, DAY, leg)

    (close,) = plan_activities([exercise], [held("p1", PUT)], []).closes

    assert close.price == Decimal("14.95")
    text = exercise.shares_text()
    assert text is not None and "delivered 200 SPY shares at 455.05" in text


async def test_the_guard_closes_what_a_partial_fill_left_open(tmp_path: Path) -> None:
    """A close filled in part (the bid shows 1 of 3): the guard closes the rest at its next check, not never."""
    call = OptionContract.parse("SPY   261125C00450000")
    clock = SimulatedClock(at(REGULAR, 11, 0))
    settings = Settings(strategies=[], risk=RiskSettings(), paper=PaperSettings(partial_fills=True))
    board = ConsoleBoard(io.StringIO())
    desk = await open_desk(settings, tmp_path, clock=clock, feed=QuietFeed(), board=board, alert=lambda k, t: None)
    try:
        desk.quotes.update(call.symbol, quote("5.00", clock()))
        position = await desk.manager.open_position(call, 3, strategy="manual")
        clock.advance(at(REGULAR, 15, 20))
        shallow = quote("5.00", clock())
        desk.quotes.update("SPY", quote("455.00", clock()))
        desk.quotes.update(call.symbol, replace(shallow, bid_size=1))
        for _ in range(3):
            await desk.step()
        assert desk.manager.open_positions() == []
    finally:
        await desk.close()
    sells = [e for e in read_ledger(ledger_path(tmp_path)).events if e.position_id == position.position_id][1:]
    assert [(e.qty, e.actor) for e in sells] == [(1, GUARD_ACTOR)] * 3


async def test_a_halted_desk_keeps_its_brake_the_guard_says_so_once_and_closes_once_resumed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    call = OptionContract.parse("SPY   261125C00450000")
    clock = SimulatedClock(at(REGULAR, 11, 0))
    settings = Settings(strategies=[], risk=RiskSettings())
    board = ConsoleBoard(io.StringIO())
    desk = await open_desk(settings, tmp_path, clock=clock, feed=QuietFeed(), board=board, alert=lambda k, t: None)
    try:
        desk.quotes.update(call.symbol, quote("5.00", clock()))
        await desk.manager.open_position(call, 2, strategy="manual")
        await desk.switch.set(TradingState.HALTED, "test", "operator")
        clock.advance(at(REGULAR, 15, 20))
        desk.quotes.update("SPY", quote("455.00", clock()))
        desk.quotes.update(call.symbol, quote("5.00", clock()))
        with caplog.at_level(logging.WARNING, logger="bot.runtime.expiry_guard"):
            for _ in range(3):
                await desk.step()
        assert len(desk.manager.open_positions()) == 1  # halted: no orders at all, the guard's included
        assert len([r for r in caplog.records if "could not close" in r.getMessage()]) == 1
        await desk.switch.set(TradingState.ACTIVE, "test", "operator")
        await desk.step()
        assert desk.manager.open_positions() == []
    finally:
        await desk.close()
    buys = [e for e in read_ledger(ledger_path(tmp_path)).events if e.side == Side.BUY]
    assert [e.qty for e in buys] == [2]  # the guard never opens nor adds
