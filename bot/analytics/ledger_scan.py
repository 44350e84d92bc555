"""The fast read of the ledger for analytics: the file mapped in memory, only the fields the report needs.

msgspec decodes blocks of lines straight into small structs (Decimals exact, from the ledger's strings),
and a fill's day comes from its UTC time stamp through a per-minute memo. A large file is split at line
ends between worker processes whose day books are joined in file order. The numbers are the pure
model's (`daily.py`), which the tests hold it to.
"""

from __future__ import annotations

import itertools
import mmap
import multiprocessing
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from decimal import Decimal
from pathlib import Path

import msgspec

from bot.analytics.book import DailyBook
from bot.analytics.tally import DayReport
from bot.options.trade_ledger import LedgerError

BLOCK = 1 << 22  # big enough that per-block costs vanish, small enough to keep memory flat
PARALLEL_FROM = 64 << 20  # below this a second process costs more than it saves


class _Line(msgspec.Struct, gc=False):
    ts: str
    kind: str
    strategy: str
    underlying: str
    fees: Decimal
    realized_pnl: Decimal
    realized_pnl_total: str  # read as a Decimal only at a close: decoding every one costs more


_DECODER = msgspec.json.Decoder(_Line)
_Problem = (msgspec.ValidationError, msgspec.DecodeError)


class LocalDays:
    """The day in `zone` of a ledger time stamp (ISO-8601). Stamps in UTC (`...Z`, as the ledger writes
    them) are remembered per minute, since every zone's offset is a whole number of minutes."""

    def __init__(self, zone: tzinfo) -> None:
        self.zone = zone
        self._by_minute: dict[str, date] = {}

    def __call__(self, ts: str) -> date:
        if ts[-1:] != "Z":
            return parse_ts(ts).astimezone(self.zone).date()
        minute = ts[:16]
        day = self._by_minute.get(minute)
        if day is None:
            day = self._by_minute[minute] = parse_ts(ts).astimezone(self.zone).date()
        return day


def parse_ts(ts: str) -> datetime:
    try:
        stamp = datetime.fromisoformat(ts)
    except ValueError:
        stamp = None
    if stamp is None or stamp.tzinfo is None:
        raise LedgerError(f"the ledger has a time stamp that is not ISO-8601 with a UTC offset: {ts!r}")
    return stamp


@dataclass(frozen=True, slots=True)
class Scan:
    reports: list[DayReport]
    curve: list[tuple[datetime, Decimal]]  # empty unless asked for
    torn_tail: int  # bytes after the last newline: a write cut short by a crash, left out


def scan_ledger(
    path: Path,
    zone: tzinfo,
    first: date | None = None,
    last: date | None = None,
    *,
    curve: bool = False,
    workers: int = 1,
) -> Scan:
    """The daily reports (and, with `curve`, the equity curve) of the days from `first` to `last`.

    `workers` > 1 splits a large file between that many processes (forked: only for a process that runs
    no other threads, such as the command line).
    """
    if not path.exists() or path.stat().st_size == 0:
        return Scan(DailyBook(LocalDays(zone), first, last).reports(), [], 0)
    with path.open("rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
        end = data.rfind(b"\n") + 1
        parts = _split(data, end, workers if end >= PARALLEL_FROM else 1)
        torn = len(data) - end
    book = _scan_parts(path, zone, first, last, curve, parts)
    return Scan(book.reports(), [(parse_ts(ts), total) for ts, total in book.equity_curve()], torn)


def _split(data: mmap.mmap, end: int, parts: int) -> list[tuple[int, int]]:
    """`parts` byte ranges of whole lines covering data[:end]."""
    cuts = [0]
    for n in range(1, parts):
        cut = data.find(b"\n", end * n // parts) + 1
        if cuts[-1] < cut < end:
            cuts.append(cut)
    cuts.append(end)
    return list(itertools.pairwise(cuts))


def _scan_parts(
    path: Path, zone: tzinfo, first: date | None, last: date | None, curve: bool, parts: list[tuple[int, int]]
) -> DailyBook[str]:
    if len(parts) == 1:
        return _scan_part(path, zone, first, last, curve, *parts[0])
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(len(parts) - 1, mp_context=context) as pool:
        later = [pool.submit(_scan_part, path, zone, first, last, curve, *part) for part in parts[1:]]
        book = _scan_part(path, zone, first, last, curve, *parts[0])
        for future in later:
            book.join(future.result())
    return book


def _scan_part(
    path: Path, zone: tzinfo, first: date | None, last: date | None, curve: bool, start: int, end: int
) -> DailyBook[str]:
    book: DailyBook[str] = DailyBook(LocalDays(zone), first, last, curve=curve)
    with path.open("rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
        for block_start, block_end in _blocks(data, start, end):
            book.add(_decoded(path, data, data[block_start:block_end], block_start))
    return book


def _blocks(data: mmap.mmap, start: int, end: int) -> Iterator[tuple[int, int]]:
    while start < end:
        cut = data.rfind(b"\n", start, min(start + BLOCK, end)) + 1
        if cut <= start:  # a line longer than a block
            cut = data.find(b"\n", start, end) + 1 or end
        yield start, cut
        start = cut


def _decoded(path: Path, data: mmap.mmap, block: bytes, offset: int) -> list[_Line]:
    try:
        return _DECODER.decode_lines(block)
    except _Problem:
        pass
    # Find the bad line again, one by one, to name it.
    number = data[:offset].count(b"\n") + 1
    for line in block.split(b"\n"):
        try:
            if line.strip():
                _DECODER.decode(line)
        except _Problem as error:
            raise LedgerError(f"{path}: line {number} is not a valid trade event ({error})") from None
        number += 1
    raise LedgerError(f"{path}: the lines from {number} on cannot be read")
