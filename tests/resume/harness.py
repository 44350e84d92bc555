"""The real `python -m bot run` in a subprocess for the crash tests: start it, let it crash, restart it,
stop it, and check what a restart promises (ledger, positions, state store, one message per position).

Output goes to files, not pipes: nothing blocks on a full pipe, and a process killed by SIGKILL leaves
everything it printed (the console board flushes each message).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from bot.options.positions import Position
from bot.options.trade_ledger import TradeEvent, read_ledger, replay
from bot.paths import PROJECT_ROOT, ledger_path

RUN_ARGS = ("--speed", "600", "--seed", "3")
STARTED = "offline on "  # the simulated market, or recorded quotes
START_UP_S = 60.0  # generous: many bots starting side by side on a small machine are slow to import
STATE_FILE = "state.sqlite3"
_MESSAGE_HEAD = re.compile(r"\[message (\d+) (posted|edited)\]")


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def bot_env(crash_at: str | None = None) -> dict[str, str]:
    """The environment of a test run: never Discord, and a crash point only when asked for."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISCORD_TOKEN", "OPTIONDESK_CRASH_AT")}
    if crash_at is not None:
        env["OPTIONDESK_CRASH_AT"] = crash_at
    return env


class BotRun:
    """One `python -m bot run --storage DIR --speed 600 --seed 3` process (or with other `args`), its output in
    `logs/<name>.*`."""

    def __init__(
        self, storage: Path, logs: Path, name: str, *, crash_at: str | None = None, args: Iterable[str] = RUN_ARGS
    ) -> None:
        logs.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.out_path = logs / f"{name}.out"
        self.err_path = logs / f"{name}.err"
        with self.out_path.open("wb") as out, self.err_path.open("wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot", "run", "--storage", str(storage), *args],
                cwd=PROJECT_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=bot_env(crash_at),
            )

    @property
    def stdout(self) -> str:
        return self.out_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def _tail(self) -> str:
        return "\n".join(self.stderr.splitlines()[-15:])

    def wait_killed(self, timeout: float = 30.0) -> None:
        """Wait for the process to kill itself at its crash point (SIGKILL, returncode -9) within `timeout` s
        of its start-up (which a busy machine may slow down)."""
        self._wait_start_up()
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            tail = self._tail()
            raise AssertionError(f"{self.name}: did not die within {timeout:.0f} s; stderr ends:\n{tail}") from None
        if code != -signal.SIGKILL:
            raise AssertionError(f"{self.name}: exited {code}, not killed by SIGKILL; stderr ends:\n{self._tail()}")

    def wait_started(self) -> None:
        """Wait until start-up is done (ledger repaired, store in line, the desk trading)."""
        self._wait_start_up()
        if self.process.poll() is not None:
            raise AssertionError(f"{self.name}: exited with {self.process.returncode}; stderr ends:\n{self._tail()}")

    def _wait_start_up(self, timeout: float = START_UP_S) -> None:
        if not wait_until(lambda: STARTED in self.stderr or self.process.poll() is not None, timeout):
            self.kill()
            raise AssertionError(f"{self.name}: not started within {timeout:.0f} s; stderr ends:\n{self._tail()}")

    def stop(self, timeout: float = 20.0) -> int:
        """SIGINT, the way a trader stops it; returns the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.name}: did not stop within {timeout:.0f} s of SIGINT") from None

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def ledger_bytes(storage: Path) -> bytes:
    path = ledger_path(storage)
    return path.read_bytes() if path.exists() else b""


def complete_lines(data: bytes) -> bytes:
    """The lines of a ledger snapshot that were whole (newline-terminated)."""
    return data[: data.rfind(b"\n") + 1]


def line_count(storage: Path) -> int:
    return ledger_bytes(storage).count(b"\n")


def run_and_stop(storage: Path, logs: Path, name: str, *, more_lines: int = 1, timeout: float = 5.0) -> BotRun:
    """Start the bot, let it trade until `more_lines` more ledger lines are written or `timeout` s pass
    after its start-up, then stop it with SIGINT; it must exit 0 without a traceback."""
    before = line_count(storage)
    run = BotRun(storage, logs, name)
    try:
        run.wait_started()
        wait_until(lambda: line_count(storage) >= before + more_lines, timeout)
        code = run.stop()
    finally:
        run.kill()
    assert code == 0, f"{name}: exit status {code} after SIGINT; stderr:\n{run.stderr}"
    assert "Traceback" not in run.stderr, f"{name}:\n{run.stderr}"
    assert "stopped cleanly" in run.stderr, f"{name}:\n{run.stderr}"
    return run


def bot_cli(storage: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args, "--storage", str(storage)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        env=bot_env(),
        timeout=60,
    )


@dataclass(frozen=True)
class CliReport:
    verify: subprocess.CompletedProcess[str]  # `ledger verify`
    positions: subprocess.CompletedProcess[str]  # `positions --json`


def run_cli(storage: Path) -> CliReport:
    """`ledger verify` and `positions --json` on a stopped bot's storage, side by side."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        verify = pool.submit(bot_cli, storage, "ledger", "verify")
        positions = pool.submit(bot_cli, storage, "positions", "--json")
        return CliReport(verify.result(), positions.result())


