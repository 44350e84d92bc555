"""The executor protocol shared by the paper executor and broker executors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from bot.options.orders import Fill, OrderRequest


class Executor(Protocol):
    def execute(self, order: OrderRequest) -> AsyncIterator[Fill]:
        """Yield the order's fills as they happen, and stop when the order is final.

        Raise `OrderRejected` (with a trader's sentence) if the order is refused before any fill. A quantity
        left unfilled when the iterator ends was cancelled.
        """
        ...
