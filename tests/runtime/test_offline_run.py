"""`python -m bot run` offline, as a real process: fills within seconds, a clean stop, a resume."""

import json
import subprocess
import sys
from datetime import datetime
from decimal import Decimal

from bot.options.trade_ledger import read_ledger, replay
from bot.paths import PROJECT_ROOT, ledger_path
from tests.core.factories import BREAKOUT_CALL, record_a_breakout
from tests.resume.harness import BotRun, bot_env, wait_until


def has_a_fill(ledger):
    return ledger.exists() and b"\n" in ledger.read_bytes()


def test_run_trades_stops_cleanly_and_resumes_after_the_last_event(tmp_path):
    ledger = ledger_path(tmp_path)
    first = BotRun(tmp_path, tmp_path / "logs", "first")
    try:
        first.wait_started()
        # Waited for as long as a loaded machine needs: how fast it trades is not what this test measures.
        assert wait_until(lambda: has_a_fill(ledger), 120), "no fill"
    finally:
        code = first.stop()
    assert code == 0, first.stderr
    assert "Traceback" not in first.stderr
    assert "stopped cleanly" in first.stderr
    assert "== SPY" in first.stdout or "== QQQ" in first.stdout  # position messages in the terminal
    last = read_ledger(ledger).events[-1].ts

    second = BotRun(tmp_path, tmp_path / "logs", "second")
    try:
        second.wait_started()
    finally:
        code = second.stop()
    assert code == 0, second.stderr
    resumed_at = datetime.fromisoformat(
        second.stderr.split("offline on the simulated market from ")[1].split(" at ")[0]
    )
    assert resumed_at > last

    listed = subprocess.run(
        [sys.executable, "-m", "bot", "positions", "--storage", str(tmp_path), "--json"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
        env=bot_env(),
    )
    expected = [p for p in replay(read_ledger(ledger).events).values() if p.is_open]
    assert [(p["position_id"], p["qty"]) for p in json.loads(listed.stdout)] == [
        (p.position_id, p.qty) for p in expected
    ]
    for row in json.loads(listed.stdout):
        assert {"position_id", "symbol", "qty", "avg_entry", "realized_pnl_total"} <= set(row)


def test_run_trades_on_recorded_quotes(tmp_path):
    # SPY breaks out of its opening range at 09:50; the call at the money is offered at 2.10.
    call = BREAKOUT_CALL
    recorded = record_a_breakout(tmp_path / "quotes.csv")
    storage = tmp_path / "storage"

    run = BotRun(storage, tmp_path / "logs", "replay", args=("--replay", str(recorded), "--speed", "6000"))
    try:
        run.wait_started()
        assert wait_until(lambda: has_a_fill(ledger_path(storage)), 120), "no fill on the recorded quotes"
    finally:
        code = run.stop()

    assert code == 0, run.stderr
    [opened] = read_ledger(ledger_path(storage)).events[:1]
    assert (opened.kind, opened.symbol, opened.price, opened.strategy) == ("open", call, Decimal("2.10"), "spy-orb")
    # Stamped with the market clock when the order filled: the breakout's quote or the next one.
    assert datetime.fromisoformat("2026-11-25T09:50:00-05:00") <= opened.ts
    assert opened.ts <= datetime.fromisoformat("2026-11-25T09:51:00-05:00")
