"""`python -m bot data alpaca`: real history from Alpaca in the recorded-quote format that `backtest --replay` and
`run --replay` read: the underlying's minute bars and those of the option contracts the strategies would pick, each
bar's close made a quote by a spread model (bot/broker/history.py), fetched by bot/broker/alpaca_history.py."""

from __future__ import annotations

import argparse
import logging
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.cli.common import EXIT_OK, EXIT_PROBLEM, EXIT_USAGE, market_day

if TYPE_CHECKING:
    from bot.broker.history import ContractPicker
    from bot.settings import Settings

log = logging.getLogger(__name__)


def _percent(value: str) -> Decimal:
    try:
        pct = Decimal(value)
    except InvalidOperation:
        pct = Decimal("NaN")
    if not (pct.is_finite() and 0 <= pct <= 200):
        raise argparse.ArgumentTypeError(f"a spread is from 0 to 200 percent of the price, not {value}")
    return pct


def _ticks(value: str) -> int:
    if not (value.isascii() and value.isdigit() and 1 <= int(value) <= 100):
        raise argparse.ArgumentTypeError(f"each side is from 1 to 100 ticks from the close, not {value}")
    return int(value)


def add_data_parser(commands: Any, storage_parent: argparse.ArgumentParser) -> None:
    data = commands.add_parser("data", help="get market history for backtests")
    sources = data.add_subparsers(dest="source", metavar="source", required=True)
    alpaca = sources.add_parser(
        "alpaca",
        parents=[storage_parent],
        help="minute bars from Alpaca as recorded quotes for --replay",
        description="The underlying's minute bars and those of the option contracts the configured strategies would "
        "pick on it, from Alpaca's historical data API, each bar's close made a quote by a spread model (Alpaca keeps "
        "no historical option quotes), written to --out in the recorded-quote format (.csv or .jsonl) that "
        "`backtest --replay` reads. The keys come from APCA_API_KEY_ID and APCA_API_SECRET_KEY.",
    )
    alpaca.add_argument("--underlying", required=True, metavar="TICKER", help="the underlying, e.g. SPY")
    alpaca.add_argument("--from", dest="first", type=market_day, required=True, metavar="YYYY-MM-DD")
    alpaca.add_argument("--to", dest="last", type=market_day, required=True, metavar="YYYY-MM-DD")
    alpaca.add_argument("--out", type=Path, required=True, metavar="FILE", help="the file to write (.csv or .jsonl)")
    alpaca.add_argument(
        "--strategy", action="append", default=None, metavar="NAME", help="only this strategy's contracts (repeat)"
    )
    alpaca.add_argument(
        "--spread-pct",
        type=_percent,
        default=Decimal(4),
        metavar="PCT",
        help="the modelled spread of an option quote, in percent of the bar's close (default 4)",
    )
    alpaca.add_argument(
        "--min-ticks",
        type=_ticks,
        default=1,
        metavar="N",
        help="each side of a modelled option quote at least N cents from the bar's close (default 1)",
    )


