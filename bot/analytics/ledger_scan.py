"""The fast read of the ledger for analytics: polars parses the JSON lines (in parallel, only the fields
the report needs) and adds up each day, strategy and underlying in exact fixed-point decimals.

Money is read into 28 decimal places, which holds every amount the desk writes exactly (its unrounded
P&L has at most 28 significant digits); a ledger with an amount that would not fit is reported on by the
pure model instead (`daily.py`), which the tests hold this to.
"""

from __future__ import annotations

import io
import logging
import mmap
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import polars as pl

from bot.analytics.book import day_report, report_days
from bot.analytics.daily import daily_reports, equity_curve
from bot.analytics.tally import DayReport, Tally
from bot.options.trade_ledger import LedgerError, parse_line, read_ledger

log = logging.getLogger(__name__)

PLACES = 28
MONEY = pl.Decimal(38, PLACES)  # 10 digits before the point: up to $9,999,999,999 a day
_FIELDS = {name: pl.String for name in ("ts", "kind", "strategy", "underlying", "fees", "realized_pnl")}
_SCHEMA = {**_FIELDS, "realized_pnl_total": pl.String}
_AMOUNTS = ("fees", "realized_pnl", "realized_pnl_total")
LEDGER_TIME = "%Y-%m-%dT%H:%M:%S%.fZ"  # how TradeEvent writes `ts` (UTC, `Z`, fraction only when there is one)


class _NotExact(Exception):
    """An amount polars' fixed-point decimals would not hold exactly."""


@dataclass(frozen=True, slots=True)
class Scan:
    reports: list[DayReport]
    curve: list[tuple[datetime, Decimal]]  # empty unless asked for
    torn_tail: int  # bytes after the last newline: a write cut short by a crash, left out


def scan_ledger(
    path: Path, zone: tzinfo, first: date | None = None, last: date | None = None, *, curve: bool = False
) -> Scan:
    """The daily reports (and, with `curve`, the equity curve) of the days from `first` to `last`."""
    source, torn = _whole_lines(path)
    if source is None:
        return Scan([day_report(d, {}, 0, Decimal(0)) for d in report_days(set(), first, last)], [], torn)
    try:
        fills = _fills(source, zone, first, last)
        reports = _reports(fills, first, last)
        points = _curve(fills) if curve else []
    except _NotExact as why:
        log.warning("ledger %s: %s; reporting from the pure model (slower)", path, why)
        events = read_ledger(path).events
        points = equity_curve(events, zone, first, last) if curve else []
        return Scan(daily_reports(events, zone, first, last), points, torn)
    except pl.exceptions.PolarsError:
        raise _bad_line(path) from None
    return Scan(reports, points, torn)


