"""Analytics benchmark: the daily report over a 1,000,000-event ledger against pandas and DuckDB.

The ledger is generated once under the system temp directory (realistic lines: positions of several
strategies interleaved through each session, adds, partial fills, trims, some held overnight) and reused
while it is valid. Every run computes the report from the JSONL file; pandas (`read_json(lines=True)` +
groupby) and DuckDB (`read_json` + GROUP BY) compute the per-day realized P&L in the same run, and all
three must agree. Last line: {"report_s", "vs_pandas", "vs_duckdb"} (speedups: their time / ours).
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.analytics.ledger_scan import scan_ledger
from bot.options.contracts import OptionContract, Right
from bot.options.market_hours import MARKET_TZ, next_trading_day, session_open
from bot.options.orders import Side
from bot.options.positions import Position, Source
from bot.options.trade_ledger import TradeEvent

EVENTS = 1_000_000
ROUNDS = 3  # each side timed this many times, interleaved; the median counts
EVENTS_PER_DAY = 2_000
GENERATOR_VERSION = 1
STRATEGIES = {"spy-orb": "SPY", "spy-fade": "SPY", "qqq-meanrev": "QQQ", "iwm-orb": "IWM", "tsla-momo": "TSLA"}
CENT = Decimal("0.01")
FEE = Decimal("0.65")
T = TypeVar("T")


def _fills_of_one_position(rng: random.Random, start: datetime, close_by: datetime) -> list[tuple[datetime, Side, int]]:
    """When and what one position trades: an open, maybe adds (some split into partial fills), trims, a close."""
    plan: list[tuple[Side, int]] = [(Side.BUY, rng.randint(2, 10))]
    plan += [(Side.BUY, rng.randint(1, 5)) for _ in range(rng.choice((0, 0, 1, 2)))]
    held = sum(qty for _, qty in plan)
    while held:
        qty = held if rng.random() < 0.4 else rng.randint(1, held)
        plan.append((Side.SELL, qty))
        held -= qty
    fills: list[tuple[datetime, Side, int]] = []
    span = (close_by - start).total_seconds()
    stamps = sorted(rng.uniform(0, span) for _ in range(len(plan)))
    for at, (side, qty) in zip(stamps, plan, strict=True):
        ts = start + timedelta(seconds=round(at, 3))
        parts = [qty] if qty == 1 or rng.random() < 0.8 else [qty // 2, qty - qty // 2]  # a partial fill
        fills += [(ts + timedelta(milliseconds=i * 40), side, part) for i, part in enumerate(parts)]
    return fills


def write_ledger(path: Path, count: int = EVENTS, seed: int = 7) -> None:
    """Fills in time order across positions, each line a real TradeEvent; plain buffered writes."""
    rng = random.Random(seed)
    day = date(2024, 1, 2)
    queue: list[tuple[datetime, int, Side, int]] = []  # (ts, position number, side, qty)
    positions: dict[int, Position] = {}
    prices: dict[int, Decimal] = {}
    number = written = 0
    with path.open("w", buffering=1 << 20) as out:
        while written < count:
            opened = session_open(day).astimezone(UTC)
            closing = opened + timedelta(hours=6, minutes=25)
            while len(queue) < EVENTS_PER_DAY:  # tops up each day's pipeline of planned fills
                number += 1
                strategy = rng.choice(list(STRATEGIES))
                expiry = next_trading_day(next_trading_day(day))
                contract = OptionContract(
                    STRATEGIES[strategy], expiry, rng.choice((Right.CALL, Right.PUT)), Decimal(rng.randint(100, 600))
                )
                positions[number] = Position(f"pos-{uuid.uuid4().hex}", contract, strategy)
                prices[number] = Decimal(rng.randint(50, 900)) / 100
                start = opened + timedelta(seconds=rng.uniform(0, 20_000))
                # About one in twenty positions is held overnight and closed the next session.
                close_by = closing + timedelta(days=1) if rng.random() < 0.05 else closing
                for ts, side, qty in _fills_of_one_position(rng, start, close_by):
                    heapq.heappush(queue, (ts, number, side, qty))
            tomorrow = session_open(next_trading_day(day)).astimezone(UTC)
            while queue and queue[0][0] < tomorrow and written < count:
                ts, key, side, qty = heapq.heappop(queue)
                position = positions[key]
                price = max(CENT, prices[key] + Decimal(rng.randint(-25, 30)) / 100)
                prices[key] = price
                position, action = position.with_fill(
                    side=side,
                    qty=qty,
                    price=price,
                    fees=FEE * qty,
                    ts=ts,
                    fill_id=f"fill-{uuid.uuid4().hex}",
                    order_id=f"ord-{uuid.uuid4().hex}",
                    source=Source.STRATEGY,
                )
                positions[key] = position
                if not position.is_open:
                    del positions[key], prices[key]
                out.write(TradeEvent.record(f"evt-{uuid.uuid4().hex}", position, action).to_line().decode())
                written += 1
            day = next_trading_day(day)


def cached_ledger(count: int) -> Path:
    """The generated ledger under the temp directory, made again if it is missing or not what it should be."""
    path = Path(tempfile.gettempdir()) / f"optiondesk-analytics-bench-{count}.jsonl"
    meta = path.with_suffix(".meta.json")
    expected = {"version": GENERATOR_VERSION, "events": count}
    if path.exists() and meta.exists():
        known = json.loads(meta.read_text())
        if {k: known.get(k) for k in expected} == expected and known.get("bytes") == path.stat().st_size:
            return path
    started = time.perf_counter()
    partial = path.with_suffix(".partial")
    write_ledger(partial, count)
    partial.replace(path)
    meta.write_text(json.dumps({**expected, "bytes": path.stat().st_size}))
    print(f"generated {count:,} events in {time.perf_counter() - started:.0f} s: {path}", file=sys.stderr)
    return path


def ours(path: Path) -> dict[date, Decimal]:
    scan = scan_ledger(path, MARKET_TZ)
    return {d.day: d.totals.realized_pnl for d in scan.reports}


def with_pandas(path: Path) -> dict[date, float]:
    import pandas as pd

    frame = pd.read_json(path, lines=True)
    day = pd.to_datetime(frame["ts"], utc=True, format="ISO8601").dt.tz_convert(MARKET_TZ.key).dt.date
    return frame["realized_pnl"].astype(float).groupby(day).sum().to_dict()


def with_duckdb(path: Path) -> dict[date, float]:
    import duckdb

    rows = duckdb.connect().execute(
        "SELECT CAST(timezone(?, CAST(ts AS TIMESTAMPTZ)) AS DATE) AS day, SUM(CAST(realized_pnl AS DOUBLE)) "
        "FROM read_json(?, format = 'newline_delimited') GROUP BY day",
        [MARKET_TZ.key, str(path)],
    )
    return dict(rows.fetchall())


def warm_page_cache(path: Path) -> None:
    """Read the file once, so that no side pays for reading it from disk where the others read it from memory."""
    with path.open("rb") as file:
        while file.read(1 << 24):
            pass


def timed(run: Callable[[Path], dict[date, T]], path: Path) -> tuple[float, dict[date, T]]:
    started = time.perf_counter()
    result = run(path)
    return time.perf_counter() - started, result


def agree(reference: dict[date, Decimal], other: dict[date, float], name: str) -> None:
    if set(other) != set(reference):
        raise SystemExit(f"{name} found other days than the report: {sorted(set(other) ^ set(reference))[:5]}")
    worst = max(abs(Decimal(repr(other[day])) - pnl) for day, pnl in reference.items())
    if worst > Decimal("0.000001"):  # their sums are floats; ours are exact
        raise SystemExit(f"{name} disagrees with the report on a day's realized P&L by {worst}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=EVENTS, help="ledger size (default 1,000,000)")
    args = parser.parse_args()
    path = cached_ledger(args.events)
    warm_page_cache(path)
    # Interleaved rounds, each side's median: no side gets a cold file or a quieter moment of the machine alone.
    times: dict[str, list[float]] = {"report": [], "pandas": [], "duckdb": []}
    for _ in range(ROUNDS):
        seconds, report = timed(ours, path)
        times["report"].append(seconds)
        seconds, by_pandas = timed(with_pandas, path)
        times["pandas"].append(seconds)
        seconds, by_duckdb = timed(with_duckdb, path)
        times["duckdb"].append(seconds)
    report_s, pandas_s, duckdb_s = (statistics.median(times[name]) for name in ("report", "pandas", "duckdb"))
    agree(report, by_pandas, "pandas")
    agree(report, by_duckdb, "DuckDB")
    print(
        f"{args.events:,} events, {len(report)} days: report {report_s:.2f} s, pandas {pandas_s:.2f} s, "
        f"DuckDB {duckdb_s:.2f} s; all three agree on every day's realized P&L"
    )
    figures = {"report_s": report_s, "vs_pandas": pandas_s / report_s, "vs_duckdb": duckdb_s / report_s}
    print(json.dumps({name: round(value, 3) for name, value in figures.items()}))


if __name__ == "__main__":
    main()
