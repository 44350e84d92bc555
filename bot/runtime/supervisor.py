"""Supervised background tasks: a task that dies is logged and restarted with backoff."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


async def supervise(
    name: str,
    start: Callable[[], Awaitable[None]],
    *,
    first_delay: float = 1.0,
    max_delay: float = 60.0,
    healthy_after: float = 60.0,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Run `start()` until it returns; restart it after a crash, waiting longer after each quick crash."""
    delay = first_delay
    while True:
        began = clock()
        try:
            await start()
        except Exception:
            if clock() - began >= healthy_after:
                delay = first_delay  # it ran well for a while: this is a new problem, not a crash loop
            log.exception("task %s died; restarting it in %.1f s", name, delay)
            await sleep(delay)
            delay = min(delay * 2, max_delay)
        else:
            log.info("task %s finished", name)
            return