def _whole_lines(path: Path) -> tuple[Path | io.BytesIO | None, int]:
    """What polars should read (the file, or its complete lines when the last one is torn) and the torn
    tail's length."""
    if not path.exists() or path.stat().st_size == 0:
        return None, 0
    with path.open("rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
        end = data.rfind(b"\n") + 1
        torn = len(data) - end
        if end == 0:
            return None, torn
        return (io.BytesIO(data[:end]) if torn else path), torn


def _fills(source: Path | io.BytesIO, zone: tzinfo, first: date | None, last: date | None) -> pl.DataFrame:
    key = getattr(zone, "key", None)
    if key is None:
        raise _NotExact(f"the time zone {zone} has no IANA name")
    fills = pl.scan_ndjson(source, schema=_SCHEMA).with_columns(day=_day(key, LEDGER_TIME)).collect()
    if fills.get_column("day").null_count():  # a time written otherwise than the ledger writes it: work it out
        fills = fills.with_columns(day=_day(key, None))
    if first is not None:
        fills = fills.filter(pl.col("day") >= first)
    if last is not None:
        fills = fills.filter(pl.col("day") <= last)
    if _most_places(fills) > PLACES:
        raise _NotExact(f"an amount has more than {PLACES} decimal places")
    try:
        return fills.with_columns(
            pnl=pl.col("realized_pnl").cast(MONEY),
            fee=pl.col("fees").cast(MONEY),
            total=pl.when(pl.col("kind") == "close").then(pl.col("realized_pnl_total").cast(MONEY)),
        )
    except pl.exceptions.InvalidOperationError:
        raise _NotExact("an amount is too large for 10 digits before the point") from None


def _day(zone: str, form: str | None) -> pl.Expr:
    """The fill's day in `zone`; with a `form`, times not in it are null (parsing to a known form is much faster)."""
    utc = pl.col("ts").str.to_datetime(form, time_zone="UTC", strict=form is None)
    return utc.dt.convert_time_zone(zone).dt.date()


def _most_places(fills: pl.DataFrame) -> int:
    """The most decimal places of any amount: counted after the point, or, for the few written with an
    exponent (`0E-26`, as Python writes tiny Decimals), read by Decimal itself."""
    plain = fills.select(
        pl.max_horizontal(
            (pl.col(c).str.len_bytes() - pl.col(c).str.find(".", literal=True) - 1).max() for c in _AMOUNTS
        )
    ).item()
    places = [
        _places(text)
        for c in _AMOUNTS
        for text in fills.get_column(c).filter(fills.get_column(c).str.contains("[eE]")).drop_nulls()
    ]
    return max([plain or 0, *places])


def _places(text: str) -> int:
    try:
        return -int(Decimal(text).as_tuple().exponent)
    except (InvalidOperation, ValueError):  # not a number: the conversion names the line
        return 0


def _reports(fills: pl.DataFrame, first: date | None, last: date | None) -> list[DayReport]:
    total = pl.col("total")
    won, lost = total.filter(total > 0), total.filter(total < 0)
    groups = fills.group_by("day", "strategy", "underlying").agg(
        pl.col("pnl").sum(),
        pl.col("fee").sum(),
        pl.len().alias("trades"),
        total.is_not_null().sum().alias("closed"),
        (total > 0).sum().alias("wins"),
        (total < 0).sum().alias("losses"),
        won.sum().alias("gross_profit"),
        lost.sum().alias("gross_loss"),
        won.max().alias("largest_win"),
        lost.min().alias("largest_loss"),
    )
    running = pl.col("pnl").cum_sum()
    # Rows keep their ledger order within each group, so the running P&L is the day's, fill by fill.
    days = fills.group_by("day").agg(
        (pl.col("kind") == "open").sum().alias("opened"),
        (pl.max_horizontal(running.cum_max(), pl.lit(0, MONEY)) - running).max().alias("drawdown"),
    )
    tallies: dict[date, dict[tuple[str, str], Tally]] = {}
    for row in groups.iter_rows(named=True):
        tallies.setdefault(row["day"], {})[(row["strategy"], row["underlying"])] = _tally(row)
    day_rows = {row["day"]: row for row in days.iter_rows(named=True)}
    return [
        day_report(day, tallies.get(day, {}), day_rows[day]["opened"], day_rows[day]["drawdown"])
        if day in day_rows
        else day_report(day, {}, 0, Decimal(0))
        for day in report_days(set(day_rows), first, last)
    ]


def _tally(row: dict[str, Any]) -> Tally:
    return Tally(
        realized_pnl=row["pnl"],
        fees=row["fee"],
        trades=row["trades"],
        positions_closed=row["closed"],
        wins=row["wins"],
        losses=row["losses"],
        gross_profit=row["gross_profit"] or Decimal(0),
        gross_loss=row["gross_loss"] or Decimal(0),
        largest_win=row["largest_win"],
        largest_loss=row["largest_loss"],
    )


def _curve(fills: pl.DataFrame) -> list[tuple[datetime, Decimal]]:
    points = fills.select(pl.col("ts").str.to_datetime(time_zone="UTC"), pl.col("pnl").cum_sum())
    return list(points.iter_rows())


def _bad_line(path: Path) -> LedgerError:
    """The error naming the first line that is not a valid trade event (found again, line by line)."""
    with path.open("rb") as file:
        for number, line in enumerate(file, start=1):
            if line.endswith(b"\n"):
                try:
                    parse_line(path, number, line)
                except LedgerError as error:
                    return error
    return LedgerError(f"{path}: a line could not be read for the report")
