"""`python -m bot backtest` as a real process: wired into the command line, JSON only on stdout."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bot.paths import PROJECT_ROOT, ledger_path


def test_the_backtest_command_runs_from_the_command_line(tmp_path: Path) -> None:
    storage = tmp_path / "bt"
    days = ["--from", "2026-11-24", "--to", "2026-11-25"]
    done = subprocess.run(
        [sys.executable, "-m", "bot", "backtest", *days, "--seed", "5", "--storage", str(storage), "--json"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result
    assert ledger_path(storage).stat().st_size > 0
    assert (storage / "equity.png").exists() and (storage / "trades.csv").exists()
