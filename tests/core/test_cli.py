"""The command line, run as a real process: `python -m bot ...`."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main
from bot.cli.common import EXIT_BROKEN_PIPE
from bot.paths import PROJECT_ROOT


def run_bot(*args, env=None, stdout=subprocess.PIPE):
    """`python -m bot ARGS`, its output to `stdout` (captured by default)."""
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=60,
        env=env,
    )


DAY = "2026-11-25"


def trade_a_demo_day(storage):
    return run_bot("demo", "--storage", str(storage), "--seed", "5", "--date", DAY)  # a day with every kind of trade


def test_the_demo_day_trades_and_the_ledger_verifies(tmp_path):
    demo = trade_a_demo_day(tmp_path)

    assert demo.returncode == 0, demo.stderr
    lines = (tmp_path / "options/trade_events.jsonl").read_text().splitlines()
    kinds = {json.loads(line)["kind"] for line in lines}
    assert kinds == {"open", "add", "trim", "close"}
    assert f"{len(lines)} trades" in demo.stdout

    verify = run_bot("ledger", "verify", "--storage", str(tmp_path))

    assert verify.returncode == 0, verify.stdout
    assert f"events: {len(lines)}" in verify.stdout
    assert "ledger OK" in verify.stdout


def test_verify_exits_1_and_names_the_line_of_a_tampered_ledger(tmp_path):
    trade_a_demo_day(tmp_path)
    ledger = tmp_path / "options/trade_events.jsonl"
    lines = ledger.read_text().splitlines()
    tampered = json.loads(lines[3])
    tampered["position_qty"] = 9
    ledger.write_text("\n".join([*lines[:3], json.dumps(tampered), *lines[4:]]) + "\n")

    verify = run_bot("ledger", "verify", "--storage", str(tmp_path))

    assert verify.returncode == 1
    assert "line 4 " in verify.stdout
    assert "position_qty is 9, the fills give" in verify.stdout


def test_verify_exits_1_on_a_malformed_line(tmp_path):
    (tmp_path / "options").mkdir()
    (tmp_path / "options/trade_events.jsonl").write_text('{"v": 1}\n')

    verify = run_bot("ledger", "verify", "--storage", str(tmp_path))

    assert verify.returncode == 1
    assert "line 1 is not a valid trade event" in verify.stdout


def test_verify_passes_on_a_missing_storage_without_creating_it(tmp_path):
    verify = run_bot("ledger", "verify", "--storage", str(tmp_path / "new"))

    assert verify.returncode == 0
    assert not (tmp_path / "new").exists()  # a read-only command writes nothing
    assert "events: 0" in verify.stdout


def test_a_usage_error_exits_2():
    assert run_bot("ledger", "frobnicate").returncode == 2
    assert run_bot("nonsense").returncode == 2


@pytest.mark.parametrize(
    "command",
    [["positions"], ["ledger", "verify"], ["status"], ["state"], ["report", "daily", "--json"]],
    ids=" ".join,
)
def test_output_to_a_pipe_nobody_reads_ends_without_a_traceback(tmp_path, command):
    # `python -m bot ... | head`: head has gone when the command writes. A pipe whose reader is closed before the
    # command starts fails its first write, whatever the output's size and however fast the command runs.
    reader, writer = os.pipe()
    os.close(reader)
    try:
        done = run_bot(*command, "--storage", str(tmp_path), stdout=writer)
    finally:
        os.close(writer)

    assert done.returncode == EXIT_BROKEN_PIPE
    assert done.stderr == ""  # neither a traceback nor the interpreter's "Exception ignored" at its last flush


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full (a device whose every write fails: disk full)")
@pytest.mark.parametrize("command", [["status"], ["positions", "--json"], ["ledger", "verify"]], ids=" ".join)
def test_output_to_a_full_disk_is_one_line_not_a_traceback(tmp_path, command):
    # `python -m bot status > file` on a full disk: /dev/full fails every write with ENOSPC.
    with open("/dev/full", "w") as full:
        done = run_bot(*command, "--storage", str(tmp_path), stdout=full)

    assert done.returncode == 1
    assert done.stderr.splitlines() == ["optiondesk: cannot write the output: No space left on device"]


@pytest.mark.parametrize(
    ("words", "said"),
    [
        (["demo", "--date", "2026-13-01"], "argument --date: '2026-13-01' is not a date in the form YYYY-MM-DD"),
        (["backtest", "--from", "25-11-2026", "--to", "2026-11-27"], "argument --from: '25-11-2026' is not a date"),
        (["run", "--speed", "fast"], "argument --speed: speed must be above 0 and at most 100000, not fast"),
    ],
)
def test_a_value_that_is_no_date_or_speed_is_a_usage_error_in_the_desks_words(words, said, capsys):
    # Not argparse's "invalid market_day value", which names a function of the code.
    with pytest.raises(SystemExit) as usage:
        main(words)

    last = capsys.readouterr().err.splitlines()[-1]
    assert usage.value.code == 2
    assert last.startswith(f"python -m bot {words[0]}: error: {said}")
