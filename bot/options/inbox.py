"""A mailbox that keeps only the latest value per key: bursts coalesce, nothing piles up."""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class LatestByKey(Generic[K, V]):
    def __init__(self) -> None:
        self._items: dict[K, V] = {}
        self._ready = asyncio.Event()

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._ready.set()

    def put_back(self, key: K, value: V) -> None:
        """Return a value taken but not handled yet, unless a newer one arrived meanwhile."""
        self._items.setdefault(key, value)
        self._ready.set()

    def peek(self, key: K) -> V | None:
        return self._items.get(key)

    def keys(self) -> list[K]:
        return list(self._items)

    def take(self, key: K) -> V | None:
        """Take the latest value for `key` (None if it was taken already)."""
        value = self._items.pop(key, None)
        if not self._items:
            self._ready.clear()
        return value

    def take_all(self) -> dict[K, V]:
        items, self._items = self._items, {}
        self._ready.clear()
        return items

    def __len__(self) -> int:
        return len(self._items)

    async def wait(self) -> None:
        """Wait until something is in the box."""
        if not self._items:
            await self._ready.wait()
