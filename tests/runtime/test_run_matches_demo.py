"""`run` at top speed trades as the demo does: one desk, one clock. Each tick of the simulated market is handled to
the end before the next, as the demo steps it, and the watcher's throttle, the time stop and the exits follow the
market's clock, so the same seed and day give the same trades at any speed (virtual time spares the real wait)."""

from __future__ import annotations

import asyncio
import io
from datetime import date, timedelta
from pathlib import Path

import pytest

from bot.options.market_hours import session_close, session_open
from bot.options.trade_ledger import TradeEvent, read_ledger
from bot.paths import ledger_path
from bot.runtime import offline
from bot.runtime.demo import run_demo_day
from bot.runtime.desk import Desk
from bot.runtime.message_board import ConsoleBoard
from bot.settings import Settings

DAY = date(2026, 11, 25)
SEED = 5
SPEED = 3000.0
TICK = timedelta(seconds=30)


def fills(storage: Path) -> list[TradeEvent]:
    return [e for e in read_ledger(ledger_path(storage)).events if e.ts < session_close(DAY)]


def what(events: list[TradeEvent]) -> list[tuple[str, str, str, int]]:
    return [(e.kind.value, e.symbol, e.side.value, e.qty) for e in events]


@pytest.mark.looptime
async def test_run_at_top_speed_trades_the_demos_day(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    await run_demo_day(Settings(), tmp_path / "demo", seed=SEED, day=DAY, out=io.StringIO())
    monkeypatch.setattr(offline, "market_start", lambda storage: session_open(DAY))
    monkeypatch.setattr(offline, "ConsoleBoard", lambda: ConsoleBoard(io.StringIO()))

    opened: list[Desk] = []
    open_desk = offline.open_desk

    async def opening(*args: object, **kwargs: object) -> Desk:
        desk = await open_desk(*args, **kwargs)  # type: ignore[arg-type]
        opened.append(desk)
        return desk

    monkeypatch.setattr(offline, "open_desk", opening)
    running = asyncio.create_task(offline.run_offline(Settings(), tmp_path / "run", speed=SPEED, seed=SEED))
    # Stores work on threads, which virtual time does not wait for: follow the desk's own clock to the close.
    while not opened or opened[0].clock() < session_close(DAY):
        assert not running.done(), running.exception()
        await asyncio.sleep(0.001)
    assert not running.done(), running.exception()
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)

    demo, run = fills(tmp_path / "demo"), fills(tmp_path / "run")
    assert demo, "the demo day traded nothing: pick another seed"
    # A throttle on wall time made exits late by minutes at this speed: stops taken far past their level.
    assert [(e.ts, e.kind, e.symbol, e.side, e.qty, e.price) for e in run] == [
        (e.ts, e.kind, e.symbol, e.side, e.qty, e.price) for e in demo
    ]
