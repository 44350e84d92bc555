"""`python -m bot report daily`: the desk's daily P&L report from the ledger, as a table or as JSON."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.cli.common import EXIT_OK, EXIT_PROBLEM, EXIT_USAGE, UsageError, warn

if TYPE_CHECKING:
    from bot.settings import Settings


def add_report_parser(commands: Any, storage: argparse.ArgumentParser) -> None:
    report = commands.add_parser("report", help="reports from the trade ledger")
    kinds = report.add_subparsers(dest="report_command", metavar="command", required=True)
    daily = kinds.add_parser(
        "daily",
        parents=[storage],
        help="realized P&L, trades and win rate per day",
        description="Per day (in the configured time zone): realized P&L, fees, trades, positions opened and "
        "closed, wins and losses, win rate, profit factor, largest win and loss, max intraday drawdown, by "
        "strategy and by underlying. Without dates: today in New York.",
    )
    daily.add_argument("--date", metavar="YYYY-MM-DD", help="one day (default: today in New York)")
    daily.add_argument("--from", dest="first", metavar="YYYY-MM-DD", help="first day of a range (inclusive)")
    daily.add_argument("--to", dest="last", metavar="YYYY-MM-DD", help="last day of a range (inclusive; default today)")
    daily.add_argument("--json", action="store_true", help="print JSON only: a list with one object per day")
    daily.add_argument(
        "--best-effort",
        action="store_true",
        help="report a ledger that does not verify all the same: the lines that cannot be read or replayed are left "
        "out, and a warning on stderr names them (without it, such a ledger is refused with exit status 1)",
    )


# A table a person reads: a longer range is for --json (a program reads it), or is asked for in pieces.
TABLE_DAYS = 3 * 366


def _day(option: str, value: str) -> date:
    from bot.options.market_hours import FIRST_DAY, LAST_DAY

    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{option} {value!r} is not a date in the form YYYY-MM-DD.") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise UsageError(f"{option} {day} is outside the market calendar ({FIRST_DAY} to {LAST_DAY}).")
    return day


def report_range(args: argparse.Namespace, today: date) -> tuple[date, date]:
    """The days asked for; raises UsageError with the sentence to show."""
    if args.date is not None:
        if args.first is not None or args.last is not None:
            raise UsageError("Give either --date or --from/--to, not both.")
        day = _day("--date", args.date)
        return day, day
    if args.first is None:
        if args.last is not None:
            raise UsageError("--to needs --from.")
        return today, today
    first = _day("--from", args.first)
    last = _day("--to", args.last) if args.last is not None else today
    if first > last:
        raise UsageError(f"--from {first} is after --to {last}.")
    if (last - first).days >= TABLE_DAYS and not getattr(args, "json", False):
        raise UsageError(
            f"--from {first} --to {last} is {(last - first).days + 1} days, a table of more than 3 years; "
            "give a shorter range, or --json"
        )
    return first, last


def report_daily(settings: Settings, storage: Path, args: argparse.Namespace) -> int:
    from bot.analytics.export import day_json
    from bot.analytics.ledger_scan import scan_ledger
    from bot.analytics.tally import PeriodReport
    from bot.options.clock import utc_now
    from bot.options.trade_ledger import LedgerError
    from bot.paths import ledger_path
    from bot.render.text import daily_table

    try:
        first, last = report_range(args, utc_now().astimezone(settings.zone).date())
    except UsageError as error:
        print(f"optiondesk: {error}", file=sys.stderr)
        return EXIT_USAGE
    path = ledger_path(storage)
    try:
        scan = scan_ledger(path, settings.zone, first, last, best_effort=args.best_effort)
    except LedgerError as error:
        print(f"optiondesk: {error}; nothing reported (--best-effort reports the rest)", file=sys.stderr)
        return EXIT_PROBLEM
    if scan.problems:
        more = f" (and {len(scan.problems) - 1} more)" if len(scan.problems) > 1 else ""
        print(
            f"optiondesk: warning: the ledger does not verify: {scan.problems[0]}{more}; the figures leave out "
            "the lines that cannot be read or replayed (`python -m bot ledger verify` checks the ledger)",
            file=sys.stderr,
        )
    if scan.torn_tail:
        warn("the ledger ends in a torn line (%d bytes), left out of the report", scan.torn_tail)
    if args.json:
        print(json.dumps([day_json(day) for day in scan.reports], indent=2))
    else:
        print(daily_table(PeriodReport(first, last, scan.reports)))
    return EXIT_OK
