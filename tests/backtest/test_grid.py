"""`python -m bot backtest --set KEY=V1,V2`: a grid of backtests, one per combination in its own folder, ranked by
realized P&L; a key or value the settings refuse stops it before anything runs; Ctrl-C stops the pool cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest

from bot.paths import PROJECT_ROOT, ledger_path
from bot.runtime.backtest_grid import split_values

DAYS = ["--from", "2026-11-24", "--to", "2026-11-25", "--seed", "5"]  # two days on which spy-orb's stop loss fires
STOP_LOSS = "strategies.0.exits.stop_loss_pct"


def bot(*args: str, storage: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "backtest", *args, "--storage", str(storage)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_each_combination_is_a_line_best_realized_pnl_first(tmp_path: Path) -> None:
    done = bot(*DAYS, "--set", f"{STOP_LOSS}=20,60", storage=tmp_path / "grid")

    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines() if line.strip().startswith(("1 ", "2 "))]
    assert [row[-1] for row in rows] == [f"{STOP_LOSS}=20", f"{STOP_LOSS}=60"]  # the tighter stop did better here
    first, second = (Decimal(row[1].replace(",", "")) for row in rows)
    assert first > second
    assert (tmp_path / "grid" / "grid.txt").read_text().strip() == done.stdout.strip()


def test_a_combinations_folder_holds_a_ledger_that_verifies(tmp_path: Path) -> None:
    done = bot(*DAYS, "--set", f"{STOP_LOSS}=20", "--json", storage=tmp_path / "grid")

    assert done.returncode == 0, done.stderr
    [outcome] = json.loads(done.stdout)
    own = Path(outcome["folder"])
    assert own.parent == tmp_path / "grid" and outcome["set"] == {STOP_LOSS: "20"}
    assert ledger_path(own).stat().st_size > 0
    verified = subprocess.run(
        [sys.executable, "-m", "bot", "ledger", "verify", "--storage", str(own)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert outcome["result"]["fills"] == sum(1 for line in ledger_path(own).read_text().splitlines() if line)


def test_a_failed_combination_is_reported_on_its_line_and_the_others_run(tmp_path: Path) -> None:
    # IWM is a valid option root, but the simulated market does not quote it: that desk refuses to start.
    done = bot(*DAYS, "--set", "strategies.0.underlying=IWM,SPY", "--json", storage=tmp_path / "grid")

    assert done.returncode == 1, done.stderr
    spy, iwm = json.loads(done.stdout)
    assert (spy["set"], spy["status"], iwm["set"], iwm["status"]) == (
        {"strategies.0.underlying": "SPY"},
        "done",
        {"strategies.0.underlying": "IWM"},
        "failed",
    )
    assert "IWM" in iwm["error"] and "\n" not in iwm["error"]
    assert spy["result"]["fills"] > 0


@pytest.mark.parametrize(
    ("setting", "named"),
    [
        ("strategies.0.exits.stop_los=30", "unknown setting strategies.0.exits.stop_los"),
        ("strategies.7.contracts=1", "unknown setting strategies.7.contracts: strategies has entries 0 to 1"),
        (f"{STOP_LOSS}=30,140", f"bad --set {STOP_LOSS}=140: expected a number above 0 and at most 100"),
        ("risk.max_open_positions=3,many", "bad --set risk.max_open_positions=many"),
    ],
)
def test_a_key_or_value_the_settings_refuse_runs_nothing(tmp_path: Path, setting: str, named: str) -> None:
    done = bot(*DAYS, "--set", f"{STOP_LOSS}=20,30", "--set", setting, storage=tmp_path / "grid")

    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert named in line
    assert not (tmp_path / "grid").exists()


def test_values_split_at_commas_outside_brackets() -> None:
    assert split_values("30,40") == ["30", "40"]
    assert split_values("[[30,50]],[[60,100],[80,100]]") == ["[[30,50]]", "[[60,100],[80,100]]"]


def test_ctrl_c_stops_every_backtest_and_reports_them(tmp_path: Path) -> None:
    storage = tmp_path / "grid"
    # Three combinations of two months on at most two cores: none is done when the first has traded.
    command = [sys.executable, "-m", "bot", "backtest", "--from", "2026-09-01", "--to", "2026-10-30", "--seed", "5"]
    grid = subprocess.Popen(
        [*command, "--set", f"{STOP_LOSS}=20,40,60", "--storage", str(storage)],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's Ctrl-C reaches the command and its workers
    )
    try:
        for _ in range(1200):  # wait for a backtest to have traded, 120 s at most
            if any(p.stat().st_size for p in storage.glob("*/options/trade_events.jsonl")):
                break
            time.sleep(0.1)
        os.killpg(grid.pid, signal.SIGINT)
        out, err = grid.communicate(timeout=120)
    finally:
        if grid.poll() is None:
            os.killpg(grid.pid, signal.SIGKILL)

    assert grid.returncode == 130, err
    assert "Traceback" not in err
    lines = [line for line in out.splitlines() if STOP_LOSS in line]
    assert len(lines) == 3
    assert any("stopped" in line or "not run" in line for line in lines)
    for _ in range(600):  # no worker outlives the command (a process group ends with its last process)
        try:
            os.killpg(grid.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("a worker of the grid is still running after the command ended")
