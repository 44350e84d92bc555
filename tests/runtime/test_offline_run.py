"""`python -m bot run` offline, as a real process: fills within seconds, a clean stop, a resume."""

import json
import signal
import subprocess
import sys
import time
from datetime import datetime

from bot.options.trade_ledger import read_ledger, replay
from bot.paths import PROJECT_ROOT, ledger_path


def start(storage):
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "run", "--storage", str(storage), "--speed", "600", "--seed", "3"],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_lines(path, at_least, deadline_s):
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if path.exists() and path.read_bytes().count(b"\n") >= at_least:
            return True
        time.sleep(0.1)
    return False


def stop(process):
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=20)
    return process.returncode, out, err


def test_run_trades_within_ten_seconds_stops_cleanly_and_resumes_after_the_last_event(tmp_path):
    ledger = ledger_path(tmp_path)
    first = start(tmp_path)
    try:
        assert wait_for_lines(ledger, 1, deadline_s=10), "no fill within 10 s at --speed 600"
    finally:
        code, out, err = stop(first)
    assert code == 0, err
    assert "Traceback" not in err
    assert "stopped cleanly" in err
    assert "== SPY" in out or "== QQQ" in out  # position messages in the terminal
    last = read_ledger(ledger).events[-1].ts

    second = start(tmp_path)
    try:
        time.sleep(2)
    finally:
        code, _, err = stop(second)
    assert code == 0, err
    resumed_at = datetime.fromisoformat(err.split("offline on the simulated market from ")[1].split(" at ")[0])
    assert resumed_at > last

    listed = subprocess.run(
        [sys.executable, "-m", "bot", "positions", "--storage", str(tmp_path), "--json"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    expected = [p for p in replay(read_ledger(ledger).events).values() if p.is_open]
    assert [(p["position_id"], p["qty"]) for p in json.loads(listed.stdout)] == [
        (p.position_id, p.qty) for p in expected
    ]
    for row in json.loads(listed.stdout):
        assert {"position_id", "symbol", "qty", "avg_entry", "realized_pnl_total"} <= set(row)
