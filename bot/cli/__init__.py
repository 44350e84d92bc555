"""The command line: `python -m bot [command]`. Logs go to stderr; with `--json`, stdout holds only JSON.

One module per command group; each imports what its command needs when it runs, so a command that only reads
(positions, status, state, ledger verify, report daily) starts without discord, aiohttp, polars or duckdb.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Collection
from pathlib import Path

from bot.cli.common import EXIT_BROKEN_PIPE, EXIT_INTERRUPTED, EXIT_PROBLEM, EXIT_USAGE, UsageError, folder

COMMANDS = frozenset(
    {"demo", "run", "positions", "ledger", "reconcile", "report", "state", "status", "backtest", "data"}
)


def build_parser(words: Collection[str] = ()) -> argparse.ArgumentParser:
    """The parser of the command line whose `words` are given: of the commands, only those among the words get theirs
    (all sixteen parsers take argparse 3 to 6 ms, where a read-only command has some 90 ms in all), or every one when
    the words name none or ask for help (the demo, `--help`, a command mistyped)."""
    named = set(words) & COMMANDS
    if not named or any(word.startswith(("-h", "--h")) for word in words):  # --he is --help too
        named = set(COMMANDS)
    storage = argparse.ArgumentParser(add_help=False)
    storage.add_argument(
        "--storage",
        type=Path,
        default=argparse.SUPPRESS,
        help="storage directory (default: $OPTIONDESK_STORAGE_DIR, storage_dir in the settings, or storage/; "
        "the demo's: storage/demo under it)",
    )
    seed = argparse.ArgumentParser(add_help=False)
    seed.add_argument("--seed", type=int, default=argparse.SUPPRESS, help="seed of the simulated market")
    parser = argparse.ArgumentParser(
        prog="python -m bot",
        description="optiondesk, the options trade-desk bot. Without a command: the offline demo day.",
        parents=[storage, seed],
    )
    commands = parser.add_subparsers(dest="command", metavar="command")
    # Each group's module too is imported only when one of its commands is named.
    if named & {"demo", "run"}:
        from bot.cli import run

        run.add_parsers(commands, storage, seed)
    if named & {"positions", "ledger"}:
        from bot.cli import ledger

        ledger.add_parsers(commands, storage)
    if "reconcile" in named:
        from bot.cli import reconcile

        reconcile.add_parser(commands, storage)
    if "report" in named:
        from bot.cli import report

        report.add_report_parser(commands, storage)
    if named & {"state", "status"}:
        from bot.cli import desk_state

        desk_state.add_commands(commands, storage)
    if "backtest" in named:
        from bot.cli import backtest

        backtest.add_backtest_parser(commands, storage)
    if "data" in named:
        from bot.cli import data

        data.add_data_parser(commands, storage)
    return parser


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    args = build_parser(words).parse_args(words)
    if not _reads_only(args):
        import logging  # a command that only reads says its few warnings in lines of its own (common.warn)

        logging.basicConfig(
            stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    # Imported here, not above: `--help` and a usage error need neither the settings nor the ledger.
    from bot.options.trade_event import LedgerError
    from bot.paths import StorageError
    from bot.settings import SettingsError

    try:
        code = _command(args)
        sys.stdout.flush()  # what a closed pipe cannot take fails here, not in the interpreter's last flush
        return code
    except BrokenPipeError:
        return _reader_gone()
    except OSError as error:  # one line, never a traceback; the storage's own are StorageErrors
        # A write to stdout names no file: `> file` on a full disk.
        where = f"{error.filename}: " if error.filename is not None else "cannot write the output: "
        print(f"optiondesk: {where}{error.strerror or error}", file=sys.stderr)
        _reader_gone()  # the interpreter's last flush would fail again
        return EXIT_PROBLEM
    except (SettingsError, LedgerError, StorageError, ValueError) as error:
        print(f"optiondesk: {error}", file=sys.stderr)
        return EXIT_PROBLEM
    except UsageError as error:
        print(f"optiondesk: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("optiondesk: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _reader_gone() -> int:
    """stdout's reader went away (`python -m bot report daily ... | head`): the rest of the output is dropped without
    a word, as other tools drop it, and the status is a process's ended by SIGPIPE."""
    import os

    # The interpreter flushes stdout once more at exit, which would fail again: what is left goes nowhere.
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return EXIT_BROKEN_PIPE


def _reads_only(args: argparse.Namespace) -> bool:
    if args.command == "state":
        return args.set_to is None
    return args.command in {"positions", "status", "ledger", "report"}


def _command(args: argparse.Namespace) -> int:
    from bot.paths import DEFAULT_STORAGE
    from bot.settings import load_settings

    settings = load_settings()
    given: Path | None = getattr(args, "storage", None)
    storage = folder(given or Path(settings.storage_dir or DEFAULT_STORAGE))
    if args.command == "ledger":
        from bot.cli.ledger import verify_ledger

        return verify_ledger(storage)
    if args.command == "positions":
        from bot.cli.ledger import list_positions

        return list_positions(storage, as_json=args.json)
    if args.command == "report":
        from bot.cli.report import report_daily

        return report_daily(settings, storage, args)
    if args.command == "reconcile":
        from bot.cli.reconcile import reconcile

        return reconcile(settings, storage, args)
    if args.command == "state":
        from bot.cli.desk_state import state_command

        return state_command(storage, set_to=args.set_to, reason=args.reason, as_json=args.json)
    if args.command == "status":
        from bot.cli.desk_state import status_command

        return status_command(settings, storage, as_json=args.json)
    if args.command == "backtest":
        from bot.cli.backtest import backtest_command

        return backtest_command(settings, storage, args)
    if args.command == "data":
        from bot.cli.data import alpaca_command

        return alpaca_command(settings, args)
    from bot.cli.run import run_desk

    return run_desk(settings, storage, given, args)
