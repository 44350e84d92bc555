"""The desk's one clock. Everything on a desk that asks "now" (fills, risk, expiry, the watcher's throttle, the
reports' "today") asks it, so a desk runs on one time: wall time on Discord or at a broker, a simulated market's
time offline and in backtests.

A clock is called for the time and can be slept on until a moment of its own time: a simulated clock wakes its
sleepers when whatever drives the simulation moves it past their moment, however fast that goes.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import asyncio

Clock = Callable[[], datetime]

_WALL_NAP = 60.0  # a long wait on wall time is taken in naps, so a clock set forward (NTP, a VM resumed) is noticed


def utc_now() -> datetime:
    return datetime.now(UTC)


@runtime_checkable
class DeskClock(Protocol):
    def __call__(self) -> datetime:
        """Now, timezone-aware."""
        ...

    async def sleep_until(self, at: datetime) -> None:
        """Return once this clock reads `at` or later."""
        ...


class WallClock:
    """Wall time: the clock of every desk on Discord or at a broker (or `now` a test gives it)."""

    def __init__(self, now: Clock = utc_now) -> None:
        self._now = now

    def __call__(self) -> datetime:
        return self._now()

    async def sleep_until(self, at: datetime) -> None:
        # Imported where a clock is slept on: a command that only reads the time (`utc_now`) starts without asyncio.
        import asyncio

        # Nothing to wait on but time itself: naps, each checking the clock again.
        while (left := (at - self._now()).total_seconds()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(min(left, _WALL_NAP))


class SimulatedClock:
    """A simulated market's time, moved forward by whatever drives the simulation (the simulated feed's ticks,
    a replay's quotes, a backtest's loop); never backward."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError(f"{start!r} has no timezone; the desk's clock is timezone-aware.")
        self._now = start
        self._sleepers: list[tuple[datetime, int, asyncio.Future[None]]] = []
        self._order = itertools.count()  # ties wake in the order they slept

    def __call__(self) -> datetime:
        return self._now

    def advance(self, to: datetime) -> None:
        """Move to `to` (a moment already past is ignored) and wake whoever sleeps until then."""
        if to <= self._now:
            return
        self._now = to
        while self._sleepers and self._sleepers[0][0] <= to:
            _, _, waking = heapq.heappop(self._sleepers)
            if not waking.done():
                waking.set_result(None)

    async def sleep_until(self, at: datetime) -> None:
        if at <= self._now:
            return
        import asyncio

        waking = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (at, next(self._order), waking))
        await waking


def desk_clock(clock: Clock | DeskClock) -> DeskClock:
    """A desk's clock from a plain `now` function (taken for wall time, as a test's fixed clock is)."""
    return clock if isinstance(clock, DeskClock) else WallClock(clock)
