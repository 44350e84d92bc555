"""Alerts for the desk's admins when something they must fix happens (the ledger cannot be written).

An alert goes to the admins (the admin channel on Discord) and to the log at most once per `interval` per kind,
so a storm of failures sends one message, and the next one says how many more came meanwhile. (What failed is
logged where it failed: a refused trade is one line, not two.)
Sending happens in the background: the failure being reported is never held up by Discord.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 300.0  # seconds between two alerts of the same kind
MESSAGE_LIMIT = 2000  # Discord's limit for a message's content

Send = Callable[[str], Awaitable[None]]


class AdminAlerts:
    def __init__(
        self, send: Send | None, *, interval: float = DEFAULT_INTERVAL, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._send = send
        self._interval = interval
        self._clock = clock
        self._last_sent: dict[str, float] = {}
        self._held: dict[str, int] = {}  # alerts of a kind not sent since the last one that was
        self._sending: set[asyncio.Task[None]] = set()

    def alert(self, kind: str, text: str) -> None:
        """Log `text` as an error and tell the admins, unless they heard of `kind` less than `interval` ago."""
        now = self._clock()
        last = self._last_sent.get(kind)
        if last is not None and now - last < self._interval:
            self._held[kind] = self._held.get(kind, 0) + 1
            return
        held = self._held.pop(kind, 0)
        self._last_sent[kind] = now
        more = f" ({held} more since the last alert)" if held else ""
        log.error("admin alert (%s): %s%s", kind, text, more)
        if self._send is None:
            return
        message = f"⚠️ optiondesk: {text}{more}"[:MESSAGE_LIMIT]
        task = asyncio.get_running_loop().create_task(self._deliver(message))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _deliver(self, message: str) -> None:
        assert self._send is not None
        try:
            await self._send(message)
        except Exception as error:
            log.warning("could not alert the admins (%r); the alert is in the log", error)

    async def drain(self) -> None:
        """Wait for the alerts being sent (at shutdown, and in tests)."""
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)
