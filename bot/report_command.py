"""`python -m bot report daily`: the desk's daily P&L report from the ledger, as a table or as JSON."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from datetime import date
from pathlib import Path
from typing import Any

from bot.analytics.export import day_json
from bot.analytics.ledger_scan import scan_ledger
from bot.analytics.tally import DayReport, PeriodReport, Tally
from bot.options.clock import utc_now
from bot.paths import ledger_path
from bot.render import money
from bot.settings import Settings

log = logging.getLogger(__name__)

EXIT_OK, EXIT_USAGE = 0, 2


class UsageError(Exception):
    """Bad dates on the command line; the message is the one sentence shown."""


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


def _day(option: str, value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{option} {value!r} is not a date in the form YYYY-MM-DD.") from None


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
    return first, last


def report_daily(settings: Settings, storage: Path, args: argparse.Namespace) -> int:
    try:
        first, last = report_range(args, utc_now().astimezone(settings.zone).date())
    except UsageError as error:
        print(f"optiondesk: {error}", file=sys.stderr)
        return EXIT_USAGE
    scan = scan_ledger(ledger_path(storage), settings.zone, first, last, workers=min(os.cpu_count() or 1, 4))
    if scan.torn_tail:
        log.warning("the ledger ends in a torn line (%d bytes), left out of the report", scan.torn_tail)
    if args.json:
        print(json.dumps([day_json(day) for day in scan.reports], indent=2))
    else:
        print(daily_table(PeriodReport(first, last, scan.reports)))
    return EXIT_OK


def _rate(tally: Tally) -> str:
    return "-" if tally.win_rate is None else f"{tally.win_rate:.0%}"


def _row(label: str, t: Tally, opened: str, drawdown: str) -> str:
    return (
        f"{label:<12} {t.trades:>7} {opened:>6} {t.positions_closed:>6} {f'{t.wins}/{t.losses}':>9} "
        f"{_rate(t):>5} {money(t.realized_pnl):>14} {money(t.fees):>11} {drawdown:>11}"
    )


def _group_rows(title: str, groups: dict[str, Tally]) -> list[str]:
    return [f"by {title}:"] + [
        f"  {name:<14} {t.trades:>7} trades  {money(t.realized_pnl):>14}  fees {money(t.fees):>10}  "
        f"win rate {_rate(t)} ({t.wins}/{t.losses})"
        for name, t in groups.items()
    ]


def daily_table(period: PeriodReport) -> str:
    """A readable table: one row per day, a total for a range, then the range by strategy and underlying."""
    days: list[DayReport] = period.days
    if not days:
        return f"no trades from {period.first} to {period.last}"
    lines = [
        f"{'date':<12} {'trades':>7} {'opened':>6} {'closed':>6} {'won/lost':>9} {'win%':>5} "
        f"{'realized P&L':>14} {'fees':>11} {'max DD':>11}"
    ]
    lines += [_row(str(d.day), d.totals, str(d.positions_opened), money(-d.max_drawdown)) for d in days]
    if len(days) > 1:
        lines.append(_row("total", period.totals, str(period.positions_opened), money(-period.max_drawdown)))
    totals = period.totals
    lines.append(
        f"profit factor {'-' if totals.profit_factor is None else f'{totals.profit_factor:.2f}'}   "
        f"largest win {money(totals.largest_win) if totals.largest_win is not None else '-'}   "
        f"largest loss {money(totals.largest_loss) if totals.largest_loss is not None else '-'}"
    )
    if period.by_strategy:
        lines += _group_rows("strategy", period.by_strategy) + _group_rows("underlying", period.by_underlying)
    return "\n".join(lines)
