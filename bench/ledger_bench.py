"""Trade-ledger benchmark: median `await ledger.append(event)` latency against a raw os.write + os.fsync of the
same bytes, and the throughput of 100 concurrent appenders (group commit) against sequential appends.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
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
from bot.options.orders import Side
from bot.options.positions import Position, Source
from bot.options.trade_ledger import TradeEvent, TradeLedger

CONCURRENT_APPENDERS = 100


def _new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def build_events(count: int) -> list[TradeEvent]:
    """`count` opening fills, each on its own position, with ids unique across runs."""
    contract = OptionContract("SPY", date.today() + timedelta(days=7), Right.CALL, Decimal(600))
    now = datetime.now(UTC)
    events: list[TradeEvent] = []
    for _ in range(count):
        position = Position(_new_id("pos"), contract, "bench")
        after, action = position.with_fill(
            side=Side.BUY,
            qty=10,
            price=Decimal("1.20"),
            fees=Decimal("6.50"),
            ts=now,
            fill_id=_new_id("fill"),
            order_id=_new_id("ord"),
            source=Source.MANUAL,
            actor="bench",
        )
        events.append(TradeEvent.record(_new_id("evt"), after, action))
    return events


def _raw_append(fd: int, line: bytes) -> int:
    start = time.perf_counter_ns()
    os.write(fd, line)
    os.fsync(fd)
    return time.perf_counter_ns() - start


async def _ledger_append(ledger: TradeLedger, event: TradeEvent) -> int:
    start = time.perf_counter_ns()
    await ledger.append(event)
    return time.perf_counter_ns() - start


async def measure_latency(directory: Path, blocks: int, block_size: int, warmup: int) -> tuple[float, float]:
    """Median ns of one idle-ledger append and of one raw write+fsync of the same line, in alternating blocks.

    Every ledger sample appends its own prebuilt event (a ledger holds each event id once), so each one
    pays its own serialization; the raw side writes the bytes of that same event.
    """
    events = build_events(warmup + blocks * block_size)
    lines = [event.to_line() for event in events]
    ledger = TradeLedger.open(directory / "latency_ledger.jsonl")
    raw_fd = os.open(directory / "latency_raw.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    ours: list[int] = []
    raw: list[int] = []
    try:
        for index in range(warmup):
            await _ledger_append(ledger, events[index])
            _raw_append(raw_fd, lines[index])
        for block in range(blocks):
            chunk = range(warmup + block * block_size, warmup + (block + 1) * block_size)
            # Swap which side goes first each block so neither one always starts a block.
            for side in ("ours", "raw") if block % 2 == 0 else ("raw", "ours"):
                if side == "ours":
                    ours.extend([await _ledger_append(ledger, events[index]) for index in chunk])
                else:
                    raw.extend([_raw_append(raw_fd, lines[index]) for index in chunk])
    finally:
        ledger.close()
        os.close(raw_fd)
    return statistics.median(ours), statistics.median(raw)


async def _sequential(path: Path, events: list[TradeEvent]) -> float:
    ledger = TradeLedger.open(path)
    try:
        start = time.perf_counter()
        for event in events:
            await ledger.append(event)
        return time.perf_counter() - start
    finally:
        ledger.close()


async def _concurrent(path: Path, events: list[TradeEvent], appenders: int) -> float:
    ledger = TradeLedger.open(path)

    async def appender(share: list[TradeEvent]) -> None:
        for event in share:
            await ledger.append(event)

    shares = [events[i::appenders] for i in range(appenders)]
    try:
        start = time.perf_counter()
        await asyncio.gather(*(appender(share) for share in shares))
        return time.perf_counter() - start
    finally:
        ledger.close()


async def measure_throughput(directory: Path, per_appender: int, rounds: int) -> tuple[float, float]:
    """Appends per second for one appender at a time and for 100 concurrent ones, same total, alternating rounds."""
    total = CONCURRENT_APPENDERS * per_appender
    sequential_s = 0.0
    concurrent_s = 0.0
    for number in range(rounds):
        sequential_events = build_events(total)
        concurrent_events = build_events(total)
        sequential_path = directory / f"sequential_{number}.jsonl"
        concurrent_path = directory / f"concurrent_{number}.jsonl"
        if number % 2 == 0:
            sequential_s += await _sequential(sequential_path, sequential_events)
            concurrent_s += await _concurrent(concurrent_path, concurrent_events, CONCURRENT_APPENDERS)
        else:
            concurrent_s += await _concurrent(concurrent_path, concurrent_events, CONCURRENT_APPENDERS)
            sequential_s += await _sequential(sequential_path, sequential_events)
    return total * rounds / sequential_s, total * rounds / concurrent_s


async def run(quick: bool) -> dict[str, float]:
    blocks, block_size, warmup = (30, 10, 20) if quick else (100, 10, 50)
    per_appender, rounds = (5, 2) if quick else (10, 4)
    with tempfile.TemporaryDirectory(prefix="ledger_bench_") as tmp:
        directory = Path(tmp)
        append_ns, raw_ns = await measure_latency(directory, blocks, block_size, warmup)
        sequential_rate, concurrent_rate = await measure_throughput(directory, per_appender, rounds)
    return {
        "append_median_us": round(append_ns / 1000, 2),
        "raw_fsync_median_us": round(raw_ns / 1000, 2),
        "append_vs_raw_fsync": round(append_ns / raw_ns, 3),
        "latency_samples_each": blocks * block_size,
        "sequential_appends_per_s": round(sequential_rate, 1),
        "concurrent_appends_per_s": round(concurrent_rate, 1),
        "concurrent_appenders": CONCURRENT_APPENDERS,
        "throughput_events_each": CONCURRENT_APPENDERS * per_appender * rounds,
        "concurrent_speedup": round(concurrent_rate / sequential_rate, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer samples, for a smoke run")
    args = parser.parse_args()
    result = asyncio.run(run(args.quick))
    print(json.dumps(result, separators=(",", ":")))


if __name__ == "__main__":
    main()