def alpaca_command(settings: Settings, args: argparse.Namespace) -> int:
    from itertools import chain

    from bot.broker.alpaca_history import AlpacaHistory, HistoryError
    from bot.broker.history import (
        Bar,
        SpreadModel,
        fetch_windows,
        option_rows,
        picked_contracts,
        replay_file,
        split_days,
        underlying_rows,
    )
    from bot.options.market_hours import session_close, session_open
    from bot.paths import write_atomically

    underlying, suffix = args.underlying.strip().upper(), args.out.suffix.lower()
    if args.first > args.last:
        return _refuse(f"--from {args.first} is after --to {args.last}", EXIT_USAGE)
    if suffix not in (".csv", ".jsonl"):
        return _refuse(f"--out {args.out}: a replay file ends in .csv or .jsonl", EXIT_USAGE)
    if args.out.is_dir():
        return _refuse(f"--out {args.out} is a folder; give the file to write", EXIT_USAGE)
    if above := next((f for f in args.out.parents if f.exists() and not f.is_dir()), None):
        return _refuse(f"--out {args.out}: {above} is not a folder", EXIT_USAGE)
    pickers = _pickers(settings, args.strategy, underlying)
    if not pickers:
        theirs = ", ".join(
            f"{s.name} trades {s.underlying}" + (" by target_delta" if s.target_delta is not None else "")
            for s in settings.strategies
        )
        return _refuse(
            f"no strategy in the settings buys {underlying} at the money ({theirs or 'there are none'}); the history "
            "holds the contracts the strategies would pick, so give --underlying one of theirs or add a strategy for it"
        )
    spread = SpreadModel(args.spread_pct, args.min_ticks)
    alpaca = AlpacaHistory(settings.broker)
    try:
        days = split_days(
            alpaca.stock_bars(underlying, session_open(args.first), session_close(args.last)), args.first, args.last
        )
        for day, why in days.skipped:
            log.info("data: %s skipped: %s", day, f"no {underlying} bars" if why == "no bars" else why)
        if not days.bars:
            return _refuse(f"Alpaca has no {underlying} bars from {args.first} to {args.last}; nothing written")
        underlying_by_day = underlying_rows(underlying, days)
        picked = {
            day: picked_contracts(pickers, [q.mark for _, _, q in rows if q.mark is not None], day)
            for day, rows in underlying_by_day.items()
        }
        windows = fetch_windows(picked, args.last)
        contracts = sum(len(symbols) for symbols in windows.values())
        bars = sum(len(day_bars) for day_bars in days.bars.values())
        log.info(
            "data: %d %s bars on %d trading days, %d option contracts", bars, underlying, len(days.bars), contracts
        )
        option_bars: dict[str, list[Bar]] = {}
        for (start, end), symbols in windows.items():
            option_bars |= alpaca.option_bars(symbols, session_open(start), session_close(end))
    except HistoryError as error:
        return _refuse(str(error))
    options = option_rows(option_bars, spread, days.bars)
    if not options:
        return _refuse(
            f"Alpaca has no bars of the {contracts} option contracts the strategies would pick on {underlying} from "
            f"{args.first} to {args.last} (its option history starts in February 2024); nothing written"
        )
    underlying_quotes = list(chain.from_iterable(underlying_by_day.values()))
    try:
        write_atomically(args.out, replay_file([*underlying_quotes, *options], suffix))
    except OSError as error:
        return _refuse(f"cannot write {args.out} ({error.strerror or error}); nothing written")
    traded = len({symbol for _, symbol, _ in options})
    print(
        f"wrote {args.out}: {len(underlying_quotes) + len(options):,} quotes on {len(days.bars)} trading days from "
        f"{min(days.bars)} to {max(days.bars)}\n"
        f"  {underlying}: {len(underlying_quotes):,} quotes (a cent either side of each bar's close)\n"
        f"  options: {len(options):,} quotes of {traded} of the {contracts} contracts the strategies would pick (the "
        f"others never traded), {spread.describe()}"
    )
    if days.skipped:
        print("skipped: " + ", ".join(f"{day} ({why})" for day, why in days.skipped))
    return EXIT_OK


def _pickers(settings: Settings, names: list[str] | None, underlying: str) -> list[ContractPicker]:
    """The configured strategies (only those named, if any) that trade `underlying`: each picks its contracts by its
    own rule, as on the desk."""
    from bot.runtime.backtest import only_strategies
    from bot.runtime.desk import build_strategies
    from bot.strategies.base import UnderlyingStrategy

    strategies = build_strategies(only_strategies(settings, names))
    on_it = [s for s in strategies if isinstance(s, UnderlyingStrategy) and s.underlying == underlying]
    for strategy in on_it:
        if strategy.target_delta is not None:
            # Its strike comes from the desk's greeks at the moment it enters: some 300 strikes priced per entry, too
            # many to price at every bar of a range ahead of time.
            log.warning(
                "data: %s picks its contract by target_delta %g, which the history cannot follow ahead of time: its "
                "contracts are not fetched (without target_delta it buys at the money, and those are)",
                strategy.name,
                strategy.target_delta,
            )
    return [s for s in on_it if s.target_delta is None]


def _refuse(line: str, status: int = EXIT_PROBLEM) -> int:
    print(f"optiondesk: {line}", file=sys.stderr)
    return status
