"""`python -m bot reconcile [--date D] [--json] [--apply]`: the ledger against the broker for one day.

Exit 0 when they agree, 1 when there are differences (also after `--apply`), 2 when there is no broker to
compare with. `--apply` appends the missing fills that may be applied; run it with the bot stopped, since
the ledger has one writer.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from contextlib import nullcontext
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.cli.common import EXIT_OK, EXIT_PROBLEM, EXIT_USAGE, holding, market_day

if TYPE_CHECKING:
    from bot.broker.reconcile import ReconcileReport
    from bot.settings import Settings

log = logging.getLogger(__name__)


def add_parser(commands: Any, storage: argparse.ArgumentParser) -> None:
    reconcile = commands.add_parser("reconcile", parents=[storage], help="compare the ledger with the broker's fills")
    reconcile.add_argument("--date", type=market_day, default=None, help="the day, YYYY-MM-DD (default: today)")
    reconcile.add_argument("--json", action="store_true", help="print JSON only")
    reconcile.add_argument("--apply", action="store_true", help="append the missing fills that can be applied")


def reconcile(settings: Settings, storage: Path, args: argparse.Namespace) -> int:
    """The command, holding the storage's writer lock with `--apply` (the ledger has one writer)."""
    with holding(storage, "reconcile --apply") if args.apply else nullcontext():
        return reconcile_command(settings, storage, day=args.date, as_json=args.json, apply=args.apply)


def reconcile_command(settings: Settings, storage: Path, *, day: date | None, as_json: bool, apply: bool) -> int:
    if settings.executor == "paper":
        print(
            "optiondesk: reconcile compares the ledger with a broker, and the executor is paper "
            "(set executor to alpaca-paper or alpaca-live)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    import asyncio

    from alpaca.common.exceptions import APIError
    from requests import RequestException

    from bot.broker.alpaca import Alpaca
    from bot.broker.reconcile_fetch import reconcile_day
    from bot.options.clock import utc_now

    now = utc_now()
    day = day or now.astimezone(settings.zone).date()
    try:
        client = Alpaca(settings).trading_client()
        report = reconcile_day(client, storage, day, settings.zone, now, settings.broker.fee_per_contract)
    except (APIError, RequestException) as error:
        print(f"optiondesk: could not read the fills from Alpaca ({type(error).__name__})", file=sys.stderr)
        return EXIT_PROBLEM
    if apply and report.to_apply:
        asyncio.run(apply_missing(report, storage))
    print(json.dumps(report.to_json(), indent=2) if as_json else "\n".join(report.lines()))
    return EXIT_OK if report.ok else EXIT_PROBLEM


async def apply_missing(report: ReconcileReport, storage: Path) -> None:
    """Append the missing fills that may be applied, each durable before the next; nothing else changes."""
    from bot.options.trade_ledger import TradeLedger
    from bot.paths import ledger_path

    ledger = TradeLedger.open(ledger_path(storage))
    try:
        for event in report.to_apply:
            await ledger.append(event)
            report.applied += 1
            log.info("reconcile: appended broker fill %s to position %s", event.fill_id, event.position_id)
    finally:
        ledger.close()
