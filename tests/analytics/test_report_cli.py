"""`python -m bot report daily`: the table, the JSON fields, the default day and the usage errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from bot.analytics import ledger_scan
from bot.analytics.ledger_scan import scan_ledger
from bot.cli import main
from bot.options import clock
from bot.paths import PROJECT_ROOT
from tests.analytics.ledgers import NEW_YORK, LedgerWriter, four_days, ny
from tests.analytics.test_fast_scan_agrees import steps, write_random_ledger


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
    monkeypatch.setattr(clock, "utc_now", lambda: ny(30, 23, 0))  # 04:00 UTC on Dec 1st

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
        (
            ["--from", "0001-01-01", "--to", "2026-11-24"],
            "--from 0001-01-01 is outside the market calendar (1990-01-01 to 2099-12-31).",
        ),
        (["--date", "9999-12-31"], "--date 9999-12-31 is outside the market calendar (1990-01-01 to 2099-12-31)."),
        (
            ["--from", "2000-01-01", "--to", "2026-11-24"],
            "--from 2000-01-01 --to 2026-11-24 is 9825 days, a table of more than 3 years; "
            "give a shorter range, or --json",
        ),
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


def test_a_long_range_is_reported_as_json(storage: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["report", "daily", "--storage", str(storage), "--from", "2020-01-01", "--to", "2026-11-24", "--json"])

    assert code == 0
    assert json.loads(capsys.readouterr().out)[0]["date"] == "2020-01-02"  # the first trading day of the range


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


# --- a ledger that does not verify ------------------------------------------------------------------------------


def damage(storage: Path, number: int, old: bytes, new: bytes | None) -> Path:
    """Line `number` of the ledger with `old` replaced by `new` (None: the whole line becomes `old`)."""
    path = storage / "options" / "trade_events.jsonl"
    lines = path.read_bytes().split(b"\n")
    assert new is None or old in lines[number - 1]
    lines[number - 1] = old if new is None else lines[number - 1].replace(old, new)
    path.write_bytes(b"\n".join(lines))
    return path


WHOLE_WEEK = ["--from", "2026-11-24", "--to", "2026-11-30"]


@pytest.mark.parametrize(
    ("number", "old", "new"),
    [
        (4, b"#@! not json", None),
        (4, b'{"v":1,"event_id":"evt-4","ts":"2026-11-24T15:30:00Z","kind":"open","posi', None),  # cut short
        (4, b"", None),  # an empty line, which the JSON reader would skip
        (4, b"   ", None),
        (8, b"", None),  # a close blanked: its position only looks still open, so the count of lines tells
        (4, b'{"v":1,"event_id":"evt-4"', b'\n{"v":1,"event_id":"evt-4"'),  # an empty line added, none lost
        (4, b'"realized_pnl":', b'"pnl":'),  # a field missing
        (4, b'"side":"buy"', b'"side":"hold"'),
        (5, b'"qty":5', b'"qty":50'),  # a sell of more than is open: it cannot be replayed
        (6, b'"qty":3', b'"qty":4'),
        (6, b'"price":"1.00"', b'"price":"1.10"'),
        (6, b'"fees":"1"', b'"fees":"2"'),
        (6, b'"realized_pnl":"-55.00"', b'"realized_pnl":"-45.00"'),
        (6, b'"realized_pnl_total":"101.00"', b'"realized_pnl_total":"111.00"'),
        (6, b'"position_qty":2', b'"position_qty":3'),
        (6, b'"avg_entry":"1.180000"', b'"avg_entry":"1.280000"'),
        (6, b'"kind":"trim"', b'"kind":"close"'),
        (6, b'"side":"sell"', b'"side":"buy"'),
        (6, b'"underlying":"SPY"', b'"underlying":"QQQ"'),
    ],
)
def test_a_ledger_with_a_damaged_middle_line_is_refused_in_one_line_naming_the_file_and_line(
    storage: Path, capsys: pytest.CaptureFixture[str], number: int, old: bytes, new: bytes | None
) -> None:
    path = damage(storage, number, old, new)

    code = main(["report", "daily", "--storage", str(storage), *WHOLE_WEEK, "--json"])

    captured = capsys.readouterr()
    assert (code, captured.out) == (1, "")
    [line] = captured.err.strip().splitlines()
    assert line.startswith(f"optiondesk: {path}: line {number} ") and "--best-effort" in line


def test_a_fill_that_names_another_strategy_counts_for_its_positions(
    storage: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # As the replay counts it: a position's fills are its strategy's, whatever a damaged line says.
    damage(storage, 6, b'"strategy":"orb"', b'"strategy":"meanrev"')

    code = main(["report", "daily", "--storage", str(storage), *WHOLE_WEEK, "--json"])

    tuesday = json.loads(capsys.readouterr().out)[0]
    assert code == 0
    assert (tuesday["by_strategy"]["orb"]["trades"], tuesday["by_strategy"]["meanrev"]["trades"]) == (6, 2)


def test_with_best_effort_the_report_leaves_out_what_it_cannot_read_or_replay_and_warns(
    storage: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Line 4 opened position b; its close (line 8) then has nothing to sell and cannot be replayed either.
    path = damage(storage, 4, b"#@! not json", None)

    code = main(["report", "daily", "--storage", str(storage), *WHOLE_WEEK, "--json", "--best-effort"])

    captured = capsys.readouterr()
    assert code == 0
    [warning] = [line for line in captured.err.splitlines() if line.startswith("optiondesk: warning:")]
    assert f"{path}: line 4 is not a valid trade event" in warning and "(and 1 more)" in warning
    tuesday = json.loads(captured.out)[0]
    # Position a alone: three buys and three sells, one win; b's open and close are left out.
    assert (tuesday["trades"], tuesday["realized_pnl"], tuesday["wins"], tuesday["losses"]) == (6, "264.00", 1, 0)


def test_a_ledger_that_verifies_is_reported_by_the_fast_read(
    storage: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    # The checks that send a damaged ledger to the pure model let a whole one through (strategy, underlying,
    # partial fills, positions over days), so the fast read still does the work.
    assert main(["report", "daily", "--storage", str(storage), *WHOLE_WEEK, "--json"]) == 0

    assert "pure model" not in caplog.text
    assert capsys.readouterr().err == ""


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=steps)
def test_every_ledger_the_desk_writes_passes_the_fast_reads_checks(
    tmp_path_factory: pytest.TempPathFactory, plan: list[tuple[int, bool, int, int, int, int]]
) -> None:
    path = tmp_path_factory.mktemp("ledger") / "trade_events.jsonl"
    write_random_ledger(path, plan)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ledger_scan, "checked_events", refuse_the_pure_model)
        scan_ledger(path, NEW_YORK)


def refuse_the_pure_model(path: Path, *, best_effort: bool = False) -> None:
    raise AssertionError(f"{path} went to the pure model")
