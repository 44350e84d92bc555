"""What the brakes tests (test_brakes.py) build and run: a traded storage (halted or not), an older desk's store, a
damaged store, the real `python -m bot` in a subprocess and the one line it ends on, a disk filled up."""

from __future__ import annotations

import errno
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import pytest

from bot.options.risk import DeskState, TradingState
from bot.paths import PROJECT_ROOT
from bot.runtime.state_file import MIGRATIONS, STATE_FILE
from bot.runtime.trading_journal import expected_state, journal_path
from bot.runtime.trading_state import OPERATOR
from tests.core.factories import T0, quote
from tests.discord.conftest import SPY
from tests.reliability.checks import open_offline_desk

BOUND = 120.0  # generous: a process on a loaded machine can take 10 s to import
HALT = DeskState(TradingState.HALTED, "the operator's halt", OPERATOR, T0)


async def traded(folder: Path, *, halt: bool = True) -> str:
    """A desk that traded (an open position, a trailing high saved), halted by the operator unless `halt` is False,
    and stopped; returns the position's id."""
    offline = await open_offline_desk(folder)
    try:
        offline.quotes.update(SPY.symbol, quote("1.00", "1.10", size=100))
        position = await offline.manager.open_position(SPY, 10, strategy="orb")
        await offline.manager.trim(position.position_id, qty=3)
        await offline.store.save_high(position.position_id, Decimal("1.10"))
        if halt:
            await offline.switch.set(HALT.state, HALT.reason, HALT.set_by)
    finally:
        await offline.close()
    return position.position_id


def clean_env() -> dict[str, str]:
    """Never Discord, never the machine's own settings."""
    return {k: v for k, v in os.environ.items() if k != "DISCORD_TOKEN" and not k.startswith("OPTIONDESK_")}


def bot(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=PROJECT_ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=BOUND,
        stdin=subprocess.DEVNULL,
    )


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    """The one line a command that failed ends on (exit 1, no traceback)."""
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 1, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("optiondesk: "), done.stderr
    return last


class Running:
    """`python -m bot run --storage DIR` in the background, its stderr in a file (nothing blocks on a pipe)."""

    def __init__(self, folder: Path, logs: Path) -> None:
        self.err = logs / f"run-{time.monotonic_ns()}.err"
        with self.err.open("wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot", "run", "--storage", str(folder), "--speed", "600", "--seed", "3"],
                cwd=PROJECT_ROOT,
                env=clean_env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )

    @property
    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def wait_for(self, text: str) -> None:
        """Until the process says `text` (or ends), within a generous bound."""
        deadline = time.monotonic() + BOUND
        while text not in self.stderr and self.process.poll() is None:
            assert time.monotonic() < deadline, f"{text!r} not said within {BOUND:.0f} s:\n{self.stderr[-2000:]}"
            time.sleep(0.05)
        assert text in self.stderr, self.stderr[-2000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        self.process.wait(BOUND)
        assert "Traceback" not in self.stderr, self.stderr

    def ended(self) -> subprocess.CompletedProcess[str]:
        code = self.process.wait(BOUND)
        return subprocess.CompletedProcess(self.process.args, code, "", self.stderr)


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def set_aside(folder: Path) -> list[str]:
    return [name for name in files(folder) if ".corrupt-" in name]


def older_store(folder: Path, row: tuple[str, str, str, str]) -> None:
    """Make the store what a desk before the journal left (schema version 4): the trading state in its `trading_state`
    table."""
    journal_path(folder).unlink()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{folder / STATE_FILE}{suffix}").unlink(missing_ok=True)
    with sqlite3.connect(folder / STATE_FILE) as db:
        for number, script in enumerate(MIGRATIONS[:4], start=1):
            db.executescript(f"{script}; PRAGMA user_version = {number};")
        db.execute("INSERT INTO trading_state VALUES (1, ?, ?, ?, ?)", row)


def zero_bytes(store: Path) -> None:
    for suffix in ("-wal", "-shm"):
        Path(f"{store}{suffix}").unlink(missing_ok=True)
    store.write_bytes(b"")


def damage(folder: Path, sql: str) -> None:
    with sqlite3.connect(folder / STATE_FILE) as db:
        db.execute(sql)


def mount(*args: str) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"mount {' '.join(args)} is not allowed here ({done.stderr.strip()})")


@contextmanager
def journal_writes_fail(code: int) -> Iterator[None]:
    """Every write to a trading-state journal fails with `code` (ENOSPC: the disk is full)."""
    real_write = os.write

    def write(fd: int, data: bytes | memoryview) -> int:  # type: ignore[override]
        if os.readlink(f"/proc/self/fd/{fd}").endswith("trading_state.jsonl"):
            raise OSError(code, os.strerror(code))
        return real_write(fd, data)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "write", write)
        yield


def fill(disk: Path) -> None:
    with (disk / "filler").open("wb", buffering=0) as filler:
        try:
            while True:
                filler.write(b"\0" * 4096)
        except OSError as error:
            assert error.errno == errno.ENOSPC


def pad_journal_to_a_page(folder: Path) -> None:
    """Earlier lines so that the journal ends on a page boundary: on a full tmpfs its next line then needs a page
    of its own (a part-used page would still take a short line)."""
    path = journal_path(folder)
    last = path.read_bytes()
    earlier = {"state": "halted", "reason": "", "set_by": "operator", "set_at": None}
    room = 4096 - len(last) - len(json.dumps(earlier)) - 1
    path.write_bytes(json.dumps({**earlier, "reason": "x" * room}).encode() + b"\n" + last)
    assert path.stat().st_size == 4096 and expected_state(folder) == HALT
