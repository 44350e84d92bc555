"""Small builders shared by the core tests."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from bot.options.quotes import Quote

T0 = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


def quote(bid: str | None = None, ask: str | None = None, last: str | None = None, size: int | None = None) -> Quote:
    def dec(value: str | None) -> Decimal | None:
        return None if value is None else Decimal(value)

    return Quote(bid=dec(bid), ask=dec(ask), last=dec(last), bid_size=size, ask_size=size, ts=T0)


def ledger_line(**changes: Any) -> dict[str, Any]:
    """A valid trade ledger line as JSON values (an opening buy of 10 SPY calls), with `changes`."""
    line = {
        "v": 1, "event_id": "evt-1", "ts": "2026-11-25T15:00:00Z", "kind": "open", "position_id": "pos-1",
        "order_id": "ord-1", "fill_id": "fill-1", "strategy": "orb", "source": "strategy", "actor": None,
        "symbol": "SPY   261127C00450000", "underlying": "SPY", "expiry": "2026-11-27", "right": "C", "strike": "450",
        "side": "buy", "qty": 10, "price": "1.10", "multiplier": 100, "fees": "0", "position_qty": 10,
        "avg_entry": "1.100000", "realized_pnl": "0", "realized_pnl_total": "0",
    }  # fmt: skip
    return {**line, **changes}


class QuietFeed:
    """A feed that quotes nothing (the test sets the quotes itself): a desk's feed where none is wanted."""

    def subscribe(self, symbols: object) -> None:
        pass

    async def run(self, cache: object) -> None:
        await asyncio.Event().wait()


BREAKOUT_CALL = "SPY   261127C00601000"


def record_a_breakout(path: Path) -> Path:
    """Recorded quotes (the replay CSV format) of 2026-11-25's first half hour: SPY's opening range is
    600.00-600.40 from 09:30 to 09:44, and at 09:50 it breaks out at 601.00; BREAKOUT_CALL is quoted 2.00/2.10."""
    rows = ["ts,symbol,bid,ask,last,bid_size,ask_size"]
    for minute in range(30):
        ts = f"2026-11-25T09:{30 + minute:02d}:00-05:00"
        spot = "601.00" if minute >= 20 else ("600.40" if minute % 2 else "600.00")
        rows.append(f"{ts},SPY,{spot},{spot},{spot},100,100")
        rows.append(f"{ts},{BREAKOUT_CALL},2.00,2.10,2.05,20,20")
    path.write_text("\n".join(rows) + "\n")
    return path
