"""The fast read of the ledger for analytics: DuckDB parses the JSON lines into exact decimals, and polars
works out each fill's day and adds them up per day, strategy and underlying, with the intraday drawdown.

Money is read into 28 decimal places, which holds every amount the desk writes exactly (its unrounded P&L
has at most 28 significant digits). A ledger the fast read cannot take exactly (an amount finer or larger
than that, a line it cannot read or that does not add up: `scan_checks.py`) goes to the pure model
(`daily.py`), which checks every line and names the first that does not verify; the tests hold the two to the
same answers.
"""

from __future__ import annotations

import mmap
from datetime import date, datetime, tzinfo
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from bot.analytics.book import day_report, report_days
from bot.analytics.daily import checked_events, daily_reports, equity_curve
from bot.analytics.scan_checks import CHECK_COLUMNS, CHECKED, FIELDS, first_wrong_line, whole_lines
from bot.analytics.tally import DayReport, Tally

if TYPE_CHECKING:
    import polars as pl

PLACES = 28
# Below this size the pure model reads a ledger (some 1,800 fills) in less time than polars and DuckDB take to import
# (about 0.6 s), so a desk's report of a day or a month answers at once; the tests set it to 0 to try the fast read.
PURE_BELOW = 1 << 20
_COLUMNS = "{" + ", ".join(f"\"{name}\": 'VARCHAR'" for name in FIELDS) + "}"
# An amount's decimal places, also when Python wrote it with an exponent (`0E-26`, `1.5E-7`); DuckDB
# would round one with more places than the decimal holds, so it is refused instead.
_MACROS = (
    "CREATE TEMP MACRO after_point(s) AS CASE WHEN contains(s, '.') THEN length(s) - strpos(s, '.') ELSE 0 END",
    """CREATE TEMP MACRO places(s) AS CASE
        WHEN contains(s, 'E') OR contains(s, 'e')
        THEN after_point(split_part(upper(s), 'E', 1)) - CAST(split_part(upper(s), 'E', 2) AS INTEGER)
        ELSE after_point(s) END""",
    f"""CREATE TEMP MACRO exact(s) AS CASE
        WHEN places(s) > {PLACES} THEN error('an amount has more than {PLACES} decimal places')
        ELSE CAST(s AS DECIMAL(38, {PLACES})) END""",
    # An amount of fewer than 30 characters without an exponent has at most 28 places: only the others are counted,
    # which takes a tenth of the report's time off a long ledger.
    f"""CREATE TEMP MACRO money(s) AS CASE
        WHEN length(s) < 30 AND NOT contains(s, 'E') AND NOT contains(s, 'e') THEN CAST(s AS DECIMAL(38, {PLACES}))
        ELSE exact(s) END""",
)


class _NeedsPureModel(Exception):
    """A ledger the fast read cannot take exactly."""


class Scan(NamedTuple):  # not a frozen dataclass, which would take 0.8 ms of `report daily`'s start to make
    reports: list[DayReport]
    curve: list[tuple[datetime, Decimal]]  # empty unless asked for
    torn_tail: int  # bytes after the last newline: a write cut short by a crash, left out
    problems: tuple[str, ...] = ()  # with `best_effort`: the lines that do not verify (see `checked_events`)


def scan_ledger(
    path: Path,
    zone: tzinfo,
    first: date | None = None,
    last: date | None = None,
    *,
    curve: bool = False,
    best_effort: bool = False,
) -> Scan:
    """The daily reports (and, with `curve`, the equity curve) of the days from `first` to `last`.

    A ledger that does not verify raises LedgerError naming its first wrong line; with `best_effort`, the
    report leaves out the lines that cannot be read or replayed and says which in `problems`."""
    whole, torn = _split_tail(path)
    if not whole:
        return Scan([day_report(d, {}, 0, Decimal(0)) for d in report_days(set(), first, last)], [], len(torn))
    summed, why = None, None
    try:
        if whole >= PURE_BELOW:
            summed = _fills(path, zone, whole, torn, first, last, curve=curve)
    except _NeedsPureModel as cannot:
        why = cannot
    if summed is None:
        checked = checked_events(path, best_effort=best_effort)  # names the line that does not verify
        events = checked.events
        points = equity_curve(events, zone, first, last, lenient=best_effort) if curve else []
        reports = daily_reports(events, zone, first, last, lenient=best_effort)
        if why is not None:
            import logging  # only here: a read-only command does not import it at its start

            logging.getLogger(__name__).warning(
                "ledger %s: the fast read cannot take it (%s); reporting from the pure model (slower)", path, why
            )
        return Scan(reports, points, len(torn), tuple(checked.problems))
    points = list(summed.curve.iter_rows()) if summed.curve is not None else []
    return Scan(_reports(summed.groups, summed.days, first, last), points, len(torn))


