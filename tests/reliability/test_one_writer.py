"""One writer per storage folder, the demo in its own folder, read-only commands that write nothing, and bad
paths, dates and interrupts answered with one line: real `python -m bot` processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bot.paths import PROJECT_ROOT, StorageError, ledger_path
from bot.storage_lock import LOCK_FILE, StorageLock, read_holder
from tests.resume.harness import BotRun, bot_env, wait_until

DAY = "2026-11-25"


def bot(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=120,
        env=env or quiet_env(),
    )


def quiet_env(**extra: str) -> dict[str, str]:
    """The machine's environment without Discord and without the operator's OPTIONDESK_ settings."""
    env = {k: v for k, v in bot_env().items() if not k.startswith("OPTIONDESK_")}
    return env | extra


def files_of(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under `folder` with its size and modification time: what a write would change."""
    return {
        str(path.relative_to(folder)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr
    return lines[-1]


@pytest.fixture
def desk_running(tmp_path: Path):
    """A `python -m bot run` holding `tmp_path/desk`, trading on the simulated market."""
    storage = tmp_path / "desk"
    run = BotRun(storage, tmp_path / "logs", "desk")
    run.wait_started()
    yield storage, run
    run.kill()


@pytest.mark.parametrize(
    "command",
    [("run", "--speed", "600", "--seed", "3"), ("demo", "--seed", "3", "--date", DAY), ("reconcile", "--apply")],
    ids=["run", "demo", "reconcile-apply"],
)
def test_a_second_writer_is_refused_with_the_holder_named_and_the_books_stay_intact(desk_running, command):
    storage, desk = desk_running
    assert wait_until(lambda: (storage / "message_ids.json").exists(), 120), "the desk never traded"
    second = bot(*command, "--storage", str(storage))

    assert second.returncode == 1
    line = one_line(second.stderr)
    assert f"is in use by pid {desk.process.pid}" in line
    assert "python -m bot run" in line
    # The running desk is untouched and stops cleanly: its ledger verifies and names every position its map has.
    assert desk.stop() == 0
    verify = bot("ledger", "verify", "--storage", str(storage))
    assert verify.returncode == 0, verify.stdout
    messages = json.loads((storage / "message_ids.json").read_text())["messages"]
    positions = {json.loads(line)["position_id"] for line in ledger_path(storage).read_text().splitlines()}
    assert set(messages) <= positions


def test_a_killed_writer_never_blocks_the_next_start(tmp_path):
    storage = tmp_path / "desk"
    first = BotRun(storage, tmp_path / "logs", "first")
    first.wait_started()
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(30)
    assert (storage / LOCK_FILE).exists()  # the note stays behind; the kernel's lock went with the process

    assert read_holder(storage) is None
    second = BotRun(storage, tmp_path / "logs", "second")
    second.wait_started()
    assert second.stop() == 0


def test_a_read_only_command_names_the_running_desk_in_nothing_it_writes(desk_running):
    storage, desk = desk_running
    holder = read_holder(storage)

    assert holder is not None
    assert holder.pid == desk.process.pid
    assert holder.command == "python -m bot run"


def test_the_lock_is_per_folder_and_released_on_exit(tmp_path):
    desk, other = tmp_path / "desk", tmp_path / "other"
    desk.mkdir()
    other.mkdir()
    with StorageLock(desk, "python -m bot run"):
        with StorageLock(other, "python -m bot demo"):  # another folder: no contention
            assert read_holder(other) is not None
        with pytest.raises(StorageError, match="is in use by pid"):
            StorageLock(desk, "python -m bot demo").acquire()
    assert read_holder(desk) is None
    StorageLock(desk, "python -m bot demo").acquire().release()


def test_the_demo_without_storage_trades_in_its_own_folder_never_the_desks(tmp_path):
    env = quiet_env(OPTIONDESK_STORAGE_DIR=str(tmp_path))
    demo = bot("demo", "--seed", "3", "--date", DAY, env=env)

    assert demo.returncode == 0, demo.stderr
    assert not ledger_path(tmp_path).exists()
    assert ledger_path(tmp_path / "demo").stat().st_size > 0
    # And again: the demo goes on in its folder (the next trading day).
    assert bot("demo", "--seed", "3", env=env).returncode == 0


def test_the_demo_refuses_a_desks_storage_and_writes_nothing_there(tmp_path):
    desk = tmp_path / "desk"
    desk_demo = bot("demo", "--storage", str(tmp_path / "scratch"), "--seed", "3", "--date", DAY)
    assert desk_demo.returncode == 0
    # A desk's books: trades with no demo mark on the folder.
    ledger_path(desk).parent.mkdir(parents=True)
    ledger_path(desk).write_bytes(ledger_path(tmp_path / "scratch").read_bytes())
    before = files_of(desk)

    demo = bot("demo", "--storage", str(desk), "--seed", "3", "--date", "2026-11-27")

    assert demo.returncode == 1
    assert "holds a desk's trades" in one_line(demo.stderr)
    assert {name: size for name, (size, _) in files_of(desk).items() if name != LOCK_FILE} == {
        name: size for name, (size, _) in before.items()
    }


def test_a_discord_desk_refuses_the_demos_folder_before_connecting(tmp_path):
    assert bot("demo", "--storage", str(tmp_path), "--seed", "3", "--date", DAY).returncode == 0

    desk = bot("run", "--storage", str(tmp_path), env=quiet_env(DISCORD_TOKEN="not-a-real-token"))

    assert desk.returncode == 1
    assert "the offline demo's folder" in one_line(desk.stderr)


@pytest.mark.parametrize("token", [{"DISCORD_TOKEN": "not-a-real-token"}, {}], ids=["discord", "offline"])
def test_a_desk_refuses_a_backtests_folder_and_writes_nothing(tmp_path, token):
    assert bot("backtest", "--from", DAY, "--to", DAY, "--storage", str(tmp_path), "--seed", "3").returncode == 0
    before = files_of(tmp_path)

    desk = bot("run", "--storage", str(tmp_path), env=quiet_env(**token))

    assert desk.returncode == 1
    assert "a backtest's folder" in one_line(desk.stderr)
    assert files_of(tmp_path) == before


@pytest.mark.parametrize(
    "command", [("positions",), ("positions", "--json"), ("ledger", "verify"), ("report", "daily", "--date", DAY)]
)
def test_read_only_commands_write_nothing(tmp_path, command):
    storage = tmp_path / "desk"
    assert bot("demo", "--storage", str(storage), "--seed", "3", "--date", DAY).returncode == 0
    before = files_of(storage)

    result = bot(*command, "--storage", str(storage))

    assert result.returncode == 0, result.stderr
    assert files_of(storage) == before
    missing = bot(*command, "--storage", str(tmp_path / "missing"))
    assert missing.returncode == 0, missing.stderr
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize(
    "command",
    [("positions",), ("ledger", "verify"), ("report", "daily"), ("demo",), ("run",), ("status",), ("state",)],
)
@pytest.mark.parametrize("target", ["file", "/dev/null"])
def test_a_storage_that_is_not_a_folder_is_one_line_and_exit_1(tmp_path, command, target):
    path = tmp_path / "a-file" if target == "file" else Path(target)
    if target == "file":
        path.write_text("not a folder\n")

    result = bot(*command, "--storage", str(path))

    assert result.returncode == 1
    assert f"storage {path} is not a folder" in one_line(result.stderr)


def test_a_writer_makes_its_storage_owner_only(tmp_path):
    storage = tmp_path / "desk"
    storage.mkdir(mode=0o755)
    storage.chmod(0o755)  # as git leaves storage/ in a clone

    assert bot("demo", "--storage", str(storage), "--seed", "3", "--date", DAY).returncode == 0

    assert storage.stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01"])
def test_a_date_outside_the_calendar_is_one_line_and_a_usage_error(tmp_path, day):
    result = bot("demo", "--storage", str(tmp_path), "--date", day)

    assert result.returncode == 2
    assert "outside the market calendar" in one_line(result.stderr)
    assert not ledger_path(tmp_path).exists()


def test_ctrl_c_twice_stops_without_a_traceback(tmp_path):
    run = BotRun(tmp_path / "desk", tmp_path / "logs", "desk")
    run.wait_started()
    run.process.send_signal(signal.SIGINT)
    run.process.send_signal(signal.SIGINT)

    code = run.process.wait(60)

    assert code in (0, 130)
    assert "Traceback" not in run.stderr
    assert wait_until(lambda: not os.path.exists(f"/proc/{run.process.pid}"), 10)


@pytest.mark.parametrize(
    ("flags", "named"),
    [(("--replay", "quotes.csv"), "--replay"), (("--speed", "600"), "--speed")],
)
def test_run_on_discord_refuses_a_flag_it_cannot_honour(tmp_path, flags, named):
    result = bot("run", "--storage", str(tmp_path / "desk"), *flags, env=quiet_env(DISCORD_TOKEN="not-a-real-token"))

    assert result.returncode == 2
    line = one_line(result.stderr)
    assert named in line and "wall time" in line
    assert not (tmp_path / "desk").exists()  # refused before anything was made


def test_run_on_discord_takes_the_seed_for_its_simulated_market() -> None:
    from argparse import Namespace

    from bot.cli.run import discord_run_settings
    from bot.settings import Settings

    settings = discord_run_settings(Settings(), Namespace(command="run", seed=11, speed=1.0, replay=None))

    assert settings.market.seed == 11
