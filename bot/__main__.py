"""Entry point: `python -m bot [command]` (see `python -m bot --help`)."""

import sys

from bot.bootstrap import ensure_environment

if __name__ == "__main__":
    ensure_environment("bot")
    from bot.cli import main

    sys.exit(main())
