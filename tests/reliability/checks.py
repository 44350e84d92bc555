"""What the reliability tests build and end with: a desk without Discord; the ledger verifying, each event in it
exactly once, and the positions in memory the ones the ledger replays to."""

from __future__ import annotations

import io
import resource
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from bot.options.ledger_verify import verify_events
from bot.options.positions import Position
from bot.options.trade_ledger import TradeEvent, read_ledger
from bot.paths import ledger_path
from bot.runtime.desk import Desk, open_desk
from bot.runtime.message_board import ConsoleBoard
from bot.settings import RiskSettings, Settings
from tests.core.factories import T0, QuietFeed


async def open_offline_desk(storage: Path) -> Desk:
    """The desk as the offline run assembles it (no strategies), its messages printed nowhere."""
    settings = Settings(strategies=[])
    return await open_desk(settings, storage, clock=lambda: T0, feed=QuietFeed(), board=ConsoleBoard(io.StringIO()))


def unlimited(settings: Settings) -> Settings:
    """The settings with every risk limit off: these tests load and probe the desk, not its limits (tests/risk).
    The expiry guard is off too; its time, which has no off, stays."""
    off = dict.fromkeys(RiskSettings.fields.keys() - {"expiry_guard_time"}, False)
    return settings.replace(risk=RiskSettings(**off))


def assert_nothing_lost(storage: Path, positions: Iterable[Position]) -> list[TradeEvent]:
    """The ledger is whole (no torn line), verifies, holds every fill of `positions` exactly once and replays to
    them; returns its events."""
    contents = read_ledger(ledger_path(storage))
    assert contents.torn_tail == b"", "a partial line was left in the ledger"
    report = verify_events(contents.events)
    assert report.ok, report.problems[:5]
    fill_ids = Counter(event.fill_id for event in contents.events)
    assert not [f for f, n in fill_ids.items() if n > 1], "a fill is in the ledger twice"
    known = {p.position_id: p for p in positions}
    assert sorted(fill_ids) == sorted(a.fill_id for p in known.values() for a in p.actions)
    assert {pid: (p.qty, p.avg_entry, p.realized_pnl) for pid, p in report.positions.items()} == {
        pid: (p.qty, p.avg_entry, p.realized_pnl) for pid, p in known.items()
    }
    return contents.events


def peak_rss_mb() -> float:
    """The process's own peak resident memory so far, in MiB.

    Linux's VmHWM, not ru_maxrss: a process started with vfork + exec (as subprocess does) inherits its parent's
    ru_maxrss, so a child of the test suite would report the suite's peak.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
