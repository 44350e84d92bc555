"""Storage faults said in one line, and not at every try: a store that cannot be written (a full disk) fails at
every fill and every mark, and a line each would bury the lines that matter (one per refused trade)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

INTERVAL = 300.0  # seconds between two lines about the same source


class Outages:
    """Logs a failing source (a listener, a strategy's memory) at once, then at most once per `interval` with how
    many failures came meanwhile; and once when it is seen working again."""

    def __init__(
        self, log: logging.Logger, *, interval: float = INTERVAL, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._log = log
        self._interval = interval
        self._clock = clock
        self._failing: dict[str, tuple[float, int]] = {}  # source -> (when last said, failures not said since)

    def failed(self, source: str, line: str, *args: object) -> None:
        now = self._clock()
        said = self._failing.get(source)
        if said is not None and now - said[0] < self._interval:
            self._failing[source] = (said[0], said[1] + 1)
            return
        more = f"; {said[1]} more since" if said is not None and said[1] else ""
        self._failing[source] = (now, 0)
        self._log.error(f"{line}{more} (%s: said again in %g minutes at most)", *args, source, self._interval / 60)

    def worked(self, source: str) -> None:
        """`source` did its work: it is failing no more."""
        if self._failing and self._failing.pop(source, None) is not None:
            self._log.info("%s works again", source)
