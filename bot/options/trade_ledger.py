"""The write-first trade ledger: one JSON line per fill, durable before `append` returns.

`storage/options/trade_events.jsonl` is append-only and never rewritten in place; it is the source of
truth that positions, analytics and restarts are rebuilt from. Its field names are a public contract.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, NamedTuple

from bot import crash
from bot.options.errors import TradeError
from bot.options.positions import Position, PositionAction

# The line format lives in trade_event.py; its names are imported from here too, by the ledger's readers.
from bot.options.trade_event import AVG_ENTRY_PLACES as AVG_ENTRY_PLACES
from bot.options.trade_event import LedgerError, TradeEvent, parse_line
from bot.paths import fsync_dir, private_dir

if TYPE_CHECKING:
    import asyncio

# Loggers are taken where a rare path warns (`import logging` there): the read-only commands import this module, and
# logging takes some 8 ms to load.


class LedgerGone(LedgerError):
    """The ledger's path no longer leads to the file the desk has open: it was moved, replaced or deleted."""


def apply_event(positions: dict[str, Position], event: TradeEvent) -> tuple[Position, PositionAction]:
    """Fold one ledger event into `positions` (the replay step); raises TradeError if it cannot apply."""
    position = positions.get(event.position_id) or Position(event.position_id, event.contract, event.strategy)
    after, action = position.with_fill(
        side=event.side,
        qty=event.qty,
        price=event.price,
        fees=event.fees,
        ts=event.ts,
        fill_id=event.fill_id,
        order_id=event.order_id,
        source=event.source,
        actor=event.actor,
    )
    positions[event.position_id] = after
    return after, action


def replay(events: Iterable[TradeEvent]) -> dict[str, Position]:
    """Rebuild every position from the ledger, in file order."""
    positions: dict[str, Position] = {}
    for number, event in enumerate(events, start=1):
        try:
            apply_event(positions, event)
        except TradeError as error:
            raise LedgerError(f"event {number} ({event.event_id}) cannot be replayed: {error}") from None
    return positions


# A NamedTuple, not a frozen dataclass: every read-only command imports this module, and a dataclass takes Python 3.11
# ~1.5 ms to make.
class LedgerContents(NamedTuple):
    events: list[TradeEvent]
    torn_tail: bytes  # bytes after the last newline: a write cut short by a crash (empty if none)


def read_ledger(path: Path) -> LedgerContents:
    """Parse every complete line; a malformed one raises LedgerError naming its line number."""
    if not path.exists():
        return LedgerContents([], b"")
    data = path.read_bytes()
    body, _, tail = data.rpartition(b"\n")
    events = list(_parse_lines(path, body.split(b"\n") if body else []))
    return LedgerContents(events, tail)


def _parse_lines(path: Path, lines: list[bytes]) -> Iterator[TradeEvent]:
    for number, line in enumerate(lines, start=1):
        yield parse_line(path, number, line)


def repair_torn_tail(path: Path) -> Path | None:
    """Cut away a last line left half-written by a crash, keeping its bytes in a side file.

    Run at start-up of every command that writes. Returns the side file, or None if nothing was torn.
    """
    if not path.exists():
        return None
    with path.open("rb+") as file:
        keep, size = _last_newline_end(file), file.seek(0, os.SEEK_END)
        if keep == size:
            return None
        file.seek(keep)
        tail = file.read()
        side = path.with_name(f"{path.name}.torn-{os.getpid()}-{size}")
        _write_durably(side, tail)
        file.truncate(keep)
        file.flush()
        os.fsync(file.fileno())
    import logging

    logging.getLogger(__name__).warning(
        "ledger %s: cut away a torn last line of %d bytes (a write interrupted by a crash); kept in %s",
        path,
        len(tail),
        side,
    )
    return side


def _last_newline_end(file: BinaryIO, before: int | None = None, chunk: int = 1 << 16) -> int:
    """The offset just past the file's last newline before offset `before` (default: the end), or 0 if
    there is none; read from the end, since the ledger is long."""
    end = file.seek(0, os.SEEK_END) if before is None else before
    while end > 0:
        start = max(0, end - chunk)
        file.seek(start)
        found = file.read(end - start).rfind(b"\n")
        if found >= 0:
            return start + found + 1
        end = start
    return 0


def last_event(path: Path) -> TradeEvent | None:
    """The ledger's last complete event, read from the end of the file alone."""
    if not path.exists():
        return None
    with path.open("rb") as file:
        end = _last_newline_end(file)
        if end == 0:
            return None
        start = _last_newline_end(file, before=end - 1)
        file.seek(start)
        line = file.read(end - 1 - start)
    return parse_line(path, 0, line)


