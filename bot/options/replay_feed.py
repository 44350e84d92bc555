"""A feed that replays recorded quotes from a CSV or JSONL file, in file order, optionally at recorded pace."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from bot.options.clock import SimulatedClock
from bot.options.contracts import OptionContract
from bot.options.errors import TradeError
from bot.options.quotes import Quote, QuoteCache

Sleep = Callable[[float], Awaitable[object]]

FIELDS = ("ts", "symbol", "bid", "ask", "last", "bid_size", "ask_size")
_TICKER = re.compile(r"^[A-Z][A-Z0-9.\-/]{0,9}$")
# Unpaced replays still hand the event loop back now and then, so a long file does not starve other tasks.
_YIELD_EVERY = 1000


class _RowError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"field {field!r}: {message}")


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise TypeError(type(value).__name__)
    text = str(value).strip()
    return text or None


def _field_text(row: Mapping[str, object], field: str) -> str | None:
    try:
        return _text(row.get(field))
    except TypeError as error:
        raise _RowError(field, f"expected text or a number, got {error}") from None


def _timestamp(row: Mapping[str, object]) -> datetime:
    text = _field_text(row, "ts")
    if text is None:
        raise _RowError("ts", "is required")
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        raise _RowError("ts", f"{text!r} is not an ISO-8601 timestamp") from None
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise _RowError("ts", f"{text!r} has no UTC offset (write e.g. 2026-11-27T14:30:00+00:00)")
    return ts.astimezone(UTC)


def _symbol(row: Mapping[str, object]) -> str:
    text = _field_text(row, "symbol")
    if text is None:
        raise _RowError("symbol", "is required")
    try:
        # Contracts are keyed by the padded OCC symbol everywhere, whichever form the recording used.
        return OptionContract.parse(text).symbol
    except TradeError:
        pass
    if _TICKER.match(text.upper()) is None:
        raise _RowError("symbol", f"{text!r} is neither a ticker nor an OCC option symbol")
    return text.upper()


def _price(row: Mapping[str, object], field: str) -> Decimal | None:
    text = _field_text(row, field)
    if text is None:
        return None
    try:
        price = Decimal(text)
    except InvalidOperation:
        raise _RowError(field, f"{text!r} is not a decimal number") from None
    if not price.is_finite() or price < 0:
        raise _RowError(field, f"{text!r} is not a price (a finite number, zero or more)")
    return price


def _size(row: Mapping[str, object], field: str) -> int | None:
    text = _field_text(row, field)
    if text is None:
        return None
    if not (text.isascii() and text.isdigit()):
        raise _RowError(field, f"{text!r} is not a whole number of zero or more")
    return int(text)


def _entry(row: Mapping[str, object]) -> tuple[datetime, str, Quote]:
    ts, symbol = _timestamp(row), _symbol(row)
    quote = Quote(
        bid=_price(row, "bid"),
        ask=_price(row, "ask"),
        last=_price(row, "last"),
        bid_size=_size(row, "bid_size"),
        ask_size=_size(row, "ask_size"),
        ts=ts,
    )
    return ts, symbol, quote


def _file_text(path: Path) -> str:
    """The whole file as text; every way it can fail to be one names the file (and the line, for bad UTF-8)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ValueError(f"{path}: no such replay file.") from None
    except IsADirectoryError:
        raise ValueError(f"{path}: a folder, not a replay file.") from None
    except OSError as error:
        raise ValueError(f"{path}: the replay file cannot be read ({error.strerror}).") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ValueError(
            f"{path}:{line}: not UTF-8 text (byte 0x{data[error.start]:02x}); save the recording as UTF-8."
        ) from None


def _csv_rows(path: Path, text: str) -> Iterator[tuple[int, Mapping[str, object]]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = reader.fieldnames or []
    missing = [field for field in ("ts", "symbol") if field not in header]
    if missing:
        raise ValueError(f"{path}:1: the header has no {' or '.join(repr(m) for m in missing)} column.")
    for row in reader:
        # line_num is the line the row ends on, which is where a reader of the file will look.
        yield reader.line_num, row


def _jsonl_rows(path: Path, text: str) -> Iterator[tuple[int, Mapping[str, object]]]:
    for line_number, line in enumerate(io.StringIO(text), start=1):
        if not line.strip():
            continue
        try:
            # Decimal floats keep 1.15 exactly 1.15 rather than the nearest binary float.
            row = json.loads(line, parse_float=Decimal)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}:{line_number}: not valid JSON ({error.msg}).") from None
        if not isinstance(row, dict):
            raise ValueError(f"{path}:{line_number}: expected a JSON object with the fields {', '.join(FIELDS)}.")
        yield line_number, row


def load_quotes(path: str | Path) -> list[tuple[str, Quote]]:
    """Every recorded quote as (symbol, quote) in file order; ValueError names the file, line and field."""
    return [(symbol, quote) for _, symbol, quote in _load(Path(path))]


def _load(path: Path) -> list[tuple[datetime, str, Quote]]:
    text = _file_text(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".jsonl"):
        raise ValueError(f"{path}: a replay file must end in .csv or .jsonl.")
    rows = _csv_rows(path, text) if suffix == ".csv" else _jsonl_rows(path, text)
    entries = []
    for line_number, row in rows:
        try:
            entries.append(_entry(row))
        except _RowError as error:
            raise ValueError(f"{path}:{line_number}: {error}.") from None
    return entries


class ReplayFeed:
    """The QuoteFeed over a recording: at `speed` times the recorded pace, or as fast as possible if None."""

    def __init__(
        self,
        path: str | Path,
        *,
        speed: float | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: SimulatedClock | None = None,
    ) -> None:
        if speed is not None and not speed > 0:
            raise ValueError(f"speed must be positive (or None for as fast as possible), not {speed}.")
        self.path = Path(path)
        self.speed = speed
        self._sleep = sleep
        # Read up front so that a bad file stops start-up rather than a running feed.
        self._entries = _load(self.path)
        self.clock = clock  # the desk's clock, moved to each quote's time as it arrives

    @property
    def starts_at(self) -> datetime | None:
        """The time of the first recorded quote (None for an empty recording)."""
        return self._entries[0][0] if self._entries else None

    @property
    def quotes(self) -> list[tuple[str, Quote]]:
        return [(symbol, quote) for _, symbol, quote in self._entries]

    @property
    def underlyings(self) -> set[str]:
        """The tickers the recording quotes (its option contracts aside): what a strategy can trade on."""
        return {symbol for _, symbol, _ in self._entries if _TICKER.match(symbol)}

    def subscribe(self, symbols: Iterable[str]) -> None:
        """Nothing to do: the recording holds what it holds."""

    async def run(self, cache: QuoteCache) -> None:
        """Push every recorded quote in order, then return."""
        previous: datetime | None = None
        for index, (ts, symbol, quote) in enumerate(self._entries, start=1):
            if self.speed is not None and previous is not None:
                gap = (ts - previous).total_seconds()
                if gap > 0:
                    await self._sleep(gap / self.speed)
            elif self.speed is None and index % _YIELD_EVERY == 0:
                await self._sleep(0)
            if self.clock is not None:
                self.clock.advance(ts)
            cache.update(symbol, quote)
            previous = ts
