"""Faults the reliability tests inject: a ledger whose writes fail, an executor that breaks mid-order."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import replace

import pytest

from bot.options.execution_paper import PaperExecutor
from bot.options.orders import Fill, OrderRequest
from bot.options.trade_ledger import TradeLedger


@contextmanager
def ledger_writes_fail(ledger: TradeLedger, code: int, *, half_first: bool = False) -> Iterator[list[int]]:
    """Every write to the ledger's file fails with `code` (ENOSPC: disk full, EROFS: read-only); with `half_first`
    half of the bytes get written first, as a disk filling up mid-line does. Yields the failed write count."""
    real_write = os.write
    failed: list[int] = []

    def write(fd: int, data: bytes | memoryview) -> int:  # type: ignore[override]
        if fd != ledger._fd:
            return real_write(fd, data)
        failed.append(len(data))
        if half_first and len(data) > 1:
            real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(code, os.strerror(code))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "write", write)
        yield failed


class PartlyFilling:
    """A paper executor that fills `first` contracts of each order, then fails (`then="fail"`) or never answers
    again (`then="hang"`), as a broker connection that breaks mid-order does."""

    def __init__(self, paper: PaperExecutor, first: int, then: str, *, armed: bool = True) -> None:
        self._paper = paper
        self.first = first
        self._then = then
        self.armed = armed
        self.closed = 0

    async def execute(self, order: OrderRequest) -> AsyncIterator[Fill]:
        if not self.armed:
            async for fill in self._paper.execute(order):
                yield fill
            return
        try:
            async for fill in self._paper.execute(order):
                if self.first:
                    yield replace(fill, qty=min(self.first, fill.qty))
            if self._then == "fail":
                raise ConnectionResetError("broker connection reset")
            await asyncio.Event().wait()
        finally:
            self.closed += 1  # the iterator was closed: a broker executor would cancel the rest here
