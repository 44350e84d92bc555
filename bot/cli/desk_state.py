"""`python -m bot state` and `python -m bot status`: the desk's trading state and status from the shell.

A state set here is journaled at once (`storage/options/trading_state.jsonl`, under the journal's own lock, so a
running desk need not stop); the desk picks it up within seconds and announces it (see
`bot.runtime.trading_state`). Without `--set` both commands only read: they write nothing and work on read-only
storage. A state that cannot be known shows as what a desk would do with it (halted), and the command exits 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bot.cli.common import EXIT_OK, EXIT_PROBLEM, EXIT_USAGE, warn
from bot.options.risk import TradingState

if TYPE_CHECKING:
    from datetime import datetime

    from bot.options.contracts import OptionContract
    from bot.options.greeks import ContractGreeks
    from bot.options.trade_ledger import TradeEvent
    from bot.settings import Settings


def add_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], storage: argparse.ArgumentParser
) -> None:
    state = commands.add_parser("state", parents=[storage], help="show or set the desk's trading state")
    state.add_argument(
        "--set", dest="set_to", choices=[s.value for s in TradingState], default=None, help="the new trading state"
    )
    state.add_argument("--reason", default=None, help="why (required with --set)")
    state.add_argument("--json", action="store_true", help="print JSON only")
    status = commands.add_parser("status", parents=[storage], help="the desk's status from its files (no live feed)")
    status.add_argument("--json", action="store_true", help="print JSON only")


def state_command(storage: Path, *, set_to: str | None, reason: str | None, as_json: bool) -> int:
    if set_to is not None and not (reason or "").strip():
        print("python -m bot state: --set needs --reason TEXT (why the state changes)", file=sys.stderr)
        return EXIT_USAGE
    if set_to is None and reason is not None:
        print("python -m bot state: --reason goes with --set", file=sys.stderr)
        return EXIT_USAGE
    from bot.options.clock import utc_now
    from bot.options.risk import DeskState
    from bot.render.status import state_json, trading_line
    from bot.runtime.trading_journal import append_journal, expected_state, journal_path

    current = expected_state(storage)
    if set_to is not None:
        from bot.runtime.trading_state import OPERATOR, log_change  # the desk's switch: only a change needs it

        after = DeskState(TradingState(set_to), (reason or "").strip(), OPERATOR, utc_now())
        append_journal(journal_path(storage), after)  # a StorageError ends the command in its one line
        log_change(current, after)
        current = after
    print(json.dumps(state_json(current)) if as_json else trading_line(current))
    return EXIT_OK if current.known else EXIT_PROBLEM


def status_command(settings: Settings, storage: Path, *, as_json: bool) -> int:
    from bot.options.clock import utc_now
    from bot.options.trade_ledger import read_ledger, replay
    from bot.paths import ledger_path
    from bot.render.status import desk_status, render_status, status_json
    from bot.runtime.trading_journal import expected_state
    from bot.storage_lock import read_holder

    events = read_ledger(ledger_path(storage)).events
    now = utc_now()
    positions = replay(events).values()
    greeks, greeks_note = model_greeks(settings, [p.contract for p in positions if p.is_open], now)
    status = desk_status(
        now=now,
        trading=expected_state(storage),
        limits=settings.risk.limits(),
        positions=positions,
        quote_ages=None,
        backlog=message_backlog(storage, events),
        uptime=None,
        discord=holder.discord if (holder := read_holder(storage)) else None,
        zone=settings.zone,
        greeks=greeks,
        greeks_note=greeks_note,
        broker=holder.broker if holder else None,
    )
    print(json.dumps(status_json(status), indent=2) if as_json else render_status(status))
    return EXIT_OK if status.trading.known else EXIT_PROBLEM


def model_greeks(
    settings: Settings, contracts: list[OptionContract], now: datetime
) -> tuple[dict[str, ContractGreeks] | None, str]:
    """The open contracts' greeks as a paper desk has them: the model at the simulated market's price now (its path is
    a function of time). A broker desk's come from Alpaca's snapshots, which a command reading files does not fetch."""
    if settings.executor != "paper":
        return None, "not known here (a broker desk's come from Alpaca: see /status)"
    if not contracts:
        return {}, ""
    from bot.options.greeks import ModelGreeks
    from bot.options.pricing import RATE
    from bot.options.sim_market import SimulatedMarket, UnderlyingSpec  # numpy: only with positions to value

    specs = [UnderlyingSpec(u.symbol, u.price, u.vol) for u in settings.market.underlyings]
    market = SimulatedMarket(specs, settings.market.seed, rate=RATE)
    vols = {spec.symbol: spec.vol for spec in specs}
    model = ModelGreeks(lambda underlying: market.spot_at(underlying, now), vols, RATE)
    return model.greeks(contracts, now), ""


def message_backlog(storage: Path, events: list[TradeEvent]) -> int | None:
    """Position-message updates not yet delivered: positions whose message, as the message map records it, does not
    show their last ledger event since the last reset. Read without writing anything; None (and a warning) if the map
    cannot be read."""
    from bot.runtime.message_map import MESSAGE_FILE, MessageMap, out_of_date

    path = storage / MESSAGE_FILE
    try:
        return len(out_of_date(events, MessageMap(path, read_only=True)))
    except (OSError, ValueError) as error:
        warn("message map %s cannot be read (%s): the Discord backlog is unknown", path, error)
        return None
