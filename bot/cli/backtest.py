"""`python -m bot backtest`: the desk through a range of trading days on a simulated clock, then its tear sheet
(bot/runtime/backtest.py runs it)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.cli.common import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, holding, market_day

if TYPE_CHECKING:
    from bot.runtime.backtest import BacktestResult
    from bot.settings import Settings


def add_backtest_parser(commands: Any, storage_parent: argparse.ArgumentParser) -> None:
    backtest = commands.add_parser(
        "backtest",
        parents=[storage_parent],
        help="run the desk through a range of trading days as fast as it goes, then a tear sheet",
        description="The desk, with its strategies, exits, risk limits and paper executor, on a simulated clock "
        "through every trading day from --from to --to (inclusive), on the simulated market or on recorded quotes; "
        "its ledger, tear sheet (tearsheet.txt), equity curve (equity.png) and fills (trades.csv) go to a new "
        "folder under backtests/ in the storage, or to --storage (an empty folder or a backtest's own).",
    )
    backtest.add_argument("--from", dest="first", type=market_day, required=True, metavar="YYYY-MM-DD")
    backtest.add_argument("--to", dest="last", type=market_day, required=True, metavar="YYYY-MM-DD")
    market = backtest.add_mutually_exclusive_group()
    market.add_argument("--seed", type=int, default=None, help="seed of the simulated market (default: the settings')")
    market.add_argument("--replay", type=Path, default=None, metavar="FILE", help="recorded quotes (.csv or .jsonl)")
    backtest.add_argument(
        "--strategy", action="append", default=None, metavar="NAME", help="only this strategy (repeat for more)"
    )
    backtest.add_argument("--json", action="store_true", help="print JSON only")
    backtest.add_argument("--verbose", action="store_true", help="show the position messages and the desk's log")


def backtest_command(settings: Settings, storage: Path, args: argparse.Namespace) -> int:
    """`storage`: the desk's storage, under which a backtest makes its folder unless --storage names one."""
    from bot.options.clock import utc_now
    from bot.runtime.backtest import BACKTESTS, folder_name, run_backtest
    from bot.runtime.lifetime import run_until_signalled

    if args.first > args.last:
        print(f"optiondesk: --from {args.first} is after --to {args.last}", file=sys.stderr)
        return EXIT_USAGE
    folder: Path | None = getattr(args, "storage", None)
    if folder is None:
        source = args.replay.stem if args.replay else f"seed{settings.market.seed if args.seed is None else args.seed}"
        folder = storage / BACKTESTS / folder_name(args.first, args.last, source, utc_now())
    out = (sys.stderr if args.json else sys.stdout) if args.verbose else None
    # The desk's own lines (each exit, each expiry) are for --verbose; the weekly progress always shows.
    quiet, progress = logging.getLogger("bot"), logging.getLogger("bot.runtime.backtest")
    level = quiet.level
    if not args.verbose:
        quiet.setLevel(logging.WARNING)
        progress.setLevel(logging.INFO)
    try:
        with holding(folder, "backtest"):
            result = run_until_signalled(
                run_backtest(
                    settings,
                    folder,
                    args.first,
                    args.last,
                    seed=args.seed,
                    replay=args.replay,
                    strategies=args.strategy,
                    out=out,
                )
            )
    finally:
        quiet.setLevel(level)
        progress.setLevel(logging.NOTSET)
    if result is None:  # stopped before the desk was open
        print("optiondesk: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    if args.json:
        print(json.dumps(result_json(result), indent=2))
    else:
        print(_summary(result))
    return EXIT_INTERRUPTED if result.interrupted else EXIT_OK


def result_json(result: BacktestResult) -> dict[str, Any]:
    from bot.analytics.tearsheet import to_json

    return {
        "folder": str(result.folder),
        "first": result.first.isoformat(),
        "last": result.last.isoformat(),
        "days_done": len(result.days),
        "interrupted": result.interrupted,
        "fills": len(result.fills),
        "still_open": result.still_open,
        "quotes": result.events,
        "tear_sheet": to_json(result.sheet) if result.sheet else None,
        "files": {name: str(path) for name, path in result.files.items()},
    }


def _summary(result: BacktestResult) -> str:
    from bot.render.tearsheet import render_tear_sheet

    done = f"{len(result.days)} trading days from {result.first} to {result.last}"
    lines = [
        f"backtest {'stopped after' if result.interrupted else 'of'} {done}: {len(result.fills)} fills, "
        f"{result.still_open} positions still open"
    ]
    if result.sheet is not None:
        lines += [render_tear_sheet(result.sheet), f"  in {result.folder}: " + ", ".join(result.files)]
    return "\n".join(lines)
