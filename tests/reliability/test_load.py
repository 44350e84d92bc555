"""Load on virtual time: 200 open positions, each updated 10 times a second (a new quote, so a new mark, through
the quote cache to the position watcher, which hands the strategy the latest mark once a second) for ten simulated
minutes, all in one trade channel, with the real discord.py client against the fake Discord that enforces
Discord's limits (5 posts and 5 edits per 5 s per channel).

Every minute each position also trades (an add or a trim), so its message has to change. What must hold: zero 429s,
every position message ends in its final state within a flush deadline, the ledger holds every event exactly once,
and the process's peak memory stays under 300 MB. Under looptime the ten minutes take seconds of wall time.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.discord.embeds import position_embed
from bot.options.contracts import Right
from bot.options.position_watcher import PositionWatcher
from bot.options.positions import Position
from bot.options.quotes import Quote
from bot.options.trade_ledger import TradeEvent
from tests.discord.wire import CHANNEL_ID, ON_VIRTUAL_TIME, contract, desk_on_fake, notifier_running, settings
from tests.reliability.checks import assert_nothing_lost, peak_rss_mb, unlimited

POSITIONS = 200
UPDATES_PER_SECOND = 10
MINUTES = 10
TRADE_EVERY = 60.0  # virtual seconds between two trades of every position
MEMORY_LIMIT_MB = 300
STRATEGY = "load"
EDITS_PER_SECOND = 1.0  # 5 per 5 s per channel
# After the last update, every message may still wait for its last state: one edit a second, for each position.
FLUSH_DEADLINE = POSITIONS / EDITS_PER_SECOND + 30.0


class CountingStrategy:
    """Receives every position update the watcher hands out (what the exit rules would look at)."""

    def __init__(self) -> None:
        self.updates: Counter[str] = Counter()
        self.last_mark: dict[str, Decimal] = {}

    async def on_position_update(self, position: Position, mark: Decimal) -> None:
        self.updates[position.position_id] += 1
        self.last_mark[position.position_id] = mark


ALONE = "OPTIONDESK_LOAD_ALONE"


def test_200_positions_updated_10_times_a_second_for_10_minutes() -> None:
    """The load run in a process of its own, so that its peak memory is the desk's, not the whole suite's."""
    run = subprocess.run(
        [sys.executable, "-m", "pytest", f"{__file__}::test_load_run", "-p", "no:cacheprovider", "-s", "-q"],
        env={**os.environ, ALONE: "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    figures = json.loads(next(line for line in run.stdout.splitlines() if line.startswith('{"positions"')))
    print(json.dumps(figures))
    assert figures["http_429"] == 0 and figures["peak_rss_mb"] < MEMORY_LIMIT_MB


@pytest.mark.skipif(ALONE not in os.environ, reason="run in a process of its own by the test above")
@ON_VIRTUAL_TIME
async def test_load_run(monkeypatch: pytest.MonkeyPatch, memory_disk: Path) -> None:
    wall_start = time.perf_counter()
    # Without chart images: drawing ~800 PNGs would make this a benchmark of the chart drawing (bench/charts_bench.py
    # measures that), where it is about Discord's limits, coalescing, the ledger and memory.
    plain = unlimited(settings().replace(discord=settings().discord.replace(charts=False)))
    async with desk_on_fake(monkeypatch, memory_disk, bot_settings=plain) as wire, notifier_running(wire.bot):
        fake, desk, loop = wire.fake, wire.bot.desk, asyncio.get_running_loop()
        manager, quotes = desk.manager, desk.quotes
        contracts = [contract(300 + i, Right.CALL if i % 2 else Right.PUT) for i in range(POSITIONS)]
        # Prices cycle through a few ticks around 2.00, so each update moves the mark. The quotes are built once
        # (undated, so never stale): the test measures the desk, not the making of quotes.
        ladder = [Decimal("2.00") + Decimal("0.01") * step for step in range(-5, 6)]
        ladder_quotes = [Quote(bid=bid, ask=bid + Decimal("0.10"), bid_size=500, ask_size=500) for bid in ladder]
        symbols = [c.symbol for c in contracts]

        def quote_all(tick: int) -> None:
            for i, symbol in enumerate(symbols):
                quotes.update(symbol, ladder_quotes[(tick + i) % len(ladder_quotes)])

        # What each message must show in the end: the position at its last fill, at the mark of that moment.
        final_embeds: dict[str, dict[str, Any]] = {}
        events: list[TradeEvent] = []

        async def remember_final(event: TradeEvent, position: Position) -> None:
            events.append(event)
            view = desk.notifier.view(position, event.event_id)
            final_embeds[position.position_id] = position_embed(view).to_dict()  # type: ignore[assignment]

        manager.subscribe(remember_final)
        strategy = CountingStrategy()
        # The strategies' side as the bot runs it: marks throttled to one per position per second, always the latest.
        throttle = wire.bot.settings.watcher.throttle_seconds
        watcher = PositionWatcher(manager, quotes, {STRATEGY: strategy}, interval=throttle, clock=loop.time)
        watching = asyncio.create_task(watcher.run(STRATEGY))

        # Arrange: 200 positions opened at once (their ledger lines share fsyncs).
        quote_all(0)
        opened = await asyncio.gather(*(manager.open_position(c, 10, strategy=STRATEGY) for c in contracts))
        ids = [p.position_id for p in opened]

        # Act: ten minutes of updates, ten a second for every position, and a trade of each every 30 s.
        ticks = int(MINUTES * 60 * UPDATES_PER_SECOND)
        trades_every = int(TRADE_EVERY * UPDATES_PER_SECOND)
        started = loop.time()
        for tick in range(1, ticks + 1):
            await asyncio.sleep(started + tick / UPDATES_PER_SECOND - loop.time())
            quote_all(tick)
            if tick % trades_every == 0:
                rounds = tick // trades_every
                await asyncio.gather(*(manager.add(pid, 1) if rounds % 2 else manager.trim(pid, qty=1) for pid in ids))
        last_update = loop.time()

        def shows_final(pid: str) -> bool:
            posted = wire.bot.message_map.get(pid)
            message = fake.messages.get(posted.message_id) if posted and posted.message_id else None
            return message is not None and message.embeds == [final_embeds[pid]]

        def all_final() -> bool:
            return all(shows_final(pid) for pid in ids)

        await fake.wait_for(all_final, FLUSH_DEADLINE, "every position message in its final state")
        flushed_after = loop.time() - last_update
        watching.cancel()
        await asyncio.gather(watching, return_exceptions=True)
        rss_mb = peak_rss_mb()

        # Assert: the strategy heard of every position once per throttle interval, and ends on the latest mark.
        seconds = ticks / UPDATES_PER_SECOND
        assert all(seconds / throttle - 2 <= strategy.updates[pid] <= seconds / throttle + 2 for pid in ids)
        assert all(strategy.last_mark[pid] == quotes.get(manager.get(pid).contract.symbol).mark for pid in ids)  # type: ignore[union-attr]
        # No request was refused for its rate.
        assert fake.rate_limited == 0 and not [r for r in fake.requests if r.status == 429]
        assert flushed_after <= FLUSH_DEADLINE
        # One message per position, each in its final state; nothing else was posted.
        assert len(wire.position_messages()) == POSITIONS
        assert all(len(wire.messages_of(pid)) == 1 for pid in ids)
        assert {m.channel_id for m in wire.position_messages()} == {CHANNEL_ID}
        # Coalesced: far fewer edits than position changes, none beyond the limit.
        changes = len(events)
        assert changes == POSITIONS * (1 + ticks // trades_every)
        assert len(fake.requests_of("edit")) < changes / 2
        # Nothing lost: every event in the ledger exactly once, replaying to the positions in memory.
        ledger_events = assert_nothing_lost(wire.storage, manager.all_positions())
        assert sorted(e.event_id for e in ledger_events) == sorted(e.event_id for e in events)
        assert rss_mb < MEMORY_LIMIT_MB

        figures = {
            "positions": POSITIONS,
            "updates_per_second": UPDATES_PER_SECOND,
            "minutes": MINUTES,
            "quote_updates": POSITIONS * ticks,
            "strategy_updates": sum(strategy.updates.values()),
            "events": changes,
            "posts": len(fake.requests_of("create")),
            "edits": len(fake.requests_of("edit")),
            "http_429": fake.rate_limited,
            "flushed_after_s": round(flushed_after, 1),
            "peak_rss_mb": round(rss_mb, 1),
            "wall_s": round(time.perf_counter() - wall_start, 1),
        }
        print(json.dumps(figures))
