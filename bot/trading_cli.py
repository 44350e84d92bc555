"""`python -m bot state` and `python -m bot status`: the desk's trading state and status from the shell.

A state set here is stored at once; a running bot reads it before its next order and announces it within
seconds (see `bot.runtime.trading_state`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from bot.options.clock import utc_now
from bot.options.risk import DeskState, TradingState
from bot.options.trade_ledger import read_ledger, replay
from bot.paths import ledger_path
from bot.runtime.desk_status import DeskStatus, desk_status, render_status, state_json, status_json, trading_line
from bot.runtime.resume import STATE_FILE
from bot.runtime.state_store import StateStore
from bot.runtime.trading_state import OPERATOR, TradingSwitch
from bot.settings import Settings

EXIT_OK, EXIT_USAGE = 0, 2


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
    current = asyncio.run(_state(storage, set_to, (reason or "").strip()))
    print(json.dumps(state_json(current)) if as_json else trading_line(current))
    return EXIT_OK


async def _state(storage: Path, set_to: str | None, reason: str) -> DeskState:
    store = await StateStore.open(storage / STATE_FILE)
    try:
        switch = await TradingSwitch.open(store, utc_now)
        if set_to is None:
            return switch.current
        return await switch.set(TradingState(set_to), reason, OPERATOR)
    finally:
        await store.close()


def status_command(settings: Settings, storage: Path, *, as_json: bool) -> int:
    status = asyncio.run(_status(settings, storage))
    print(json.dumps(status_json(status), indent=2) if as_json else render_status(status))
    return EXIT_OK


async def _status(settings: Settings, storage: Path) -> DeskStatus:
    positions = replay(read_ledger(ledger_path(storage)).events).values()
    store = await StateStore.open(storage / STATE_FILE)
    try:
        trading, backlog = await store.trading_state(), len(await store.outbox())
    finally:
        await store.close()
    return desk_status(
        now=utc_now(),
        trading=trading,
        limits=settings.risk.limits(),
        positions=positions,
        quote_ages=None,
        backlog=backlog,
        uptime=None,
    )
