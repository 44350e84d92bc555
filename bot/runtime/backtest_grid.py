"""A grid of backtests (`python -m bot backtest --set KEY=V1,V2 ...`): every combination of the values given, each
a whole backtest in its own folder, one process per core (concurrent.futures), ranked by realized P&L.

A KEY is a settings path (`strategies.0.exits.stop_loss_pct`: sections and fields by name, list entries by index),
and each value goes through the settings models as the environment's text does, before any backtest starts.
"""

from __future__ import annotations

import itertools
import json
import logging
import multiprocessing
import os
import re
import signal
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from bot.options.trade_ledger import LedgerError
from bot.paths import StorageError
from bot.render.text import money
from bot.settings import Settings, SettingsError
from bot.settings_check import Refused, check

T = TypeVar("T")
RunOne = Callable[["Combination"], Coroutine[Any, Any, "dict[str, Any] | None"]]

log = logging.getLogger(__name__)

GRID_TABLE = "grid.txt"  # the printed table, in the grid's folder
_NAME_ROOM = 120  # characters of a combination's values in its folder's name


class GridError(Exception):
    """A `--set` that cannot be run (an unknown key, a value the setting refuses); the message is the one line
    shown, and the command exits 2 before any backtest starts."""


@dataclass(frozen=True, slots=True)
class Combination:
    """One backtest of the grid: its number (from 1, in the order of the product), the values set, its settings
    and its folder."""

    number: int
    values: tuple[tuple[str, str], ...]
    settings: Settings
    folder: Path

    @property
    def label(self) -> str:
        return " ".join(f"{key}={value}" for key, value in self.values)


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one combination went: `summary` is the backtest's JSON (bot.cli.backtest.result_json) when it ran,
    `error` the one line of its failure; neither when the grid stopped before it began."""

    combination: Combination
    summary: dict[str, Any] | None = None
    error: str | None = None

    @property
    def realized_pnl(self) -> Decimal | None:
        sheet = (self.summary or {}).get("tear_sheet")
        return Decimal(sheet["total"]["realized_pnl"]) if sheet else None

    @property
    def status(self) -> str:
        if self.error is not None:
            return "failed"
        if self.summary is None:
            return "not run"
        return "stopped" if self.summary["interrupted"] else "done"


def split_values(text: str) -> list[str]:
    """`KEY=V1,V2`'s values: split at the commas outside brackets, so that a list value (`[[30,50]]`) stays whole."""
    values, depth, start = [], 0, 0
    for at, char in enumerate(text):
        depth += {"[": 1, "{": 1, "]": -1, "}": -1}.get(char, 0)
        if char == "," and depth == 0:
            values.append(text[start:at].strip())
            start = at + 1
    values.append(text[start:].strip())
    return values


def parse_set(text: str) -> tuple[str, list[str]]:
    """A `--set KEY=V1,V2` argument as (key, values); ValueError says what is wrong with its shape."""
    key, equals, values = text.partition("=")
    if not equals or not key.strip():
        raise ValueError(f"expected KEY=VALUE[,VALUE...], not {text!r}")
    parsed = split_values(values)
    if any(not value for value in parsed):
        raise ValueError(f"an empty value in {text!r}")
    return key.strip(), parsed


def with_values(settings: Settings, values: Sequence[tuple[str, str]]) -> Settings:
    """`settings` with each (key, value) set and validated by the settings models (GridError names the key)."""
    data = settings.as_dict()
    for key, value in values:
        _put(data, key, value)
    try:
        return check(Settings, data)
    except Refused as error:
        shown = " ".join(f"{key}={value}" for key, value in values)
        raise GridError(f"bad --set {shown}: {error.message}") from None


def _put(data: dict[str, Any], key: str, value: str) -> None:
    parts = key.split(".")
    where: Any = data
    for depth, part in enumerate(parts):
        here = ".".join(parts[:depth]) or "the settings"
        if isinstance(where, dict) and part in where:
            step: Any = part
        elif isinstance(where, list) and part.isdigit() and int(part) < len(where):
            step = int(part)
        elif isinstance(where, list):
            raise GridError(f"unknown setting {key}: {here} has entries 0 to {len(where) - 1}")
        elif isinstance(where, dict):
            raise GridError(f"unknown setting {key}: {here} has {', '.join(where)}")
        else:
            raise GridError(f"unknown setting {key}: {here} is a value, not a section")
        if depth == len(parts) - 1:
            where[step] = _parsed(key, value, where[step])
        where = where[step]


def _parsed(key: str, value: str, current: object) -> object:
    # As the environment's text: a list or a section is JSON, anything else a word the settings types read.
    if not isinstance(current, list | tuple | dict):
        return value
    try:
        return json.loads(value)
    except ValueError:
        raise GridError(f"bad --set {key}={value}: expected JSON, as {json.dumps(current, default=str)}") from None