# Checks ------------------------------------------------------------------------------------------------


def ledger_events(storage: Path) -> list[TradeEvent]:
    contents = read_ledger(ledger_path(storage))
    assert contents.torn_tail == b"", "the ledger ends in a torn line after a clean stop"
    return contents.events


def open_positions(events: Iterable[TradeEvent]) -> list[Position]:
    return [p for p in replay(events).values() if p.is_open]


def assert_ledger_verifies(cli: CliReport) -> None:
    verified = cli.verify
    assert verified.returncode == 0, f"ledger verify exited {verified.returncode}:\n{verified.stdout}{verified.stderr}"


def assert_positions_match_replay(cli: CliReport, events: list[TradeEvent]) -> None:
    listed = cli.positions
    assert listed.returncode == 0, listed.stderr
    shown = [(p["position_id"], p["qty"], Decimal(p["avg_entry"])) for p in json.loads(listed.stdout)]
    assert shown == [(p.position_id, p.qty, p.avg_entry.quantize(Decimal("0.000001"))) for p in open_positions(events)]


def assert_unique_ids(events: list[TradeEvent]) -> None:
    for name in ("event_id", "fill_id"):
        counts = Counter(getattr(event, name) for event in events)
        assert not [i for i, n in counts.items() if n > 1], f"a {name} appears twice in the ledger"


def read_state(storage: Path, query: str, *, read_only: bool = True) -> list[tuple[object, ...]]:
    """Rows of the state store in `storage`, opened read-only (the bot is stopped) unless it is a copy."""
    db = sqlite3.connect(f"file:{storage / STATE_FILE}{'?mode=ro' if read_only else ''}", uri=True)
    try:
        return db.execute(query).fetchall()
    finally:
        db.close()


