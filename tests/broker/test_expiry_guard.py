"""The expiry-day guard on the desk's clock (simulated here: no wall time): from its time (15:15 New York, 12:15 on a
13:00 early close) a long position expiring today in the money is closed through the order manager, or the admins
are told once, or nothing happens; out of the money, or expiring another day, it is left alone."""

from __future__ import annotations

import asyncio
import io
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from bot.options.clock import SimulatedClock
from bot.options.contracts import OptionContract, Right
from bot.options.market_hours import MARKET_TZ
from bot.options.positions import Source
from bot.options.quotes import Quote
from bot.options.trade_ledger import read_ledger
from bot.paths import ledger_path
from bot.runtime.desk import Desk, open_desk
from bot.runtime.expiry_guard import GUARD_ACTOR, guard_moment
from bot.runtime.message_board import ConsoleBoard
from bot.settings import RiskSettings, Settings, SettingsError, load_settings
from tests.core.factories import QuietFeed

REGULAR = date(2026, 11, 25)  # a Wednesday, closing at 16:00
EARLY = date(2026, 11, 27)  # the day after Thanksgiving, closing at 13:00


def at(day: date, hh: int, mm: int) -> datetime:
    return datetime.combine(day, time(hh, mm), tzinfo=MARKET_TZ)


def quote(price: str, ts: datetime) -> Quote:
    value = Decimal(price)
    return Quote(bid=value, ask=value + Decimal("0.05"), last=value, bid_size=9, ask_size=9, ts=ts)


async def desk_holding(
    storage: Path, clock: SimulatedClock, contracts: list[OptionContract], mode: str, told: list[str]
) -> Desk:
    settings = Settings(strategies=[], risk=RiskSettings(expiry_guard=mode))
    desk = await open_desk(
        settings,
        storage,
        clock=clock,
        feed=QuietFeed(),
        board=ConsoleBoard(io.StringIO()),
        alert=lambda kind, text: told.append(text),
    )
    for contract in contracts:
        desk.quotes.update(contract.symbol, quote("5.00", clock()))
        await desk.manager.open_position(contract, 2, strategy="manual")
    return desk


def spy_at(desk: Desk, price: str) -> None:
    now = desk.clock()
    desk.quotes.update("SPY", quote(price, now))
    for position in desk.manager.open_positions():  # fresh marks, as the feed would bring them
        desk.quotes.update(position.contract.symbol, quote("5.00", now))


@pytest.mark.parametrize(("day", "guard"), [(REGULAR, time(15, 15)), (EARLY, time(12, 15))])
async def test_close_mode_closes_an_in_the_money_long_at_its_time(tmp_path: Path, day: date, guard: time) -> None:
    itm = OptionContract("SPY", day, Right.CALL, Decimal(450))
    otm = OptionContract("SPY", day, Right.CALL, Decimal(470))
    later = OptionContract("SPY", day + timedelta(days=7), Right.CALL, Decimal(450))
    clock = SimulatedClock(at(day, 11, 0))
    desk = await desk_holding(tmp_path, clock, [itm, otm, later], "close", [])
    try:
        assert guard_moment(day, time(15, 15)) == at(day, guard.hour, guard.minute)
        clock.advance(at(day, guard.hour, guard.minute) - timedelta(seconds=1))
        spy_at(desk, "455.00")
        await desk.step()
        assert len(desk.manager.open_positions()) == 3  # not before its time

        clock.advance(at(day, guard.hour, guard.minute))
        spy_at(desk, "455.00")
        await desk.step()
        assert {p.contract for p in desk.manager.open_positions()} == {otm, later}
        await desk.step()  # once
    finally:
        await desk.close()
    *_, closing = read_ledger(ledger_path(tmp_path)).events
    assert (closing.symbol, closing.kind, closing.qty, closing.position_qty) == (itm.symbol, "close", 2, 0)
    assert (closing.source, closing.actor, closing.price) == (Source.STRATEGY, GUARD_ACTOR, Decimal("5.00"))
    assert closing.ts == at(day, guard.hour, guard.minute)


