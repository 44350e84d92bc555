"""The chart on each position's message: a bounded history of every open position's marks, fed by the quote
cache (never by the trading path), and the chart drawn from it in a worker thread when a message goes out.

Each position keeps at most `capacity` mark samples spread over its whole life: when full, every other sample
goes and new ones are taken twice as far apart, so memory and drawing cost the same for a position held for
minutes or for weeks; the newest mark is always kept, so the line ends where the message's mark is. The history
lives in memory only: after a restart a position's mark line starts at the restart (the bot saw no marks while
it was down), while the fill markers come from the ledger as always. Closed positions keep theirs until
`keep_closed` later closes push them out, long enough for their last message.
"""

from __future__ import annotations

import asyncio
import logging
from array import array
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from bot.options.order_manager import OptionsOrderManager
from bot.options.positions import ActionKind, Position
from bot.options.quotes import Quote, QuoteCache
from bot.options.trade_ledger import TradeEvent
from bot.render.charts import Mark, position_chart_png
from bot.render.position_view import PositionView

log = logging.getLogger(__name__)

CAPACITY = 240  # samples per position: finer than the 800-pixel chart needs once the line is drawn
MIN_SPACING = timedelta(seconds=5)  # a feed may quote many times a second; a chart needs no more than this
KEEP_CLOSED = 200

Render = Callable[[Position, Sequence[Mark]], bytes]


class MarkSeries:
    """One position's mark samples: parallel arrays of POSIX seconds and prices (16 bytes a sample)."""

    __slots__ = ("due", "latest", "marks", "newest", "spacing", "times")

    def __init__(self) -> None:
        self.times = array("d")
        self.marks = array("d")
        self.spacing = MIN_SPACING  # the least time between two kept samples; doubles at each thinning
        self.due: datetime | None = None  # no sample is kept before this time
        self.newest: datetime | None = None
        # The newest quote when too close to the last sample to be kept as one; its mark is worked out only
        # if a chart is drawn: most quotes of a busy contract cost a comparison and nothing more.
        self.latest: Quote | None = None

    def add(self, ts: datetime, quote: Quote, capacity: int = CAPACITY) -> None:
        if self.newest is not None and ts < self.newest:
            return  # an older quote arriving late: the line never goes back in time
        if self.due is not None and ts < self.due:
            self.newest, self.latest = ts, quote
            return
        mark = quote.mark
        if mark is None:
            return
        times = self.times
        times.append(ts.timestamp())
        self.marks.append(float(mark))
        self.newest, self.latest = ts, None
        if len(times) >= capacity:
            del times[1::2]
            del self.marks[1::2]
            self.spacing = max(MIN_SPACING, timedelta(seconds=(times[-1] - times[0]) / (len(times) - 1)))
        self.due = ts + self.spacing

    def samples(self) -> list[Mark]:
        points = [(datetime.fromtimestamp(ts, UTC), mark) for ts, mark in zip(self.times, self.marks, strict=True)]
        latest = self.latest
        if latest is not None and latest.mark is not None and self.newest is not None:
            points.append((self.newest, float(latest.mark)))
        return points


class PositionCharts:
    """Keeps the marks of open positions and draws a position's chart for its message.

    `enabled()` is read at each chart (the `discord.charts` setting); `render` draws the PNG (in a worker
    thread, so trading never waits on a chart).
    """

    def __init__(
        self,
        quotes: QuoteCache,
        manager: OptionsOrderManager,
        *,
        enabled: Callable[[], bool] = lambda: True,
        render: Render = position_chart_png,
        capacity: int = CAPACITY,
        keep_closed: int = KEEP_CLOSED,
    ) -> None:
        self._quotes = quotes
        self._enabled = enabled
        self.render = render  # swappable: tests draw slowly, or fail, on purpose
        self._capacity = capacity
        self._keep_closed = keep_closed
        self._series: dict[str, MarkSeries] = {}
        self._by_symbol: dict[str, set[str]] = {}
        self._closed: OrderedDict[str, None] = OrderedDict()  # oldest close first
        self.rendered = 0
        for position in manager.open_positions():
            self._watch(position)
        manager.subscribe(self._on_fill)
        quotes.subscribe(self._on_quote)

    def _watch(self, position: Position) -> MarkSeries:
        self._by_symbol.setdefault(position.contract.symbol, set()).add(position.position_id)
        return self._series.setdefault(position.position_id, MarkSeries())

    async def _on_fill(self, event: TradeEvent, position: Position) -> None:
        if event.kind is ActionKind.OPEN:
            # The line starts at the open with the mark the market showed then.
            quote = self._quotes.get(position.contract.symbol)
            series = self._watch(position)
            if quote is not None:
                series.add(event.ts, quote, self._capacity)
        if position.is_open:
            return
        watching = self._by_symbol.get(position.contract.symbol, set())
        watching.discard(position.position_id)
        if not watching:
            self._by_symbol.pop(position.contract.symbol, None)
        self._closed[position.position_id] = None
        while len(self._closed) > self._keep_closed:
            gone, _ = self._closed.popitem(last=False)
            self._series.pop(gone, None)

    def _on_quote(self, symbol: str, quote: Quote) -> None:
        watching = self._by_symbol.get(symbol)
        ts = quote.ts
        if not watching or ts is None:
            return  # not a contract held; a quote without a time has no place on the chart
        for position_id in watching:
            self._series[position_id].add(ts, quote, self._capacity)

    @property
    def samples_held(self) -> int:
        return sum(len(series.times) for series in self._series.values())

    def marks(self, position_id: str) -> list[Mark]:
        series = self._series.get(position_id)
        return series.samples() if series is not None else []

    async def png(self, view: PositionView) -> bytes | None:
        """The chart of the position as the message shows it, or None when charts are off or it failed
        (a message without its chart is better than no message)."""
        if not self._enabled():
            return None
        position = view.position
        marks = self.marks(position.position_id)  # taken on the loop, where the quotes add to it
        try:
            png = await asyncio.to_thread(self.render, position, marks)
        except Exception:
            log.exception("could not draw the chart of position %s; the message goes without it", position.position_id)
            return None
        self.rendered += 1
        return png