def assert_state_matches_replay(storage: Path, events: list[TradeEvent]) -> None:
    """The state store holds nothing the ledger contradicts: an order still open is one the stop came in the middle
    of (the next start resolves it), never one the ledger shows filled; trailing highs only of positions the ledger
    has; no copy of the positions or their fills."""
    filled = Counter[str]()
    for event in events:
        filled[event.order_id] += event.qty
    open_orders = "SELECT order_id, requested_qty FROM orders WHERE status IN ('new', 'partially_filled')"
    for order_id, requested in read_state(storage, open_orders):
        assert filled[str(order_id)] < int(str(requested)), (
            f"order {order_id} is filled in the ledger, open in the store"
        )
    positions = replay(events)
    highs = {row[0] for row in read_state(storage, "SELECT position_id FROM exit_highs")}
    assert highs <= set(positions), f"the state store keeps highs of positions the ledger does not know: {highs}"
    tables = {row[0] for row in read_state(storage, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"orders", "exit_highs", "checkpoint"}, tables


def message_blocks(stdout: str) -> list[tuple[str, int, str]]:
    """(posted|edited, message id, position id) of each console message block, in order."""
    lines = stdout.splitlines()
    blocks = []
    for number, line in enumerate(lines):
        head = _MESSAGE_HEAD.fullmatch(line)
        if head is None:
            continue
        title = lines[number + 1] if number + 1 < len(lines) else ""
        fields = title.removeprefix("== ").split(" | ", 3)
        assert title.startswith("== ") and len(fields) == 4, f"a message block without its title: {title!r}"
        blocks.append((head[2], int(head[1]), fields[3]))
    return blocks


def assert_one_message_per_position(storage: Path, events: list[TradeEvent], stdouts: Iterable[str]) -> None:
    """At most one post per position over all the runs, edits go to that message, and after a clean stop
    the message map holds each position's one message showing its last event."""
    blocks = [block for out in stdouts for block in message_blocks(out)]
    posts = Counter(position_id for verb, _, position_id in blocks if verb == "posted")
    assert not {pid: n for pid, n in posts.items() if n > 1}, "a position got a second message"
    posted = {position_id: message_id for verb, message_id, position_id in blocks if verb == "posted"}
    for verb, message_id, position_id in blocks:
        if verb == "edited":
            assert posted.get(position_id) == message_id, f"an edit of {position_id} went to another message"

    mapped = json.loads((storage / "message_ids.json").read_text())["messages"]
    last_event = {event.position_id: event.event_id for event in events}
    for position_id, event_id in last_event.items():
        entry = mapped.get(position_id)
        assert entry is not None, f"position {position_id} has no message"
        assert entry["message_id"] == posted.get(position_id), f"the map of {position_id} names another message"
        assert not entry["posting"], f"the post of {position_id} is still marked as under way"
        assert entry["event_id"] == event_id, f"the message of {position_id} does not show its last event"


def assert_resumed_consistently(
    storage: Path, stdouts: Iterable[str], cli: CliReport | None = None
) -> list[TradeEvent]:
    """Everything a stopped bot's storage must satisfy after a restart (`cli`: the CLI's answers on it, if
    already asked); returns the ledger's events."""
    events = ledger_events(storage)
    cli = cli or run_cli(storage)
    assert_ledger_verifies(cli)
    assert_unique_ids(events)
    assert_positions_match_replay(cli, events)
    assert_state_matches_replay(storage, events)
    assert_one_message_per_position(storage, events, stdouts)
    return events


@dataclass
class CrashRun:
    """A run killed at a crash point, then the same command restarted without it and stopped."""

    crash_at: str
    storage: Path
    crashed: BotRun
    at_kill: bytes  # the ledger's bytes right after the kill
    state_at_kill: Path  # a copy of the state store's files right after the kill
    restarted: BotRun
    cli: CliReport  # asked after the restart stopped


def crash_and_restart(storage: Path, logs: Path, crash_at: str) -> CrashRun:
    crashed = BotRun(storage, logs, "crashed", crash_at=crash_at)
    try:
        crashed.wait_killed()
    finally:
        crashed.kill()
    at_kill = ledger_bytes(storage)
    state_at_kill = logs / "at-kill"
    state_at_kill.mkdir()
    for suffix in ("", "-wal", "-shm"):
        if (storage / f"{STATE_FILE}{suffix}").exists():
            shutil.copy2(storage / f"{STATE_FILE}{suffix}", state_at_kill)
    restarted = run_and_stop(storage, logs, "restarted")
    return CrashRun(crash_at, storage, crashed, at_kill, state_at_kill, restarted, run_cli(storage))
