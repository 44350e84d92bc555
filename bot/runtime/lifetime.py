"""How a long-running command (`run`, `demo`, the Discord desk) starts and ends: SIGINT/SIGTERM stop it cleanly at
any moment, start-up and retries included; whatever is left when it ends is cancelled within a bound; and the process
itself ends within a bound, even when a thread or a task would not.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import asyncio

T = TypeVar("T")

WIND_DOWN = 10.0  # seconds for the tasks and threads left when the command's own work has ended
STOP_WITHIN = 60.0  # seconds from a signal to the end of the process, whatever hangs
EXIT_STUCK = 1


def run_until_signalled(main: Coroutine[Any, Any, T]) -> T | None:
    """Run `main` in a new event loop and return its result; SIGINT or SIGTERM cancel it (its `finally` cleans up)
    and then the result is None, unless `main` takes the cancel and returns one (a backtest's days done). A second
    signal while it stops is only logged: the stop is under way."""
    # Imported here: every command ends through `exit_after`, and a read-only one should not pay for asyncio, signal or
    # logging (some 15 ms of its start).
    import asyncio
    import logging
    import signal

    log = logging.getLogger(__name__)

    loop = asyncio.new_event_loop()
    task = loop.create_task(main)
    signalled: list[signal.Signals] = []

    def stop(signum: signal.Signals) -> None:
        if signalled:
            log.info("%s: already stopping", signum.name)
            return
        signalled.append(signum)
        log.info("%s: stopping", signum.name)
        exit_after(STOP_WITHIN, EXIT_STUCK, f"the stop after {signum.name}")
        task.cancel()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop, signum)
    try:
        result = loop.run_until_complete(task)
    except asyncio.CancelledError:
        if not signalled:
            raise
        return None
    finally:
        try:
            _wind_down(loop)
        finally:
            loop.close()  # which gives SIGINT back to Python: a late Ctrl-C would then end in a traceback
            if signalled:
                for signum in (signal.SIGINT, signal.SIGTERM):
                    signal.signal(signum, signal.SIG_IGN)
    return result


def _wind_down(loop: asyncio.AbstractEventLoop) -> None:
    """What asyncio.run does after its coroutine, each wait bounded: cancel the tasks left, close async generators,
    shut the default executor down."""
    import asyncio
    import logging

    log = logging.getLogger(__name__)

    left = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in left:
        task.cancel()
    if left:
        done, pending = loop.run_until_complete(asyncio.wait(left, timeout=WIND_DOWN))
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                log.error("task %s failed while stopping", task.get_name(), exc_info=task.exception())
        if pending:
            names = ", ".join(sorted(task.get_name() for task in pending))
            log.warning("tasks still running %g s after the end, left behind: %s", WIND_DOWN, names)
    loop.run_until_complete(loop.shutdown_asyncgens())
    try:
        loop.run_until_complete(asyncio.wait_for(loop.shutdown_default_executor(), WIND_DOWN))
    except TimeoutError:
        log.warning("threads still running %g s after the end; the process ends without them", WIND_DOWN)


def exit_after(seconds: float, code: int, what: str) -> None:
    """End the process with `code` in `seconds` unless it has ended by then (a daemon timer: a normal end stops it).
    For a last guarantee that a stop or an exit never hangs, whatever a thread is waiting for."""

    def end() -> None:
        print(f"optiondesk: {what} did not end within {seconds:g} s; exiting", file=sys.stderr, flush=True)
        if "logging" in sys.modules:  # what the handlers hold is written out (a command that logged nothing has none)
            sys.modules["logging"].shutdown()
        os._exit(code)

    timer = threading.Timer(seconds, end)
    timer.daemon = True
    timer.start()