def _split_tail(path: Path) -> tuple[int, bytes]:
    """How many bytes of the ledger are whole lines, and the bytes after its last newline (a line still being
    written, or one cut short by a crash)."""
    if not path.exists() or path.stat().st_size == 0:
        return 0, b""
    with path.open("rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
        end = data.rfind(b"\n") + 1
        return end, data[end:]


class _Sums(NamedTuple):
    groups: pl.DataFrame  # per day, strategy and underlying
    days: pl.DataFrame  # per day: positions opened, intraday drawdown
    curve: pl.DataFrame | None  # each fill's time and the running realized P&L, when asked for


def _fills(
    path: Path, zone: tzinfo, whole: int, torn: bytes, first: date | None, last: date | None, *, curve: bool
) -> _Sums:
    """The fills of the days from `first` to `last` added up, once every line of the ledger passed the checks."""
    import duckdb
    import polars as pl

    key = getattr(zone, "key", None)
    if key is None:
        raise _NeedsPureModel(f"the time zone {zone} has no IANA name")
    query = f"""
        SELECT CAST(ts AS TIMESTAMPTZ) AS at, strategy, underlying, kind = 'open' AS opened,
            money(realized_pnl) AS pnl, money(fees) AS fee,
            CASE WHEN kind = 'close' THEN money(realized_pnl_total) END AS total, {CHECKED}
        FROM read_json($path, format = 'newline_delimited', columns = {_COLUMNS}, ignore_errors = $torn)
    """
    # A torn last line becomes an empty last row (read leniently, so that it does not stop the read);
    # an empty row anywhere else is a malformed line, which the pure model names.
    lenient = bool(torn.strip())
    params = {"path": str(path), "torn": lenient}
    # DuckDB: on a 1,000,000-event ledger it parses, checks and converts in about the time polars' JSON
    # reader took to parse the fields alone. JSON and time zones are built in; nothing is ever downloaded.
    with duckdb.connect(config={"autoinstall_known_extensions": False}) as db:
        db.execute("SET TimeZone = 'UTC'")  # a time written without a zone is UTC, as the ledger's are
        for macro in _MACROS:
            db.execute(macro)
        try:
            fills = pl.scan_arrow_c_stream(db.sql(query, params=params)).collect()
        except (duckdb.Error, pl.exceptions.ComputeError) as error:  # polars passes on DuckDB's once rows flow
            raise _NeedsPureModel(str(error).removeprefix("got external error: ").splitlines()[0]) from None
    if lenient:
        fills = fills.head(-1)
    if fills.height != whole_lines(path, whole):
        raise _NeedsPureModel("an empty or blank line")
    if fills.get_column("at").null_count():
        raise _NeedsPureModel("a line the fast read cannot place")
    try:  # the day in the desk's zone: polars takes a tenth of the time DuckDB's ICU took for it
        fills = fills.with_columns(day=pl.col("at").dt.convert_time_zone(key).dt.date())
    except pl.exceptions.PolarsError as error:
        raise _NeedsPureModel(f"the time zone {key}: {error}") from None
    rows = fills.lazy()
    in_range = rows.drop(*CHECK_COLUMNS)
    if first is not None:
        in_range = in_range.filter(pl.col("day") >= first)
    if last is not None:
        in_range = in_range.filter(pl.col("day") <= last)
    wanted = [first_wrong_line(rows), *_sums(in_range)]
    if curve:
        wanted.append(in_range.select("at", pl.col("pnl").cum_sum()))
    # The checks and the sums side by side in one go: when a line does not pass (rare), the sums are thrown away
    # for the pure model's.
    wrong, groups, days, *points = pl.collect_all(wanted)
    if wrong.item() is not None:
        raise _NeedsPureModel(f"line {wrong.item()} does not add up")
    return _Sums(groups, days, points[0] if points else None)


def _sums(fills: pl.LazyFrame) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """The fills added up per day, strategy and underlying, and per day."""
    import polars as pl

    money = pl.Decimal(38, PLACES)  # 10 digits before the point: up to $9,999,999,999 a day
    total = pl.col("total")  # a closed position's whole realized P&L, on its closing fill
    won, lost = pl.when(total > 0).then(total), pl.when(total < 0).then(total)
    groups = fills.group_by("day", "strategy", "underlying").agg(
        pl.col("pnl").sum(),
        pl.col("fee").sum(),
        pl.len().alias("trades"),
        total.count().alias("closed"),
        won.count().alias("wins"),
        lost.count().alias("losses"),
        won.sum().alias("gross_profit"),
        lost.sum().alias("gross_loss"),
        won.max().alias("largest_win"),
        lost.min().alias("largest_loss"),
    )
    running = pl.col("pnl").cum_sum()
    # Rows keep their ledger order within each group, so the running P&L is the day's, fill by fill (a few
    # hundredths of a second here, where DuckDB's window functions took most of a second).
    days = fills.group_by("day").agg(
        pl.col("opened").sum(),
        (pl.max_horizontal(running.cum_max(), pl.lit(0, money)) - running).max().alias("drawdown"),
    )
    return groups, days


def _reports(groups: pl.DataFrame, days: pl.DataFrame, first: date | None, last: date | None) -> list[DayReport]:
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
