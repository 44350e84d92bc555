"""`python3 -m tests` runs the whole test suite, setting up .venv on a fresh clone first."""

import os
import sys

from bot.bootstrap import ROOT, ensure_environment

if __name__ == "__main__":
    ensure_environment("tests")
    os.chdir(ROOT)
    # pytest itself exits non-zero when no test ran (exit code 5), so that cannot pass as success.
    os.execv(sys.executable, [sys.executable, "-m", "pytest", *sys.argv[1:]])
