"""`python -m bot run` offline, as a real process: fills within seconds, a clean stop, a resume."""

import json
import signal
import subprocess
import sys
import time
from datetime import datetime
from decimal import Decimal

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


def test_run_trades_on_recorded_quotes(tmp_path):
    # The opening range of SPY is 600.00-600.40 from 09:30 to 09:44; at 09:50 it breaks out at 601.00.
    call = "SPY   261127C00601000"
    rows = ["ts,symbol,bid,ask,last,bid_size,ask_size"]
    for minute in range(30):
        ts = f"2026-11-25T09:{30 + minute:02d}:00-05:00"
        spot = "601.00" if minute >= 20 else ("600.40" if minute % 2 else "600.00")
        rows.append(f"{ts},SPY,{spot},{spot},{spot},100,100")
        rows.append(f"{ts},{call},2.00,2.10,2.05,20,20")
    recorded = tmp_path / "quotes.csv"
    recorded.write_text("\n".join(rows) + "\n")
    storage = tmp_path / "storage"

    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "run", "--storage", str(storage), "--replay", str(recorded), "--speed", "6000"],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_for_lines(ledger_path(storage), 1, deadline_s=15), "no fill on the recorded quotes"
    finally:
        code, _, err = stop(process)

    assert code == 0, err
    [opened] = read_ledger(ledger_path(storage)).events[:1]
    assert (opened.kind, opened.symbol, opened.price, opened.strategy) == ("open", call, Decimal("2.10"), "spy-orb")
    # Stamped with the market clock when the order filled: the breakout's quote or the next one.
    assert datetime.fromisoformat("2026-11-25T09:50:00-05:00") <= opened.ts
    assert opened.ts <= datetime.fromisoformat("2026-11-25T09:51:00-05:00")
