"""SIGKILL at random moments, not only at the named crash points: the real `python -m bot run` is killed a few
times, each at a moment drawn from a seeded generator, restarted with the same command each time, then stopped
cleanly. Nothing may be lost or written twice, and no position gets a second message (tests/resume/harness.py)."""

from __future__ import annotations

import random
import time
from pathlib import Path

from tests.resume.harness import BotRun, assert_resumed_consistently, run_and_stop

SEED = 20261125
KILLS = 3
# Seconds after start-up: at --speed 600 the simulated market trades within the first second or two.
KILL_AFTER = [round(random.Random(SEED).uniform(0.3, 2.5), 2) for _ in range(KILLS)]


def test_the_bot_killed_at_random_moments_resumes_with_nothing_lost(tmp_path: Path) -> None:
    storage, logs = tmp_path / "storage", tmp_path / "logs"
    runs: list[BotRun] = []
    for number, delay in enumerate(KILL_AFTER):
        run = BotRun(storage, logs, f"killed-{number}")
        runs.append(run)
        try:
            run.wait_started()
            time.sleep(delay)  # a real process on the real clock: the moment of the kill is the point
        finally:
            run.kill()
        assert run.process.returncode == -9, f"{run.name} ended before its kill:\n{run.stderr}"

    final = run_and_stop(storage, logs, "after-the-kills", more_lines=1)

    events = assert_resumed_consistently(storage, [r.stdout for r in [*runs, final]])
    assert events, "nothing was traded"
