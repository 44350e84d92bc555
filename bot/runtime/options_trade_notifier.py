"""Shows every change of a position: after each fill is durable in the ledger, its message goes to a sink.

The order manager calls `on_fill` only once the fill's ledger line is on disk, so nothing is shown that
is not recorded. Updates are coalesced per position (the latest state wins) and delivered apart from
trading, so a slow or failing sink never blocks or undoes a trade.
"""

from __future__ import annotations

import logging
import sys
from typing import Protocol, TextIO

from bot.options.inbox import LatestByKey
from bot.options.positions import Position
from bot.options.quotes import QuoteCache
from bot.options.trade_ledger import TradeEvent
from bot.runtime.position_view import PositionView, render_text

log = logging.getLogger(__name__)


class MessageSink(Protocol):
    async def show(self, view: PositionView) -> None:
        """Post or edit the position's one message so that it shows `view`."""
        ...


class ConsoleSink:
    """Renders position messages in the terminal, with the content the Discord embed holds."""

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out

    async def show(self, view: PositionView) -> None:
        out = self._out or sys.stdout
        print(render_text(view), file=out, flush=True)


class OptionsTradeNotifier:
    def __init__(self, sink: MessageSink, quotes: QuoteCache) -> None:
        self._sink = sink
        self._quotes = quotes
        self._pending: LatestByKey[str, PositionView] = LatestByKey()

    async def on_fill(self, event: TradeEvent, position: Position) -> None:
        """Order-manager listener: queue the position's new message."""
        quote = self._quotes.get(position.contract.symbol)
        self._pending.put(position.position_id, PositionView(position, quote.mark if quote else None))

    @property
    def backlog(self) -> int:
        return len(self._pending)

    async def flush(self) -> None:
        """Deliver every queued message now; a failing sink is logged, never raised."""
        for position_id, view in self._pending.take_all().items():
            try:
                await self._sink.show(view)
            except Exception:
                log.exception("could not show the message of position %s; trading goes on", position_id)

    async def run(self) -> None:
        """Deliver queued messages as they come, until cancelled."""
        while True:
            await self._pending.wait()
            await self.flush()
