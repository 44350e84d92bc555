"""Real history in the replay format: minute bars become quotes for the underlying and for the option contracts the
strategies would have picked, written as bot/options/replay_feed.py reads them. Pure: the fetching is
bot/broker/alpaca_history.py's.

Alpaca serves no historical option quotes, only trades (bars), so each bar's close becomes a quote through a spread
model, stamped at the bar's end: the moment its close was known.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any, Protocol

from bot.options.contracts import OptionContract, Right
from bot.options.market_hours import MARKET_TZ, is_trading_day, session_close, session_open
from bot.options.quotes import Quote
from bot.options.replay_feed import FIELDS

TICK = Decimal("0.01")  # every price the desk sees has two decimals (SPY and QQQ options trade in pennies)
_TWO_HUNDRED = Decimal(200)  # a percentage of the close, half of it each side
_MINUTE = timedelta(minutes=1)
_DAY = timedelta(days=1)

Row = tuple[datetime, str, Quote]  # a quote's time, its symbol (a ticker or a padded OCC symbol), the quote


@dataclass(frozen=True, slots=True)
class Bar:
    """One minute bar: when it started and the price of its last trade."""

    start: datetime
    close: Decimal

    @property
    def end(self) -> datetime:
        return self.start + _MINUTE


@dataclass(frozen=True, slots=True)
class SpreadModel:
    """How a bar's close becomes a quote: a spread `pct` percent of the close wide around it, each side at least
    `min_ticks` cents from it, the bid rounded down and the ask up to the cent (against the trader, who buys at the ask
    and sells at the bid), the bid at least a cent. So the close lies between bid and ask, never crossed nor locked."""

    pct: Decimal = Decimal(4)  # as wide as the simulated market quotes options, so both charge a trader alike
    min_ticks: int = 1

    def __post_init__(self) -> None:
        if not (self.pct.is_finite() and 0 <= self.pct <= 200):
            raise ValueError(f"the spread must be from 0 to 200 % of the price, not {self.pct}")
        if not 1 <= self.min_ticks <= 100:
            raise ValueError(f"each side must be from 1 to 100 ticks from the close, not {self.min_ticks}")

    def quote(self, bar: Bar) -> Quote:
        close = bar.close
        half = max(TICK * self.min_ticks, close * self.pct / _TWO_HUNDRED)
        bid = max(TICK, (close - half).quantize(TICK, ROUND_FLOOR))
        ask = (close + half).quantize(TICK, ROUND_CEILING)  # above the close by a tick at least: above any bid
        return Quote(bid=bid, ask=ask, last=close, ts=bar.end)

    def describe(self) -> str:
        ticks = f"{self.min_ticks} cent" + "s" * (self.min_ticks != 1)
        return f"{self.pct:g} % of the close wide, each side at least {ticks} from it, bid rounded down and ask up"


# The underlying is only read, never traded: a cent either side of the close, as the simulated market quotes it, so
# that its mark (the mid, which the strategies read) is the bar's close.
UNDERLYING_SPREAD = SpreadModel(pct=Decimal(0), min_ticks=1)


class ContractPicker(Protocol):
    """A strategy's own rule for the contract it opens (UnderlyingStrategy.contract_for)."""

    def contract_for(self, spot: Decimal, right: Right, today: date) -> OptionContract: ...


def parse_bars(raw: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, list[Bar]]:
    """Alpaca's bars by symbol (its raw answer: `t` an RFC 3339 time, `c` the close), oldest first; ValueError names
    the first bar that cannot be read."""
    parsed: dict[str, list[Bar]] = {}
    for symbol, bars in raw.items():
        rows = []
        for bar in bars:
            try:
                start = datetime.fromisoformat(str(bar["t"]))
                close = Decimal(str(bar["c"]))
            except (KeyError, TypeError, ValueError, InvalidOperation):
                raise ValueError(f"Alpaca sent a bar of {symbol} that cannot be read: {dict(bar)}") from None
            if start.utcoffset() is None or not close.is_finite() or close <= 0:
                raise ValueError(f"Alpaca sent a bar of {symbol} that cannot be read: {dict(bar)}")
            rows.append(Bar(start.astimezone(UTC), close))
        parsed[symbol] = sorted(rows, key=lambda b: b.start)
    return parsed


