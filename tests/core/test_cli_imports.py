"""The read-only commands start without the heavy libraries: each command imports what it needs when it runs, and a
desk-sized ledger is reported by the pure model, not through polars and DuckDB (bench/cli_bench.py times it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bot.analytics import ledger_scan
from bot.analytics.daily import checked_events, daily_reports
from bot.analytics.ledger_scan import scan_ledger
from bot.cli import COMMANDS, build_parser, main
from bot.paths import PROJECT_ROOT, ledger_path
from tests.analytics.ledgers import NEW_YORK, LedgerWriter, four_days

HEAVY = (
    "discord",
    "aiohttp",
    "polars",
    "duckdb",
    "matplotlib",
    "alpaca",
    "aiosqlite",
    "apscheduler",
    "holidays",
    "asyncio",
    "pydantic_settings",
    "portalocker",
    "numpy",
    "sqlite3",
    "pydantic",
    "typing_extensions",
    # Of the standard library, what a start of 3x a bare interpreter has no room for (bench/cli_bench.py): making a
    # dataclass costs Python 3.11 some 1.5 ms, and dataclasses (with inspect) and logging some 8 ms each to import.
    "dataclasses",
    "inspect",
    "logging",
)
# Runs one command in a fresh interpreter, then names the heavy libraries it imported.
PROBE = """
import json, sys
from bot.cli import COMMANDS, build_parser, main
code = main(sys.argv[1:])
print(json.dumps([code, sorted(name for name in {heavy} if name in sys.modules)]), file=sys.stderr)
"""


@pytest.fixture
def storage(tmp_path: Path) -> Path:
    four_days(LedgerWriter(ledger_path(tmp_path)))
    assert main(["state", "--set", "active", "--reason", "a desk's books", "--storage", str(tmp_path)]) == 0
    return tmp_path


@pytest.mark.parametrize(
    "command",
    [["positions"], ["status"], ["state"], ["ledger", "verify"], ["report", "daily", "--from", "2026-11-24"]],
    ids=" ".join,
)
def test_a_read_only_command_imports_no_heavy_library(storage: Path, command: list[str]):
    env = {"PATH": "/usr/bin:/bin", "OPTIONDESK_CONFIG_FILE": str(storage / "none.toml")}
    probe = PROBE.format(heavy=HEAVY)
    done = subprocess.run(
        [sys.executable, "-c", probe, *command, "--storage", str(storage)],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    code, imported = json.loads(done.stderr.strip().splitlines()[-1])
    assert code == 0, done.stderr
    assert imported == []


def test_a_ledger_below_pure_below_is_reported_by_the_pure_model_and_a_larger_one_by_the_fast_read(
    storage: Path, monkeypatch: pytest.MonkeyPatch
):
    path = ledger_path(storage)
    pure = daily_reports(checked_events(path).events, NEW_YORK)
    fast_reads: list[Path] = []
    fast = ledger_scan._fills
    monkeypatch.setattr(
        ledger_scan, "_fills", lambda path, *args, **kw: fast_reads.append(path) or fast(path, *args, **kw)
    )

    small = scan_ledger(path, NEW_YORK)
    monkeypatch.setattr(ledger_scan, "PURE_BELOW", path.stat().st_size)
    large = scan_ledger(path, NEW_YORK)

    assert small.reports == pure and large.reports == pure
    assert fast_reads == [path]  # only the ledger at PURE_BELOW took the fast read


@pytest.mark.parametrize(
    "words",
    [
        ["status", "--json"],
        ["--storage", "positions", "status"],
        ["report", "daily", "--date", "2026-11-25"],
        ["ledger", "verify"],
        ["state", "--set", "halted", "--reason", "a test"],
        ["--seed", "5"],
        ["demo", "--seed", "5"],
        ["backtest", "--from", "2026-11-23", "--to", "2026-11-25"],
    ],
    ids=" ".join,
)
def test_a_command_line_parses_as_it_would_with_every_command_built(words: list[str]):
    assert build_parser(words).parse_args(words) == build_parser().parse_args(words)


@pytest.mark.parametrize("words", [["--help"], ["-h", "status"], ["--he", "positions"]], ids=" ".join)
def test_the_help_lists_every_command_whichever_the_line_names(words: list[str], capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit):
        build_parser(words).parse_args(words)

    listed = capsys.readouterr().out
    assert [command for command in COMMANDS if f"    {command} " not in listed] == []
