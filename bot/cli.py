"""The command line: `python -m bot [command]`. Logs go to stderr; `--json` output alone to stdout."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from bot.options.ledger_verify import verify_events
from bot.options.trade_ledger import LedgerError, read_ledger
from bot.paths import default_storage, ledger_path
from bot.render import ledger_summary

log = logging.getLogger("bot")

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE = 0, 1, 2


def _storage(value: str) -> Path:
    path = Path(value)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def build_parser() -> argparse.ArgumentParser:
    storage = argparse.ArgumentParser(add_help=False)
    storage.add_argument(
        "--storage",
        type=_storage,
        default=argparse.SUPPRESS,
        help="storage directory (default: storage/ at the project root or $OPTIONDESK_STORAGE_DIR)",
    )
    parser = argparse.ArgumentParser(
        prog="python -m bot", description="optiondesk, the options trade-desk bot.", parents=[storage]
    )
    commands = parser.add_subparsers(dest="command", metavar="command")
    commands.add_parser("session", parents=[storage], help="run a short scripted paper session (the default)")
    ledger = commands.add_parser("ledger", help="inspect the trade ledger")
    ledger_commands = ledger.add_subparsers(dest="ledger_command", metavar="command", required=True)
    ledger_commands.add_parser("verify", parents=[storage], help="replay the ledger and check every invariant")
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    storage: Path = args.storage if getattr(args, "storage", None) else _storage(str(default_storage()))
    if args.command == "ledger":
        return verify_ledger(storage)
    from bot.paper_session import run_paper_session

    asyncio.run(run_paper_session(storage))
    return EXIT_OK


def verify_ledger(storage: Path) -> int:
    path = ledger_path(storage)
    try:
        contents = read_ledger(path)
    except LedgerError as error:
        print(f"ledger {path}: {error}")
        return EXIT_PROBLEM
    report = verify_events(contents.events)
    print(f"ledger {path}")
    print(ledger_summary(report, torn_tail=len(contents.torn_tail)))
    return EXIT_OK if report.ok else EXIT_PROBLEM
