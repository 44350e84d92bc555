"""`python -m bot positions` and `python -m bot ledger verify`: the ledger read from the shell, nothing written."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.cli.common import EXIT_OK, EXIT_PROBLEM, warn

if TYPE_CHECKING:
    from bot.options.positions import Position


def add_parsers(commands: Any, storage: argparse.ArgumentParser) -> None:
    positions = commands.add_parser("positions", parents=[storage], help="list open positions as the bot resumes them")
    positions.add_argument("--json", action="store_true", help="print JSON only")
    ledger = commands.add_parser("ledger", help="inspect the trade ledger")
    ledger_commands = ledger.add_subparsers(dest="ledger_command", metavar="command", required=True)
    ledger_commands.add_parser("verify", parents=[storage], help="replay the ledger and check every invariant")


def _positions_json(positions: list[Position]) -> str:
    from bot.options.trade_ledger import AVG_ENTRY_PLACES

    return json.dumps(
        [
            {
                "position_id": p.position_id,
                "symbol": p.contract.symbol,
                "strategy": p.strategy,
                "qty": p.qty,
                "avg_entry": str(p.avg_entry.quantize(AVG_ENTRY_PLACES)),
                "realized_pnl_total": str(p.realized_pnl),
                "opened_at": p.opened_at.isoformat() if p.opened_at else None,
            }
            for p in positions
        ],
        indent=2,
    )


def list_positions(storage: Path, *, as_json: bool) -> int:
    from bot.options.trade_ledger import read_ledger, replay
    from bot.paths import ledger_path
    from bot.render.text import position_row

    contents = read_ledger(ledger_path(storage))
    if contents.torn_tail:
        warn("the ledger ends in a torn line (%d bytes), cut away at the next start", len(contents.torn_tail))
    positions = [p for p in replay(contents.events).values() if p.is_open]
    if as_json:
        print(_positions_json(positions))
    elif not positions:
        print("no open positions")
    else:
        print("\n".join(position_row(p) for p in positions))
    return EXIT_OK


def verify_ledger(storage: Path) -> int:
    from bot.options.ledger_verify import verify_events
    from bot.options.trade_ledger import LedgerError, read_ledger
    from bot.paths import ledger_path
    from bot.render.text import ledger_summary

    path = ledger_path(storage)
    try:
        contents = read_ledger(path)
    except LedgerError as error:  # which names the file and the line
        print(f"ledger {error}")
        return EXIT_PROBLEM
    report = verify_events(contents.events)
    print(f"ledger {path}")
    print(ledger_summary(report, torn_tail=len(contents.torn_tail)))
    return EXIT_OK if report.ok else EXIT_PROBLEM
