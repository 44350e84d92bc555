"""`python -m bot backtest` as a clumsy operator runs it: a range with no trading day, a replay file that is empty or
not one, a strategy that is not configured, a grid whose combinations would all be the same backtest or whose folder
names would not fit. Each is one line and leaves no folder behind for nothing to read."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.paths import PROJECT_ROOT
from bot.runtime.backtest_grid import combinations
from bot.settings import Settings

STOP_LOSS = "strategies.0.exits.stop_loss_pct"


def backtest(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The command as an operator runs it, on the default settings, its storage under `tmp_path`."""
    environment = {
        "PATH": "/usr/bin:/bin",
        "OPTIONDESK_CONFIG_FILE": str(tmp_path / "none.toml"),
        "OPTIONDESK_STORAGE_DIR": str(tmp_path / "desk"),
    }
    return subprocess.run(
        [sys.executable, "-m", "bot", "backtest", *args],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


def replay_file(tmp_path: Path, name: str, content: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(content)
    return str(path)


FAILED_STARTS: list[tuple[list[str], str]] = [
    (["--from", "2026-11-26", "--to", "2026-11-26"], "there is no trading day from 2026-11-26 to 2026-11-26"),
    (["--from", "2026-11-28", "--to", "2026-11-29", "--json"], "there is no trading day from 2026-11-28"),
    (["--from", "2026-11-24", "--to", "2026-11-24", "--strategy", "nope"], "no strategy named nope"),
    (["--from", "2026-11-24", "--to", "2026-11-24", "--replay", "{garbage}"], "the header has no 'ts' or 'symbol'"),
    (["--from", "2026-11-24", "--to", "2026-11-24", "--replay", "{empty}"], "the replay file has no quotes from"),
    (["--from", "2026-11-24", "--to", "2026-11-24", "--replay", "{missing}"], "no such replay file"),
]


@pytest.mark.parametrize("own", [False, True], ids=["under backtests/", "--storage"])
@pytest.mark.parametrize(("args", "said"), FAILED_STARTS, ids=[said for _, said in FAILED_STARTS])
def test_a_backtest_that_cannot_start_is_one_line_and_leaves_no_folder(
    tmp_path: Path, args: list[str], said: str, own: bool
) -> None:
    files = {
        "garbage": replay_file(tmp_path, "garbage.csv", b"garbage\nmore\n"),
        "empty": replay_file(tmp_path, "empty.csv", b"ts,symbol,bid,ask,last,bid_size,ask_size\n"),
        "missing": str(tmp_path / "missing.csv"),
    }
    given = ["--storage", str(tmp_path / "bt")] if own else []

    done = backtest(tmp_path, *[a.format(**files) for a in args], *given)

    assert done.returncode == 1, done.stderr
    [line] = [line for line in done.stderr.splitlines() if line.startswith("optiondesk:")]
    assert said in line and "Traceback" not in done.stderr
    assert done.stdout == ""
    assert not (tmp_path / "desk").exists() and not (tmp_path / "bt").exists()


def test_a_backtests_own_folder_is_kept_when_going_on_with_it_fails(tmp_path: Path) -> None:
    # A folder the operator gave, holding a backtest already, is theirs: a failed run leaves it as it was.
    own = tmp_path / "bt"
    days = ["--from", "2026-11-24", "--to", "2026-11-24", "--seed", "5", "--storage", str(own)]
    assert backtest(tmp_path, *days).returncode == 0
    before = sorted(p.relative_to(own) for p in own.rglob("*") if p.name != "desk.lock")

    again = backtest(tmp_path, *days)

    assert again.returncode == 1 and "already has trades" in again.stderr
    assert sorted(p.relative_to(own) for p in own.rglob("*") if p.name != "desk.lock") == before


# The grid -------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("market", "said"),
    [
        (["--seed", "5"], "--set market.seed and --seed both choose the seed; leave one out"),
        (["--replay", "quotes.csv"], "--set market.seed changes nothing on --replay (recorded quotes have no seed)"),
    ],
)
def test_a_grid_over_the_seed_that_another_option_overrides_runs_nothing(
    tmp_path: Path, market: list[str], said: str
) -> None:
    # Every combination would run the same market under different labels.
    (tmp_path / "quotes.csv").write_text("ts,symbol,bid,ask,last,bid_size,ask_size\n")
    market = [str(tmp_path / a) if a.endswith(".csv") else a for a in market]

    done = backtest(tmp_path, "--from", "2026-11-24", "--to", "2026-11-24", *market, "--set", "market.seed=1,2")

    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [f"optiondesk: {said}"]
    assert not (tmp_path / "desk").exists()


def test_a_value_given_twice_runs_nothing(tmp_path: Path) -> None:
    done = backtest(tmp_path, "--from", "2026-11-24", "--to", "2026-11-24", "--set", f"{STOP_LOSS}=30,40,30")

    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [f"optiondesk: --set {STOP_LOSS} gives 30 more than once"]
    assert not (tmp_path / "desk").exists()


def test_a_combinations_folder_name_fits_the_file_system_however_many_keys(tmp_path: Path) -> None:
    ladder = "[[10,20],[30,40],[50,60],[70,80],[90,100]]"
    grid = [
        ("strategies.0.exits.profit_ladder", [ladder]),
        ("strategies.1.exits.profit_ladder", [ladder]),
        ("strategies.0.exits.trailing_activation_pct", ["20", "30"]),
        ("strategies.1.exits.trailing_activation_pct", ["20"]),
        ("strategies.0.exits.time_stop_minutes", ["10"]),
    ]

    chosen = combinations(Settings(), grid, tmp_path)

    for combination in chosen:
        combination.folder.mkdir()  # a name past the file system's 255 bytes would fail here
    assert [c.folder.name[:3] for c in chosen] == ["01_", "02_"]
    assert chosen[0].folder.name.startswith("01_strategies.0.exits.profit_ladder=")