async def test_alert_mode_tells_the_admins_once_and_closes_nothing(tmp_path: Path) -> None:
    put = OptionContract("SPY", REGULAR, Right.PUT, Decimal(460))
    clock = SimulatedClock(at(REGULAR, 11, 0))
    told: list[str] = []
    desk = await desk_holding(tmp_path, clock, [put], "alert", told)
    try:
        clock.advance(at(REGULAR, 15, 16))
        spy_at(desk, "455.00")
        for _ in range(3):
            await desk.step()
        assert len(desk.manager.open_positions()) == 1
    finally:
        await desk.close()
    (text,) = told
    assert (
        "SPY 2026-11-25 460P" in text and "4.975 in the money" in text
    )  # on the mid, 455.025 and "exercised after the close" in text


async def test_off_mode_does_nothing(tmp_path: Path) -> None:
    call = OptionContract("SPY", REGULAR, Right.CALL, Decimal(450))
    clock = SimulatedClock(at(REGULAR, 11, 0))
    told: list[str] = []
    desk = await desk_holding(tmp_path, clock, [call], "off", told)
    try:
        clock.advance(at(REGULAR, 15, 30))
        spy_at(desk, "455.00")
        await desk.step()
        assert len(desk.manager.open_positions()) == 1 and told == []
    finally:
        await desk.close()


async def test_a_live_desks_worker_sleeps_on_the_desk_clock_until_the_guard_time(tmp_path: Path) -> None:
    call = OptionContract("SPY", EARLY, Right.CALL, Decimal(450))
    clock = SimulatedClock(at(EARLY, 10, 0))
    desk = await desk_holding(tmp_path, clock, [call], "close", [])
    assert desk.guard is not None
    worker = asyncio.create_task(desk.guard.run())
    try:
        spy_at(desk, "440.00")  # out of the money at its time: left alone
        clock.advance(at(EARLY, 12, 15))
        for _ in range(20):
            await asyncio.sleep(0)
        assert desk.manager.open_positions()
        clock.advance(at(EARLY, 12, 40))
        spy_at(desk, "452.00")  # in the money now: closed at the next quote
        for _ in range(1000):  # the close records its order in the state store's thread: wait for it, not a turn
            if not desk.manager.open_positions():
                break
            await asyncio.sleep(0.01)
        assert desk.manager.open_positions() == []
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
        await desk.close()
    *_, closing = read_ledger(ledger_path(tmp_path)).events
    assert closing.actor == GUARD_ACTOR and closing.ts == at(EARLY, 12, 40)


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        ("OPTIONDESK_RISK__EXPIRY_GUARD", "sometimes", "bad setting risk.expiry_guard"),
        ("OPTIONDESK_RISK__EXPIRY_GUARD_TIME", "16:30", "after 09:30 and before 16:00"),
        ("OPTIONDESK_RISK__EXPIRY_GUARD_TIME", "9:30", 'after 09:30 and before 16:00, such as "15:15", not 09:30'),
        ("OPTIONDESK_RISK__EXPIRY_GUARD_TIME", "quarter past three", 'such as "15:00" \\(HH:MM\\), not \'quarter'),
    ],
)
def test_bad_guard_settings_are_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str, value: str, said: str
) -> None:
    monkeypatch.setenv("OPTIONDESK_CONFIG_FILE", str(tmp_path / "none.toml"))
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=said):
        load_settings()


@pytest.mark.parametrize(("value", "guard"), [("9:45", time(9, 45)), ("15:15:30", time(15, 15, 30))])
def test_a_guard_time_as_people_write_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, value: str, guard: time
) -> None:
    monkeypatch.setenv("OPTIONDESK_CONFIG_FILE", str(tmp_path / "none.toml"))
    monkeypatch.setenv("OPTIONDESK_RISK__EXPIRY_GUARD_TIME", value)
    assert load_settings().risk.expiry_guard_time == guard
