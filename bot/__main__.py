"""Entry point: `python -m bot [command]` (see `python -m bot --help`)."""

import sys

from bot.bootstrap import ensure_environment

if __name__ == "__main__":
    ensure_environment("bot")
    from bot.cli import main

    code = 1  # a traceback (a bug) ends in 1
    try:
        code = main()
    finally:
        # Whatever a thread left running waits for, the process ends: a leftover must never keep it alive. A command
        # that never imported threading (a read-only one) has no thread to wait for.
        if "threading" in sys.modules:
            from bot.runtime.lifetime import exit_after

            exit_after(10.0, code, "the process")
    sys.exit(code)
