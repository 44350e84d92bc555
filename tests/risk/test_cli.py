"""`python -m bot state` and `python -m bot status`: exit codes, what they print, and the --json fields."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main
from bot.paths import PROJECT_ROOT
from bot.runtime.trading_journal import journal_path
from tests.core.test_cli import DAY


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_state_of_a_new_desk_is_active(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "state", "--storage", str(tmp_path))

    assert (code, out) == (0, "Trading: ACTIVE (never changed)\n")


def test_set_then_show_as_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    code, out, _ = run(capsys, "state", "--storage", str(tmp_path), "--set", "reduce-only", "--reason", "FOMC")
    assert code == 0
    assert out.startswith("Trading: REDUCE-ONLY since ") and out.endswith(", set by operator: FOMC\n")
    assert "trading state active -> reduce-only, set by operator: FOMC" in caplog.text  # logged

    code, out, _ = run(capsys, "state", "--storage", str(tmp_path), "--json")

    assert code == 0
    shown = json.loads(out)
    assert {k: shown[k] for k in ("state", "reason", "set_by")} == {
        "state": "reduce-only",
        "reason": "FOMC",
        "set_by": "operator",
    }
    assert shown["set_at"].endswith("+00:00")


@pytest.mark.parametrize(
    "args",
    [
        ["--set", "halted"],
        ["--set", "halted", "--reason", "  "],
        ["--reason", "no state given"],
    ],
    ids=["set without reason", "blank reason", "reason without set"],
)
def test_usage_errors_exit_2_and_change_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    code, out, err = run(capsys, "state", "--storage", str(tmp_path), *args)

    assert code == 2
    assert out == "" and "python -m bot state: " in err
    assert run(capsys, "state", "--storage", str(tmp_path))[1] == "Trading: ACTIVE (never changed)\n"


def test_an_unknown_state_is_a_usage_error_of_the_real_process(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bot", "state", "--storage", str(tmp_path), "--set", "paused", "--reason", "x"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 2
    assert "invalid choice: 'paused'" in done.stderr


def test_status_offline_says_there_is_no_feed_and_counts_what_the_files_hold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Arrange: a demo day in the storage (positions, fees, P&L), then a halt from the shell.
    assert run(capsys, "demo", "--storage", str(tmp_path), "--seed", "3", "--date", DAY)[0] == 0
    run(capsys, "state", "--storage", str(tmp_path), "--set", "halted", "--reason", "end of test")

    # Act
    code, text, _ = run(capsys, "status", "--storage", str(tmp_path))
    json_code, out, _ = run(capsys, "status", "--storage", str(tmp_path), "--json")

    # Assert
    assert code == json_code == 0
    assert "Feed: none here (offline: no live quotes)" in text
    assert "Uptime: not running here" in text
    assert text.splitlines()[0].endswith("set by operator: end of test")
    status = json.loads(out)
    assert set(status) == {
        "now",
        "trading_state",
        "market",
        "feed",
        "open_positions",
        "premium_at_risk",
        "realized_pnl_today",
        "net_delta",
        "theta",
        "vega",
        "greeks_source",
        "day",
        "limits",
        "discord_backlog",
        "discord",
        "broker",
        "uptime_seconds",
    }
    assert status["feed"] is None and status["uptime_seconds"] is None
    assert status["discord"] is None and status["broker"] is None  # no desk holds the storage
    assert status["trading_state"]["state"] == "halted"
    assert status["open_positions"] == [] and status["premium_at_risk"] == "0.00"
    assert status["discord_backlog"] == 0
    assert status["net_delta"] == status["theta"] == status["vega"] == "0.00"  # nothing open, nothing exposed
    assert status["limits"] == {
        "max_open_positions": 10,
        "max_premium_total": "30000",
        "max_premium_per_position": "10000",
        "max_daily_loss": "5000",
        "max_net_delta": None,
        "max_vega": None,
    }


def test_a_state_the_disk_cannot_take_is_refused_in_one_line_and_the_journal_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Arrange: a halted desk, then a disk that fills up while the next line is made durable.
    run(capsys, "state", "--storage", str(tmp_path), "--set", "halted", "--reason", "feed down")
    journal = journal_path(tmp_path)
    before = journal.read_bytes()
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if os.readlink(f"/proc/self/fd/{fd}") == str(journal):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)

    # Act
    code, out, err = run(capsys, "state", "--storage", str(tmp_path), "--set", "active", "--reason", "all clear")

    # Assert: one line naming the file, the line written cut away again, the halt still the state
    assert (code, out) == (1, "")
    assert (
        f"optiondesk: cannot write the trading state to {journal} (No space left on device): free space or make it "
        "writable, then set the state again\n"
    ) in err
    assert "Traceback" not in err
    assert journal.read_bytes() == before
    assert run(capsys, "state", "--storage", str(tmp_path))[1].endswith("set by operator: feed down\n")


def test_a_state_that_cannot_be_known_is_shown_as_halted_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = journal_path(tmp_path)
    journal.parent.mkdir(parents=True)
    journal.write_bytes(b"")

    code, out, _ = run(capsys, "state", "--storage", str(tmp_path), "--json")

    assert code == 1
    assert json.loads(out) == {"state": "halted", "reason": f"{journal} is empty", "set_by": "unknown", "set_at": None}
    assert journal.read_bytes() == b""
