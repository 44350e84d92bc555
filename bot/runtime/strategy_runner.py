"""Feeds quotes to the strategies' entry hooks: one mailbox and one worker per strategy."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence

from bot.options.inbox import LatestByKey
from bot.options.quotes import Quote, QuoteCache
from bot.strategies.base import Strategy

log = logging.getLogger(__name__)


class StrategyRunner:
    def __init__(self, strategies: Sequence[Strategy], quotes: QuoteCache) -> None:
        self.strategies = {strategy.name: strategy for strategy in strategies}
        self._inboxes: dict[str, LatestByKey[str, Quote]] = {name: LatestByKey() for name in self.strategies}
        self._wanted: defaultdict[str, list[str]] = defaultdict(list)
        for strategy in strategies:
            for symbol in strategy.symbols():
                self._wanted[symbol].append(strategy.name)
        quotes.subscribe(self._on_quote)

    def _on_quote(self, symbol: str, quote: Quote) -> None:
        for name in self._wanted.get(symbol, ()):
            self._inboxes[name].put(symbol, quote)

    def pending(self) -> int:
        return sum(len(inbox) for inbox in self._inboxes.values())

    async def process(self, name: str) -> None:
        """Hand the strategy the latest quote of each symbol that changed; its errors are logged."""
        strategy = self.strategies[name]
        for symbol, quote in self._inboxes[name].take_all().items():
            try:
                await strategy.on_quote(symbol, quote)
            except Exception:
                log.exception("strategy %s failed on a quote of %s", name, symbol)

    async def process_all(self) -> None:
        for name in self.strategies:
            await self.process(name)

    async def run(self, name: str) -> None:
        """The strategy's worker, until cancelled."""
        inbox = self._inboxes[name]
        while True:
            await inbox.wait()
            await self.process(name)