def combinations(settings: Settings, grid: Sequence[tuple[str, list[str]]], folder: Path) -> list[Combination]:
    """Every combination of the grid's values (the cartesian product, in the order given), its settings validated:
    GridError for the first key or value that cannot be set."""
    for key, values in grid:
        for value in values:
            with_values(settings, [(key, value)])  # so that a refusal names the one value refused
    keys = [key for key, _ in grid]
    if len(set(keys)) < len(keys):
        raise GridError(f"--set names {', '.join(sorted({k for k in keys if keys.count(k) > 1}))} more than once")
    for key, values in grid:
        if twice := next((v for v in values if values.count(v) > 1), None):
            raise GridError(f"--set {key} gives {twice} more than once")  # the same backtest, run twice
    chosen = []
    for number, chosen_values in enumerate(itertools.product(*(values for _, values in grid)), start=1):
        pairs = tuple(zip(keys, chosen_values, strict=True))
        # Cut to fit a file name (255 bytes) whatever the keys; the number keeps it apart, grid.txt holds the values.
        name = re.sub(r"[^\w.=-]+", "_", "_".join(f"{key}={value}" for key, value in pairs))[:_NAME_ROOM]
        chosen.append(Combination(number, pairs, with_values(settings, pairs), folder / f"{number:02d}_{name}"))
    return chosen


_stop: Any = None  # the grid's stop, set by the parent (a multiprocessing Event), in each worker


def _start_worker(stop: Any) -> None:
    global _stop
    _stop = stop
    # A backtest's weekly lines from every worker at once would bury the grid's own: only warnings, and the grid's
    # line as each combination ends.
    logging.getLogger("bot").setLevel(logging.WARNING)
    logging.getLogger("bot.runtime.backtest").setLevel(logging.WARNING)
    # The parent says when to stop (it sends SIGINT once `stop` is set); a Ctrl-C between two backtests would
    # otherwise end the worker with a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the parent's, taken over by the fork


async def _unless_stopped(main: Coroutine[Any, Any, T]) -> T | None:
    # Checked once the signal handlers are in place: a stop set before that is seen here, one set after is a signal.
    if _stop is not None and _stop.is_set():
        main.close()
        return None
    return await main


def run_grid(run_one: RunOne, chosen: Sequence[Combination]) -> tuple[list[Outcome], bool]:
    """Run each combination's backtest (`run_one`, a picklable function returning its JSON) in a pool of one process
    per core; (the outcomes, best realized P&L first, then those that failed or did not run; whether Ctrl-C stopped
    it). A line on stderr as each ends. Ctrl-C stops every backtest under way (each keeps its days done) and starts
    no other."""
    stop = multiprocessing.get_context().Event()
    workers = min(os.cpu_count() or 1, len(chosen))
    outcomes: list[Outcome] = []
    # SIGTERM stops the grid as Ctrl-C does: ended by default, it would leave its workers waiting for work.
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        with ProcessPoolExecutor(workers, initializer=_start_worker, initargs=(stop,)) as pool:
            interrupted = _collect(pool, stop, run_one, chosen, outcomes)
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    return ranked(outcomes), interrupted


def _collect(
    pool: ProcessPoolExecutor, stop: Any, run_one: RunOne, chosen: Sequence[Combination], outcomes: list[Outcome]
) -> bool:
    """Each combination submitted to `pool`, its outcome in `outcomes` as it ends; True if Ctrl-C stopped them."""
    futures: dict[Future[Outcome], Combination] = {}
    try:
        for combination in chosen:
            futures[pool.submit(_run_combination, run_one, combination)] = combination
        for future in as_completed(futures):
            outcomes.append(_outcome(future, futures[future]))
            _said(outcomes[-1], len(outcomes), len(chosen))
    except KeyboardInterrupt:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_IGN)  # a second Ctrl-C: the stop is under way
        stop.set()
        for child in multiprocessing.active_children():
            if child.pid is not None:
                os.kill(child.pid, signal.SIGINT)
        pool.shutdown(wait=False, cancel_futures=True)
        seen = {outcome.combination.number for outcome in outcomes}
        outcomes += [_outcome(f, c) for f, c in futures.items() if c.number not in seen]
        return True
    return False


def ranked(outcomes: Sequence[Outcome]) -> list[Outcome]:
    """Best realized P&L first; those without one (failed, not run) after them, in the grid's order."""
    return sorted(outcomes, key=lambda o: (o.realized_pnl is None, -(o.realized_pnl or 0), o.combination.number))


def _outcome(future: Future[Outcome], combination: Combination) -> Outcome:
    try:
        return future.result()
    except CancelledError:
        return Outcome(combination)
    except Exception as error:  # the worker's process died (killed, out of memory): BrokenProcessPool
        return Outcome(combination, error=f"its process ended without a result ({error or type(error).__name__})")


def _said(outcome: Outcome, done: int, total: int) -> None:
    if outcome.error is not None:
        how = f"failed: {outcome.error}"
    elif (pnl := outcome.realized_pnl) is not None:
        how = f"realized P&L {money(pnl)}"
    else:
        how = outcome.status
    log.info("grid: %d of %d done, #%d %s: %s", done, total, outcome.combination.number, outcome.combination.label, how)


def _run_combination(run_one: RunOne, combination: Combination) -> Outcome:
    """In a worker: one combination's backtest, stopped by SIGINT as the command is; its failure in one line."""
    from bot.runtime.lifetime import run_until_signalled

    if _stop is not None and _stop.is_set():
        return Outcome(combination)
    try:
        summary = run_until_signalled(_unless_stopped(run_one(combination)))
    except (SettingsError, LedgerError, StorageError, ValueError) as error:
        return Outcome(combination, error=str(error))
    except KeyboardInterrupt:  # the stop's SIGINT, between the backtest's end and the line below
        return Outcome(combination)
    except Exception as error:
        return Outcome(combination, error=f"{type(error).__name__}: {error}")
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the event loop gave SIGINT back to Python
    return Outcome(combination, summary)
