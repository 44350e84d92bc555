"""`python -m bot report daily`: the table, the JSON fields, the default day and the usage errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bot import report_command
from bot.cli import main
from bot.paths import PROJECT_ROOT
from tests.analytics.ledgers import LedgerWriter, four_days, ny


@pytest.fixture
def storage(tmp_path: Path) -> Path:
    four_days(LedgerWriter(tmp_path / "options" / "trade_events.jsonl"))
    return tmp_path


def test_json_has_one_object_per_day_with_stable_fields(storage: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["report", "daily", "--storage", str(storage), "--from", "2026-11-24", "--to", "2026-11-25", "--json"])

    days = json.loads(capsys.readouterr().out)
    assert code == 0
    assert [d["date"] for d in days] == ["2026-11-24", "2026-11-25"]
    tue = days[0]
    assert {k: tue[k] for k in ("realized_pnl", "fees", "trades", "positions_closed", "wins", "losses")} == {
        "realized_pnl": "62.00",
        "fees": "8.00",
        "trades": 8,
        "positions_closed": 2,
        "wins": 1,
        "losses": 1,
    }
    assert (tue["win_rate"], tue["profit_factor"], tue["max_drawdown"]) == ("0.5000", "1.31", "201.00")
    assert (tue["largest_win"], tue["largest_loss"], tue["positions_opened"]) == ("264.00", "-202.00", 2)
    assert tue["by_strategy"]["meanrev"]["realized_pnl"] == "-202.00"
    assert tue["by_underlying"]["SPY"]["trades"] == 6
    assert days[1]["win_rate"] is None and days[1]["realized_pnl"] == "-2.00"


def test_the_table_shows_each_day_a_total_and_the_breakdowns(storage: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["report", "daily", "--storage", str(storage), "--from", "2026-11-24", "--to", "2026-11-27"])

    out = capsys.readouterr().out
    assert code == 0
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    assert rows["2026-11-24"][1:5] == ["8", "2", "2", "1/1"]
    assert rows["2026-11-24"][6:8] == ["+62.00", "8.00"]  # fees are a cost, unsigned
    assert rows["2026-11-27"][6] == "-111.00"
    assert rows["total"][6] == "-51.00"
    assert "by strategy:" in out and "meanrev" in out and "by underlying:" in out


def test_without_dates_it_reports_today_in_new_york(
    storage: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(report_command, "utc_now", lambda: ny(30, 23, 0))  # 04:00 UTC on Dec 1st

    assert main(["report", "daily", "--storage", str(storage), "--json"]) == 0

    [day] = json.loads(capsys.readouterr().out)
    assert (day["date"], day["realized_pnl"]) == ("2026-11-30", "48.00")


@pytest.mark.parametrize(
    ("args", "sentence"),
    [
        (["--date", "2026-13-01"], "--date '2026-13-01' is not a date in the form YYYY-MM-DD."),
        (["--from", "2026-11-27", "--to", "2026-11-24"], "--from 2026-11-27 is after --to 2026-11-24."),
        (["--date", "2026-11-24", "--from", "2026-11-24"], "Give either --date or --from/--to, not both."),
        (["--to", "2026-11-24"], "--to needs --from."),
    ],
)
def test_bad_dates_are_a_usage_error_in_one_sentence(
    storage: Path, capsys: pytest.CaptureFixture[str], args: list[str], sentence: str
) -> None:
    code = main(["report", "daily", "--storage", str(storage), *args])

    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert captured.err.strip().splitlines()[-1] == f"optiondesk: {sentence}"


def test_the_real_process_prints_only_json_on_stdout(storage: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bot", "report", "daily", "--storage", str(storage), "--date", "2026-11-27", "--json"],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)[0]["realized_pnl"] == "-111.00"
