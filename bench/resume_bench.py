"""Resume benchmark: the bot's start-up on a 100,000-event ledger (rebuild and verify the positions, bring the
state store in line) against merely parsing that ledger line by line with the json module.

`resume_s` is a restart (the state store holds the checkpoint of the last start-up: the verified part of the
ledger is checked by its digest, the kept positions and newer lines replayed); `resume_empty_store_s` is a
first start, which replays and verifies every line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.options.contracts import OptionContract, Right
from bot.options.market_hours import MARKET_TZ, next_trading_day, session_open
from bot.options.orders import Side
from bot.options.positions import Position, Source
from bot.options.trade_ledger import TradeEvent
from bot.paths import ledger_path
from bot.runtime.resume import STATE_FILE, start_up

EVENTS = 100_000
DAYS = 60
CENT = Decimal("0.01")


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def write_ledger(path: Path, count: int, seed: int = 1) -> datetime:
    """A realistic ledger: positions over `DAYS` trading days, each opened, added to, trimmed and closed
    (the last day's positions partly left open). Returns the time of the last event."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    day = date(2026, 8, 3)
    per_day = count // DAYS
    written = 0
    ts = session_open(day)
    with path.open("w") as out:
        for index in range(DAYS):
            ts = session_open(day).astimezone(UTC)
            day_written = 0
            while day_written < per_day and written < count:
                contract = OptionContract(
                    rng.choice(("SPY", "QQQ", "IWM")),
                    next_trading_day(day),
                    rng.choice((Right.CALL, Right.PUT)),
                    Decimal(rng.randint(400, 600)),
                )
                position = Position(_id("pos"), contract, rng.choice(("spy-orb", "qqq-meanrev")))
                price = Decimal(rng.randint(50, 900)) / 100
                steps = [(Side.BUY, rng.randint(2, 10)), (Side.BUY, rng.randint(1, 5))]
                last_day = index == DAYS - 1
                for side, qty in steps:
                    position = _fill(out, position, side, qty, price, ts)
                    ts += timedelta(seconds=rng.randint(1, 20))
                    price = max(CENT, price + Decimal(rng.randint(-30, 30)) / 100)
                while position.qty and not (last_day and rng.random() < 0.3):
                    qty = min(position.qty, rng.randint(1, 4))
                    position = _fill(out, position, Side.SELL, qty, price, ts)
                    ts += timedelta(seconds=rng.randint(1, 20))
                    price = max(CENT, price + Decimal(rng.randint(-30, 30)) / 100)
                    if last_day and rng.random() < 0.3:
                        break
                day_written += len(position.actions)
                written += len(position.actions)
            day = next_trading_day(day)
    return ts


def _fill(out: object, position: Position, side: Side, qty: int, price: Decimal, ts: datetime) -> Position:
    after, action = position.with_fill(
        side=side,
        qty=qty,
        price=price,
        fees=Decimal("0.65") * qty,
        ts=ts,
        fill_id=_id("fill"),
        order_id=_id("ord"),
        source=Source.STRATEGY,
    )
    out.write(TradeEvent.record(_id("evt"), after, action).to_line().decode())  # type: ignore[attr-defined]
    return after


def parse_with_json(path: Path) -> int:
    count = 0
    with path.open("rb") as file:
        for line in file:
            json.loads(line)
            count += 1
    return count


async def resume_once(storage: Path, now: datetime) -> int:
    """One start-up; returns how many positions it rebuilt."""
    ledger, store, report = await start_up(storage, now=now, zone=MARKET_TZ)
    try:
        if report.problems:
            raise SystemExit(f"the generated ledger does not verify: {report.problems[0]}")
        return len(report.positions)
    finally:
        await store.close()
        ledger.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=EVENTS)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        storage = Path(temp)
        path = ledger_path(storage)
        last = write_ledger(path, args.events)
        now = last + timedelta(minutes=5)
        lines = parse_with_json(path)
        resume_times, parse_times, fresh_times = [], [], []
        for _ in range(args.rounds):
            (storage / STATE_FILE).unlink(missing_ok=True)
            started = time.perf_counter()
            positions = asyncio.run(resume_once(storage, now))
            fresh_times.append(time.perf_counter() - started)  # an empty store: everything written
            started = time.perf_counter()
            parse_with_json(path)
            parse_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            rebuilt = asyncio.run(resume_once(storage, now))
            resume_times.append(time.perf_counter() - started)  # a restart: the store and its checkpoint there
        resume_s, parse_s = statistics.median(resume_times), statistics.median(parse_times)
        result = {
            "resume_s": round(resume_s, 4),
            "parse_s": round(parse_s, 4),
            "resume_vs_parse": round(resume_s / parse_s, 3),
            "resume_empty_store_s": round(statistics.median(fresh_times), 4),
            "events": lines,
            "positions_first_start": positions,
            "positions_restart": rebuilt,
            "ledger_mb": round(path.stat().st_size / 1e6, 1),
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