def _write_durably(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


class TradeLedger:
    """Appends events durably (write + fsync) with group commit.

    The first append of a batch leads it: if other tasks are ready to run, it yields to the event loop
    once so that their appends join, then writes the whole batch and fsyncs once, inline. A thread hop per append
    would cost more than the fsync it saves. A queued line is always written, even if its caller is
    cancelled meanwhile, so a cancelled caller can count on its line being in the ledger.

    `durable=False` (a backtest's ledger, which the run writes again from scratch if it stops) leaves out the fsync
    per batch: the lines are written as they come and made durable once, at the close.
    """

    def __init__(self, path: Path, *, durable: bool = True) -> None:
        self.path = path
        self.durable = durable
        self._fd: int | None = None
        self._file_id: tuple[int, int] | None = None  # (st_dev, st_ino) of the open file
        self._size = 0  # bytes known to be on disk: a failed write is cut back to here
        self._pending: list[tuple[bytes, asyncio.Future[None]]] = []
        self._leading = False
        self._failure_listeners: list[Callable[[LedgerError], None]] = []

    def subscribe_failures(self, listener: Callable[[LedgerError], None]) -> None:
        """Call `listener(error)` at every failed write, once it was cut back (to alert the admins, to halt the
        desk when the ledger is gone)."""
        self._failure_listeners.append(listener)

    @classmethod
    def open(cls, path: Path) -> TradeLedger:
        """Open for appending, first repairing a torn tail left by a crash."""
        ledger = cls(path)
        try:
            private_dir(path.parent)
            repair_torn_tail(path)
            created = not path.exists()
            ledger._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            opened = os.fstat(ledger._fd)
            ledger._size, ledger._file_id = opened.st_size, (opened.st_dev, opened.st_ino)
            if created:
                fsync_dir(path.parent)
        except OSError as error:
            ledger.close()
            # Read-only storage, an immutable file, a full disk at the repair: the desk cannot record, so it
            # does not start.
            raise LedgerError(
                f"cannot open the trade ledger {path} for writing ({error.strerror or error}); a desk needs it "
                "writable: check the file and the storage folder"
            ) from None
        return ledger

    def read(self) -> list[TradeEvent]:
        return read_ledger(self.path).events

    async def append(self, event: TradeEvent) -> None:
        """Return once the event's line is on disk; raise LedgerError if it could not be written."""
        if self._fd is None:
            raise LedgerError(f"ledger {self.path} is not open")
        # Imported here: the commands that only read the ledger start without asyncio (some 30 ms).
        import asyncio

        line = event.to_line()
        loop = asyncio.get_running_loop()
        if not self._leading and not self._pending and not getattr(loop, "_ready", True):
            # Alone, and nothing else ready to run that could join: write at once, no batch to lead.
            try:
                self._write(line)
            except (OSError, LedgerGone) as error:
                raise self._failure(error) from error
            return
        future: asyncio.Future[None] = loop.create_future()
        self._pending.append((line, future))
        if self._leading:
            await future
            return
        self._leading = True
        try:
            # One turn of the loop lets every append that is ready to run join this batch. When nothing
            # else is ready to run, nobody could join: write at once.
            if getattr(loop, "_ready", True):
                await asyncio.sleep(0)
        finally:
            self._leading = False
            self._flush()
        future.result()

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        failure: LedgerError | None = None
        try:
            self._write(b"".join(line for line, _ in batch))
        except (OSError, LedgerGone) as error:
            failure = self._failure(error)
        for _, future in batch:
            if future.cancelled():
                continue
            if failure is None:
                future.set_result(None)
            else:
                future.set_exception(failure)

    def _failure(self, error: OSError | LedgerGone) -> LedgerError:
        """The error every writer of the failed batch gets; each of them says it (the order manager logs the
        fills it refused), so it is not logged here too."""
        if isinstance(error, LedgerGone):
            failure: LedgerError = error
        else:
            failure = LedgerError(f"could not write the trade ledger {self.path}: {error.strerror or error}")
        for listener in self._failure_listeners:
            try:
                listener(failure)
            except Exception:
                import logging

                logging.getLogger(__name__).exception("telling of a ledger failure failed")
        return failure

    def _check_still_the_ledger(self) -> None:
        """Raise LedgerGone unless the ledger's path still leads to the open file: after a move or a delete, a
        write would go to a file nobody reads again; after a replacement, the new file is not the desk's."""
        try:
            now = os.stat(self.path)
        except (FileNotFoundError, NotADirectoryError):
            now = None
        if now is None or (now.st_dev, now.st_ino) != self._file_id:
            raise LedgerGone(
                f"the trade ledger {self.path} was moved, replaced or deleted while the desk ran: nothing more is "
                "recorded, so every trade is refused; put the ledger back and restart the desk"
            )

    def _write(self, data: bytes) -> None:
        if self._fd is None:
            raise OSError(9, "the ledger was closed")
        # One stat per batch, next to its fsync (see bench/ledger_bench.py).
        self._check_still_the_ledger()
        try:
            view = memoryview(data)
            if crash.armed("ledger-mid-write"):
                os.write(self._fd, view[: len(view) // 2])
            crash.crash_point("ledger-mid-write")
            while view:
                view = view[os.write(self._fd, view) :]
            if self.durable:
                os.fsync(self._fd)
        except OSError:
            # Leave no partial line behind: the batch is all or nothing.
            try:
                os.ftruncate(self._fd, self._size)
            except OSError:
                import logging

                logging.getLogger(__name__).exception("ledger %s: could not cut back a failed write", self.path)
            raise
        self._size += len(data)

    def close(self) -> None:
        """Close the file, made durable first if its batches were not."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                if not self.durable:
                    os.fsync(fd)
            finally:
                os.close(fd)
