"""The tear sheet of a backtest agrees with `python -m bot report daily` over the same folder; its CSV has one row per
fill and its chart is a PNG; the ratios are the textbook ones; the command prints only JSON with --json."""

from __future__ import annotations

import argparse
import asyncio
import csv
import itertools
import json
import subprocess
import sys
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from bot.analytics.tearsheet import max_drawdown, sharpe, sortino
from bot.cli.backtest import add_backtest_parser, backtest_command
from bot.options.market_hours import session_close, session_open
from bot.options.trade_ledger import TradeEvent, read_ledger
from bot.paths import PROJECT_ROOT, ledger_path
from bot.runtime.backtest import BacktestResult, run_backtest
from bot.settings import Settings

SEED = 5
FIRST, LAST = date(2026, 11, 24), date(2026, 11, 27)
CENT = Decimal("0.01")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> BacktestResult:
    folder = tmp_path_factory.mktemp("backtest")
    return asyncio.run(run_backtest(Settings(), folder, FIRST, LAST, seed=SEED))


def cents(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value).quantize(CENT)


def test_the_tear_sheet_agrees_with_report_daily_over_the_same_folder(run: BacktestResult) -> None:
    command = ["report", "daily", "--json", "--from", str(FIRST), "--to", str(LAST), "--storage", str(run.folder)]
    report = subprocess.run(
        [sys.executable, "-m", "bot", *command],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    days = json.loads(report.stdout)
    sheet = run.sheet
    assert sheet is not None

    assert (
        [d["date"] for d in days]
        == [str(d.day) for d in sheet.period.days]
        == ["2026-11-24", "2026-11-25", "2026-11-27"]
    )
    for day, ours in zip(days, sheet.period.days, strict=True):
        assert (cents(day["realized_pnl"]), cents(day["fees"]), day["trades"], day["positions_opened"]) == (
            ours.totals.realized_pnl.quantize(CENT),
            ours.totals.fees.quantize(CENT),
            ours.totals.trades,
            ours.positions_opened,
        )
    for row in sheet.strategies:
        theirs = [d["by_strategy"][row.name] for d in days if row.name in d["by_strategy"]]
        assert sum(Decimal(t["realized_pnl"]) for t in theirs).quantize(CENT) == row.tally.realized_pnl.quantize(CENT)
        assert sum(t["trades"] for t in theirs) == row.tally.trades
        assert (sum(t["wins"] for t in theirs), sum(t["losses"] for t in theirs)) == (row.tally.wins, row.tally.losses)
        worst = min((Decimal(t["largest_loss"]) for t in theirs if t["largest_loss"]), default=None)
        assert worst == row.tally.largest_loss
    total = sum((e.realized_pnl for e in run.fills), Decimal(0))
    assert sheet.desk.tally.realized_pnl.quantize(CENT) == total.quantize(CENT)
    assert sheet.desk.tally.trades == len(run.fills) == sum(d["trades"] for d in days) > 0


def test_drawdown_and_exposure_follow_the_fills(run: BacktestResult) -> None:
    sheet = run.sheet
    assert sheet is not None
    sessions = sum((session_close(d.day) - session_open(d.day) for d in sheet.period.days), timedelta(0))
    for row in sheet.strategies:
        fills = [e for e in run.fills if e.strategy == row.name]
        running, curve = Decimal(0), []
        for event in fills:
            running += event.realized_pnl
            curve.append(running)
        assert row.max_drawdown == max(max([Decimal(0), *curve[: i + 1]]) - v for i, v in enumerate(curve))
        # Each of these strategies holds one position at a time: its exposure is the sum of their lives.
        held = held_spans(fills)
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(held))
        assert row.exposure == pytest.approx(sum((end - start for start, end in held), timedelta(0)) / sessions)
    assert max(r.exposure for r in sheet.strategies) <= sheet.desk.exposure <= sum(r.exposure for r in sheet.strategies)


def held_spans(fills: list[TradeEvent]) -> list[tuple[object, object]]:
    opened = {e.position_id: e.ts for e in fills if e.kind.value == "open"}
    return sorted((opened[e.position_id], e.ts) for e in fills if e.position_qty == 0)


def test_the_trades_csv_has_one_row_per_fill_with_the_ledgers_fields(run: BacktestResult) -> None:
    events = read_ledger(ledger_path(run.folder)).events
    with run.files["trades.csv"].open(newline="") as file:
        rows = list(csv.DictReader(file))

    assert len(rows) == len(events) > 0
    # A backtest's lines carry no broker time or lifecycle event: the CSV has their columns, after the line's keys.
    assert list(rows[0]) == [*json.loads(ledger_path(run.folder).read_bytes().splitlines()[0]), "broker_ts", "event"]
    assert [(r["event_id"], Decimal(r["price"]), int(r["qty"])) for r in rows] == [
        (e.event_id, e.price, e.qty) for e in events
    ]


def test_the_equity_curve_is_a_png(run: BacktestResult) -> None:
    assert run.files["equity.png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sharpe_and_sortino_are_annualised_from_daily_pnl_as_empyrical_computes_them() -> None:
    daily = [12.5, -30.0, 45.2, 0.0, -10.0, 22.0]
    # empyrical-reloaded 0.7.1: sharpe_ratio(daily), sortino_ratio(daily) (daily period, no risk-free rate)
    assert sharpe(daily) == pytest.approx(4.015807201717863)
    assert sortino(daily) == pytest.approx(8.136078908171923)
    assert sharpe([5.0]) is None and sharpe([5.0, 5.0]) is None  # one day, or no variation
    assert sortino([5.0, 7.0]) is None  # no losing day
    assert max_drawdown([Decimal(-5), Decimal(10), Decimal(3), Decimal(12), Decimal(-1)]) == Decimal(13)


def parser() -> argparse.ArgumentParser:
    storage = argparse.ArgumentParser(add_help=False)
    storage.add_argument("--storage", type=Path, default=argparse.SUPPRESS)
    top = argparse.ArgumentParser(prog="python -m bot")
    add_backtest_parser(top.add_subparsers(dest="command"), storage)
    return top


def test_the_command_prints_only_json_and_makes_its_own_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = parser().parse_args(["backtest", "--from", "2026-11-25", "--to", "2026-11-25", "--seed", "5", "--json"])

    assert backtest_command(Settings(), tmp_path, args) == 0

    out = json.loads(capsys.readouterr().out)
    folder = Path(out["folder"])
    assert folder.parent == tmp_path / "backtests" and folder.name.startswith("2026-11-25_2026-11-25_seed5_")
    assert out["days_done"] == 1 and out["fills"] == len(read_ledger(ledger_path(folder)).events) > 0
    assert out["tear_sheet"]["total"]["trades"] == out["fills"]
    assert Decimal(out["tear_sheet"]["total"]["realized_pnl"]).as_tuple().exponent == -2  # at cents


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = parser().parse_args(["backtest", "--from", "2026-11-25", "--to", "2026-11-24"])
    assert backtest_command(Settings(), tmp_path, args) == 2
    assert "--from 2026-11-25 is after --to 2026-11-24" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        parser().parse_args(["backtest", "--from", "2026-11-25", "--to", "2026-11-25", "--seed", "1", "--replay", "f"])
    assert usage.value.code == 2
