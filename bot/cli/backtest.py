"""`python -m bot backtest`: the desk through a range of trading days on a simulated clock, then its tear sheet
(bot/runtime/backtest.py runs it)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext, suppress
from datetime import date
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.cli.common import EXIT_INTERRUPTED, EXIT_OK, EXIT_PROBLEM, EXIT_USAGE, holding, market_day

if TYPE_CHECKING:
    from bot.runtime.backtest import BacktestResult
    from bot.runtime.backtest_grid import Combination, Outcome
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
    backtest.add_argument(
        "--set",
        dest="grid",
        action="append",
        type=_grid_arg,
        default=None,
        metavar="KEY=V1,V2",
        help="a grid: a setting (a dotted path, list entries by index: strategies.0.exits.stop_loss_pct) and its "
        "values; repeated, every combination runs, each a backtest in its own folder, one process per core, and one "
        "line of results each, sorted by realized P&L (best first)",
    )
    backtest.add_argument("--json", action="store_true", help="print JSON only")
    backtest.add_argument("--verbose", action="store_true", help="show the position messages and the desk's log")


def _grid_arg(text: str) -> tuple[str, list[str]]:
    from bot.runtime.backtest_grid import parse_set

    try:
        return parse_set(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


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
        source += "-grid" if args.grid else ""
        folder = storage / BACKTESTS / folder_name(args.first, args.last, source, utc_now())
    if args.grid:
        return _grid_command(settings, folder, args)
    out = (sys.stderr if args.json else sys.stdout) if args.verbose else None
    # The desk's own lines (each exit, each expiry) are for --verbose; the weekly progress always shows.
    quiet = nullcontext() if args.verbose else _progress_only("bot.runtime.backtest")
    with _no_folder_for_nothing(folder), quiet, holding(folder, "backtest"):
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
    if result is None:  # stopped before the desk was open
        print("optiondesk: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    if args.json:
        print(json.dumps(result_json(result), indent=2))
    else:
        print(_summary(result))
    return EXIT_INTERRUPTED if result.interrupted else EXIT_OK


@contextmanager
def _no_folder_for_nothing(folder: Path) -> Iterator[None]:
    """A backtest that ends before its first fill or close (a range without a trading day, a replay file that is not
    one, a strategy that is not configured) takes away the folders it made: nothing in them would have a reader."""
    import shutil

    from bot.paths import ledger_path
    from bot.runtime.backtest import TEAR_SHEET

    made = [f for f in (folder, *folder.parents) if not f.exists()]  # deepest first
    try:
        yield
    finally:
        ledger = ledger_path(folder)
        if made and not (folder / TEAR_SHEET).exists() and not (ledger.exists() and ledger.stat().st_size):
            shutil.rmtree(folder, ignore_errors=True)
            for parent in made[1:]:
                with suppress(OSError):  # only while empty: whatever else came to be there stays
                    parent.rmdir()


@contextmanager
def _progress_only(progress: str) -> Iterator[None]:
    """While it lasts, the `bot` loggers say only warnings, but `progress` its info lines too."""
    quiet, loud = logging.getLogger("bot"), logging.getLogger(progress)
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    loud.setLevel(logging.INFO)
    try:
        yield
    finally:
        quiet.setLevel(level)
        loud.setLevel(logging.NOTSET)


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


def _grid_command(settings: Settings, folder: Path, args: argparse.Namespace) -> int:
    """The grid of `--set`: every combination a backtest in its own folder under `folder`; a key or value that cannot
    be set is a usage error before any starts."""
    from bot.paths import write_atomically
    from bot.runtime.backtest import claim_backtest_folder, only_strategies, trading_days
    from bot.runtime.backtest_grid import GRID_TABLE, GridError, combinations, run_grid
    from bot.settings import SettingsError

    if args.verbose:
        print("optiondesk: --verbose shows one backtest's messages; leave it out of a grid (--set)", file=sys.stderr)
        return EXIT_USAGE
    if any(key == "market.seed" for key, _ in args.grid) and (args.seed is not None or args.replay):
        # Every combination would trade the same market under different labels.
        seed = "and --seed both choose the seed; leave one out"
        replay = "changes nothing on --replay (recorded quotes have no seed)"
        print(f"optiondesk: --set market.seed {seed if args.replay is None else replay}", file=sys.stderr)
        return EXIT_USAGE
    try:
        chosen = combinations(settings, args.grid, folder)
    except GridError as error:
        print(f"optiondesk: {error}", file=sys.stderr)
        return EXIT_USAGE
    if not trading_days(args.first, args.last):
        raise SettingsError(f"there is no trading day from {args.first} to {args.last}")
    for combination in chosen:
        only_strategies(combination.settings, args.strategy)
    run_one = partial(
        _grid_backtest, first=args.first, last=args.last, seed=args.seed, replay=args.replay, strategies=args.strategy
    )
    # A line as each backtest ends, none from inside them.
    with _progress_only("bot.runtime.backtest_grid"), holding(folder, "backtest"):
        claim_backtest_folder(folder)
        outcomes, interrupted = run_grid(run_one, chosen)
        table = _grid_table(outcomes, args, folder)
        write_atomically(folder / GRID_TABLE, (table + "\n").encode())
    print(json.dumps([_outcome_json(o) for o in outcomes], indent=2) if args.json else table)
    if interrupted:
        return EXIT_INTERRUPTED
    return EXIT_PROBLEM if any(o.error for o in outcomes) else EXIT_OK


async def _grid_backtest(
    combination: Combination,
    *,
    first: date,
    last: date,
    seed: int | None,
    replay: Path | None,
    strategies: list[str] | None,
) -> dict[str, Any]:
    """One combination's backtest, in a worker of the grid's pool; its JSON (the result is not sent back whole)."""
    from bot.runtime.backtest import run_backtest

    with holding(combination.folder, "backtest"):
        result = await run_backtest(
            combination.settings, combination.folder, first, last, seed=seed, replay=replay, strategies=strategies
        )
    return result_json(result)


def _outcome_json(outcome: Outcome) -> dict[str, Any]:
    combination = outcome.combination
    return {
        "combination": combination.number,
        "set": dict(combination.values),
        "status": outcome.status,
        "error": outcome.error,
        "folder": str(combination.folder),
        "result": outcome.summary,
    }


def _grid_table(outcomes: list[Outcome], args: argparse.Namespace, folder: Path) -> str:
    from bot.runtime.backtest_grid import GRID_TABLE

    market = f"replay {args.replay.name}" if args.replay else f"seed {args.seed}" if args.seed is not None else "seed"
    lines = [
        f"grid of {len(outcomes)} backtests from {args.first} to {args.last} ({market}), best realized P&L first:",
        f"{'#':>3} {'realized P&L':>13} {'trades':>6} {'win%':>5} {'PF':>6} {'max DD':>11} {'Sharpe':>7}  set",
    ]
    lines += [_grid_row(outcome) for outcome in outcomes]
    lines.append(f"  in {folder}: a folder per backtest, its number first (01_...), and {GRID_TABLE}")
    return "\n".join(lines)


def _grid_row(outcome: Outcome) -> str:
    from bot.render.text import money

    number, label = outcome.combination.number, outcome.combination.label
    sheet = outcome.summary and outcome.summary["tear_sheet"]
    if outcome.error is not None:
        return f"{number:>3} {'failed':>13}  {label}: {outcome.error}"
    if not outcome.summary or not sheet:
        return f"{number:>3} {outcome.status:>13}  {label}"
    total = sheet["total"]
    win_rate, pf, sharpe = total["win_rate"], total["profit_factor"], total["sharpe"]
    days = outcome.summary["days_done"]
    stopped = f" (stopped after {days} day{'s' * (days != 1)})" if outcome.summary["interrupted"] else ""
    return (
        f"{number:>3} {money(Decimal(total['realized_pnl'])):>13} {total['trades']:>6} "
        f"{'-' if win_rate is None else f'{win_rate:.0%}':>5} {'-' if pf is None else f'{pf:.2f}':>6} "
        f"{money(-Decimal(total['max_drawdown'])):>11} {'-' if sharpe is None else f'{sharpe:.2f}':>7}  "
        f"{label}{stopped}"
    )
