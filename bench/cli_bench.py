"""Start-up benchmark: the read-only commands against a bare interpreter, in the same run.

An operator types `python -m bot status` (or `positions`, `ledger verify`, `report daily`, `state`) and waits for
the answer; what they wait for is mostly imports. Each command runs as its own process on a storage holding one
demo day, against `python -c pass` of the same interpreter, interleaved round by round; the medians count.
Last line: {"cli_vs_bare": slowest command / bare, "bare_s", and "<command>_s" per command}.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Interleaved rounds: the slowest of five medians is pulled up by a shared machine's noise, less so with more of them.
ROUNDS = 21
DAY = "2026-11-25"
COMMANDS = {
    "positions": ("positions",),
    "status": ("status",),
    "state": ("state",),
    "ledger_verify": ("ledger", "verify"),
    "report_daily": ("report", "daily", "--date", DAY),
}


def environment(storage: Path) -> dict[str, str]:
    """The machine's environment without its optiondesk settings: the shipped defaults, this storage. Python writes its
    bytecode caches, as on an installed desk: with PYTHONDONTWRITEBYTECODE set (as some shells and CI images have it) a
    fresh clone would compile every module at every start, and the bench would time the compiler."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("OPTIONDESK_") and k not in ("DISCORD_TOKEN", "PYTHONDONTWRITEBYTECODE")
    }
    return env | {"OPTIONDESK_STORAGE_DIR": str(storage), "OPTIONDESK_CONFIG_FILE": str(storage / "no-settings.toml")}


def timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="optiondesk-cli-bench-") as folder:
        storage = Path(folder) / "desk"
        env = environment(storage)
        # A desk's books: a demo day traded into its own folder, then taken as the desk's (no demo mark).
        subprocess.run(
            [sys.executable, "-m", "bot", "demo", "--storage", str(storage), "--seed", "5", "--date", DAY],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            check=True,
        )
        bare = [sys.executable, "-c", "pass"]
        for args in COMMANDS.values():  # a round not counted: each command's caches written, its files read once
            timed([sys.executable, "-m", "bot", *args], env)
        times: dict[str, list[float]] = {"bare": [], **{name: [] for name in COMMANDS}}
        for _ in range(ROUNDS):
            times["bare"].append(timed(bare, env))
            for name, args in COMMANDS.items():
                times[name].append(timed([sys.executable, "-m", "bot", *args], env))
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, seconds in medians.items():
        print(f"{name:15} {seconds * 1000:7.0f} ms", file=sys.stderr)
    slowest = max(seconds for name, seconds in medians.items() if name != "bare")
    result = {"cli_vs_bare": round(slowest / medians["bare"], 2), "bare_s": round(medians["bare"], 4)}
    result |= {f"{name}_s": round(seconds, 4) for name, seconds in medians.items() if name != "bare"}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
