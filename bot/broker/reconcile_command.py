"""`python -m bot reconcile [--date D] [--json] [--apply]`: the ledger against the broker for one day.

Exit 0 when they agree, 1 when there are differences (also after `--apply`), 2 when there is no broker to
compare with. `--apply` appends the missing fills that may be applied; run it with the bot stopped, since
the ledger has one writer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from datetime import date
from pathlib import Path

from alpaca.common.exceptions import APIError
from requests import RequestException

from bot.broker.alpaca import Alpaca
from bot.broker.reconcile import ReconcileReport
from bot.broker.reconcile_fetch import reconcile_day
from bot.options.clock import utc_now
from bot.options.trade_ledger import TradeLedger
from bot.paths import ledger_path
from bot.settings import Settings

log = logging.getLogger(__name__)

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE = 0, 1, 2


def reconcile_command(settings: Settings, storage: Path, *, day: date | None, as_json: bool, apply: bool) -> int:
    if settings.executor == "paper":
        print(
            "optiondesk: reconcile compares the ledger with a broker, and the executor is paper "
            "(set executor to alpaca-paper or alpaca-live)",
            file=sys.stderr,
        )
        return EXIT_USAGE
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
    ledger = TradeLedger.open(ledger_path(storage))
    try:
        for event in report.to_apply:
            await ledger.append(event)
            report.applied += 1
            log.info("reconcile: appended broker fill %s to position %s", event.fill_id, event.position_id)
    finally:
        ledger.close()