def session_day(bar: Bar) -> date | None:
    """The trading day of a bar of its regular session whose close was known before the session closed, else None.
    The bar of the last minute, which ends at the close, is left out as the simulated market's last tick comes before
    the close; pre- and after-market bars are left out because the strategies read the session from its open."""
    day = bar.start.astimezone(MARKET_TZ).date()
    in_session = is_trading_day(day) and session_open(day) <= bar.start and bar.end < session_close(day)
    return day if in_session else None


@dataclass
class Days:
    """The underlying's session bars by trading day, and the weekdays of the range skipped, with why."""

    bars: dict[date, list[Bar]]
    skipped: list[tuple[date, str]]


def split_days(bars: Iterable[Bar], first: date, last: date) -> Days:
    by_day: dict[date, list[Bar]] = {}
    for bar in bars:
        if (day := session_day(bar)) is not None:
            by_day.setdefault(day, []).append(bar)
    days = Days({}, [])
    day = first
    while day <= last:
        if day in by_day:
            days.bars[day] = by_day[day]
        elif day.weekday() < 5:
            days.skipped.append((day, "no bars" if is_trading_day(day) else "the market was closed"))
        day += _DAY
    return days


def underlying_rows(symbol: str, days: Days) -> dict[date, list[Row]]:
    return {day: [(bar.end, symbol, UNDERLYING_SPREAD.quote(bar)) for bar in bars] for day, bars in days.bars.items()}


def picked_contracts(pickers: Sequence[ContractPicker], marks: Iterable[Decimal], day: date) -> set[OptionContract]:
    """Every contract a strategy could open on `day` at one of these marks of its underlying, by its own rule: a call
    or a put, whichever way the signal goes."""
    return {picker.contract_for(mark, right, day) for mark in set(marks) for picker in pickers for right in Right}


def fetch_windows(picked: Mapping[date, set[OptionContract]], last: date) -> dict[tuple[date, date], list[str]]:
    """The contracts' OCC symbols (compact, as Alpaca writes them) grouped by the days their bars are needed: from
    the first day one is picked until it expires (a position may be held so long), or the range ends."""
    first_picked: dict[OptionContract, date] = {}
    for day in sorted(picked):
        for contract in picked[day]:
            first_picked.setdefault(contract, day)
    windows: dict[tuple[date, date], list[str]] = {}
    for contract, day in first_picked.items():
        windows.setdefault((day, min(contract.expiry, last)), []).append(contract.compact)
    return {window: sorted(symbols) for window, symbols in sorted(windows.items())}


def option_rows(bars: Mapping[str, Sequence[Bar]], spread: SpreadModel, days: Collection[date]) -> list[Row]:
    """Quotes of each contract's session bars on `days` (those the underlying is quoted on), keyed by its padded OCC
    symbol (the desk's key for a contract)."""
    padded = {symbol: OptionContract.parse(symbol).symbol for symbol in bars}
    return [
        (bar.end, padded[symbol], spread.quote(bar))
        for symbol, series in bars.items()
        for bar in series
        if session_day(bar) in days
    ]


def replay_file(rows: Iterable[Row], suffix: str) -> bytes:
    """The quotes, sorted by time, in the replay format of `suffix` (.csv or .jsonl); times in New York."""
    stamps: dict[datetime, str] = {}  # a minute's quotes share their time: written once
    records = [
        [
            stamps.get(ts) or stamps.setdefault(ts, ts.astimezone(MARKET_TZ).isoformat()),
            symbol,
            *("" if value is None else str(value) for value in (q.bid, q.ask, q.last, q.bid_size, q.ask_size)),
        ]
        for ts, symbol, q in sorted(rows, key=lambda row: row[:2])
    ]
    if suffix == ".jsonl":
        return "".join(json.dumps({k: v for k, v in zip(FIELDS, r, strict=True) if v}) + "\n" for r in records).encode()
    text = io.StringIO(newline="")
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(FIELDS)
    writer.writerows(records)
    return text.getvalue().encode()
