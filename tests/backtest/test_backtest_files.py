"""A backtest holds its state store's writes and its message map until the close (nothing waits for them while it
runs): at the end both hold what a desk writing them as it went would."""

from __future__ import annotations

import json
import sqlite3
from datetime import date
from pathlib import Path

from bot.options.trade_ledger import read_ledger
from bot.paths import ledger_path
from bot.runtime.backtest import run_backtest
from bot.runtime.message_map import MESSAGE_FILE
from bot.runtime.state_file import STATE_FILE
from bot.runtime.state_store import OPEN_ORDER_STATES
from bot.settings import Settings

SEED, WEDNESDAY = 5, date(2026, 11, 25)  # a day that opens, adds, trims and closes (tests/backtest)


async def test_the_store_and_the_message_map_are_written_at_the_close(tmp_path: Path) -> None:
    result = await run_backtest(Settings(), tmp_path, WEDNESDAY, WEDNESDAY, seed=SEED)

    events = read_ledger(ledger_path(tmp_path)).events
    assert result.fills == events and events
    with sqlite3.connect(tmp_path / STATE_FILE) as db:
        orders = dict(db.execute("SELECT order_id, status FROM orders").fetchall())
        highs = db.execute("SELECT COUNT(*) FROM exit_highs").fetchone()[0]
    # Every order behind a fill is there, and ended: its end came after its intent, as each was asked for.
    assert {e.order_id for e in events} <= set(orders)
    assert not [status for status in orders.values() if status in OPEN_ORDER_STATES]
    assert highs > 0
    messages = json.loads((tmp_path / MESSAGE_FILE).read_text())["messages"]
    assert set(messages) == {e.position_id for e in events}
