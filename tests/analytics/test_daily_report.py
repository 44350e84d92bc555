"""The daily report's numbers on hand-made ledgers, from both readers: the pure model (positions replayed
from parsed events) and the fast scan of the file."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date
from decimal import Decimal
from pathlib import Path

import pytest

from bot.analytics.daily import daily_reports, equity_curve
from bot.analytics.ledger_scan import scan_ledger
from bot.analytics.tally import DayReport, PeriodReport
from bot.options.trade_ledger import LedgerError, read_ledger
from tests.analytics.ledgers import NEW_YORK, LedgerWriter, four_days, ny

Reader = Callable[[Path, date | None, date | None], list[DayReport]]


def pure(path: Path, first: date | None, last: date | None) -> list[DayReport]:
    return daily_reports(read_ledger(path).events, NEW_YORK, first, last)


def fast(path: Path, first: date | None, last: date | None) -> list[DayReport]:
    return scan_ledger(path, NEW_YORK, first, last).reports


@pytest.fixture(params=[pure, fast], ids=["pure", "fast"])
def report(request: pytest.FixtureRequest) -> Reader:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    return four_days(LedgerWriter(tmp_path / "options" / "trade_events.jsonl")).path


def one_day(report: Reader, ledger: Path, day: date) -> DayReport:
    [only] = report(ledger, day, day)
    return only


def test_a_day_of_partial_fills_adds_and_trims_adds_up_exactly(report: Reader, ledger: Path) -> None:
    day = one_day(report, ledger, date(2026, 11, 24))

    t = day.totals
    # a: -1 -1 -1 (buys), +159 (5 @ 1.50 over 1.18), -55 (3 @ 1.00), +163 (2 @ 2.00) = 264; b: -1 - 201 = -202
    assert t.realized_pnl == Decimal(62)
    assert t.fees == Decimal(8)
    assert (t.trades, day.positions_opened, t.positions_closed, t.wins, t.losses) == (8, 2, 2, 1, 1)
    assert t.win_rate == Decimal("0.5")
    assert (t.avg_win, t.avg_loss) == (Decimal(264), Decimal(-202))
    assert t.profit_factor is not None and t.profit_factor.quantize(Decimal("0.0001")) == Decimal("1.3069")
    assert (t.largest_win, t.largest_loss) == (Decimal(264), Decimal(-202))
    # Running P&L: -1 -2 -3 -4 | 155 100 263 62: the deepest fall is from 263 to 62.
    assert day.max_drawdown == Decimal(201)
    orb, meanrev = day.by_strategy["orb"], day.by_strategy["meanrev"]
    assert (orb.realized_pnl, orb.fees, orb.trades, orb.wins, orb.losses) == (Decimal(264), Decimal(6), 6, 1, 0)
    assert (meanrev.realized_pnl, meanrev.trades, meanrev.wins, meanrev.losses) == (Decimal(-202), 2, 0, 1)
    assert list(day.by_underlying) == ["QQQ", "SPY"]
    assert day.by_underlying["SPY"] == orb


def test_a_day_with_only_adds_realizes_their_fees_and_closes_nothing(report: Reader, ledger: Path) -> None:
    day = one_day(report, ledger, date(2026, 11, 25))

    t = day.totals
    assert (t.realized_pnl, t.fees, t.trades, day.positions_opened, t.positions_closed) == (Decimal(-2), 2, 2, 1, 0)
    assert (t.wins, t.losses, t.win_rate, t.profit_factor, t.largest_win, t.largest_loss) == (
        0,
        0,
        None,
        None,
        None,
        None,
    )
    assert day.max_drawdown == Decimal(2)


def test_a_losing_day_judges_its_close_on_the_whole_position(report: Reader, ledger: Path) -> None:
    day = one_day(report, ledger, date(2026, 11, 27))

    t = day.totals
    assert t.realized_pnl == Decimal(-111)  # (0.50 - 1.05) * 2 * 100 - 1: only that day's fill
    assert (t.trades, t.positions_closed, t.wins, t.losses) == (1, 1, 0, 1)
    assert t.largest_loss == t.avg_loss == Decimal(-113)  # with the 2 of fees paid on the 25th
    assert t.win_rate == 0
    assert day.max_drawdown == Decimal(111)


def test_a_position_across_midnight_utc_but_not_new_york_counts_on_its_new_york_day(
    report: Reader, ledger: Path
) -> None:
    day = one_day(report, ledger, date(2026, 11, 30))

    assert ny(30, 19, 30).astimezone(UTC).date() == date(2026, 12, 1)
    t = day.totals
    assert (t.realized_pnl, t.trades, t.wins, t.largest_win) == (Decimal(48), 2, 1, Decimal(48))
    assert report(ledger, date(2026, 12, 1), date(2026, 12, 1))[0].totals.trades == 0


def test_a_range_lists_every_trading_day_and_days_with_fills(report: Reader, ledger: Path) -> None:
    days = report(ledger, date(2026, 11, 23), date(2026, 12, 1))

    # The 23rd and 1st are quiet trading days; Thanksgiving (26th) and the weekend are left out.
    assert [d.day.day for d in days] == [23, 24, 25, 27, 30, 1]
    assert [d.totals.realized_pnl for d in days] == [0, 62, -2, -111, 48, 0]
    period = PeriodReport(date(2026, 11, 23), date(2026, 12, 1), days)
    assert period.totals.realized_pnl == Decimal(-3)
    assert (period.totals.wins, period.totals.losses, period.positions_opened) == (2, 2, 4)
    assert period.max_drawdown == Decimal(201)
    assert period.by_strategy["orb"].realized_pnl == Decimal(264 - 2 - 111 + 48)


def test_a_holiday_asked_for_by_name_is_shown_empty(report: Reader, ledger: Path) -> None:
    [day] = report(ledger, date(2026, 11, 26), date(2026, 11, 26))

    assert day.day == date(2026, 11, 26)
    assert day.totals.trades == 0


def test_the_whole_ledger_without_bounds_gives_the_days_with_fills(report: Reader, ledger: Path) -> None:
    assert [d.day.day for d in report(ledger, None, None)] == [24, 25, 27, 30]


def test_the_equity_curve_is_the_running_realized_pnl_after_each_fill(ledger: Path) -> None:
    events = read_ledger(ledger).events

    curve = equity_curve(events, NEW_YORK, date(2026, 11, 25), date(2026, 11, 27))
    fast_curve = scan_ledger(ledger, NEW_YORK, date(2026, 11, 25), date(2026, 11, 27), curve=True).curve

    assert curve == [(ny(25, 15), Decimal(-1)), (ny(25, 15, 30), Decimal(-2)), (ny(27, 10), Decimal(-113))]
    assert fast_curve == curve


def test_the_fast_scan_leaves_out_a_torn_last_line(ledger: Path) -> None:
    with ledger.open("ab") as out:
        out.write(b'{"v":1,"event_id":"evt-x","ts":"2026-11-30T')

    scan = scan_ledger(ledger, NEW_YORK)

    assert scan.torn_tail == len(b'{"v":1,"event_id":"evt-x","ts":"2026-11-30T')
    assert [d.totals.trades for d in scan.reports] == [8, 2, 1, 2]


def test_a_ledger_of_only_a_torn_line_reports_quiet_days_and_the_torn_bytes(tmp_path: Path) -> None:
    ledger = tmp_path / "trade_events.jsonl"
    ledger.write_bytes(b'{"v":1,"event_id":"evt-x"')

    scan = scan_ledger(ledger, NEW_YORK, date(2026, 11, 24), date(2026, 11, 24))

    assert scan.torn_tail == len(b'{"v":1,"event_id":"evt-x"')
    assert [(d.day, d.totals.trades) for d in scan.reports] == [(date(2026, 11, 24), 0)]


def test_a_whole_last_line_still_waiting_for_its_newline_is_left_out_too(ledger: Path) -> None:
    # A write caught between the line and its newline: whole JSON, but not yet a line of the ledger.
    lines = ledger.read_bytes().splitlines(keepends=True)
    ledger.write_bytes(b"".join(lines[:-1]) + lines[-1].rstrip(b"\n"))

    scan = scan_ledger(ledger, NEW_YORK)

    assert scan.torn_tail == len(lines[-1]) - 1
    assert [d.totals.trades for d in scan.reports] == [8, 2, 1, 1]
    assert scan.reports == pure(ledger, None, None)


def test_a_malformed_line_is_named_also_when_the_last_line_is_torn(ledger: Path) -> None:
    lines = ledger.read_bytes().splitlines(keepends=True)
    lines[3] = lines[3].replace(b"}", b"")
    ledger.write_bytes(b"".join(lines) + b'{"v":1,"event_id":"evt-x"')

    with pytest.raises(LedgerError, match=r"line 4 is not a valid trade event"):
        scan_ledger(ledger, NEW_YORK)


@pytest.mark.parametrize(
    ("written", "slow"),
    [("-100E-2", False), ("-0.01E+2", False), (f"-1.{'0' * 28}E0", False), (f"-1.{'0' * 29}E0", True), ("-1E0", False)],
)
def test_an_amount_written_with_an_exponent_is_read_exactly(
    ledger: Path, caplog: pytest.LogCaptureFixture, written: str, slow: bool
) -> None:
    # Python writes some Decimals with an exponent (`0E-26`): the places are counted with it, 28 fit, 29 do not.
    before = pure(ledger, None, None)
    lines = ledger.read_bytes().splitlines(keepends=True)
    assert b'"realized_pnl":"-1"' in lines[0]
    lines[0] = lines[0].replace(b'"realized_pnl":"-1"', f'"realized_pnl":"{written}"'.encode())
    ledger.write_bytes(b"".join(lines))

    assert fast(ledger, None, None) == before
    assert ("reporting from the pure model" in caplog.text) is slow


@pytest.mark.parametrize("written", ["1E-29", "1e-29"])
def test_an_amount_too_fine_for_the_fast_read_in_few_characters_goes_to_the_pure_model(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, written: str
) -> None:
    # Short, but 29 places: the fast read would round it to 0.
    writer = LedgerWriter(tmp_path / "trade_events.jsonl")
    writer.buy("a", 1, "1.00", ny(24, 10), fees="0")
    writer.sell("a", 1, "1.50", ny(24, 11), fees="0")
    writer.path.write_bytes(writer.path.read_bytes().replace(b'"fees":"0"', f'"fees":"{written}"'.encode(), 1))

    assert fast(writer.path, None, None) == pure(writer.path, None, None)
    assert "reporting from the pure model" in caplog.text


@pytest.mark.parametrize(
    ("good", "bad"),
    [(b'"fees":"1"', b'"fees":"one"'), (b'"ts":"2026-11-25T20:30:00Z"', b'"ts":"yesterday"'), (b"}", b"")],
)
def test_the_fast_scan_names_a_malformed_line(ledger: Path, good: bytes, bad: bytes) -> None:
    lines = ledger.read_bytes().splitlines(keepends=True)
    lines[9] = lines[9].replace(good, bad)
    ledger.write_bytes(b"".join(lines))

    with pytest.raises(LedgerError, match=r"line 10 is not a valid trade event"):
        scan_ledger(ledger, NEW_YORK)


def test_no_ledger_yet_gives_quiet_days(tmp_path: Path) -> None:
    [day] = scan_ledger(tmp_path / "missing.jsonl", NEW_YORK, date(2026, 11, 24), date(2026, 11, 24)).reports

    assert day.totals.trades == 0


@pytest.mark.parametrize(
    ("exact", "shown"),
    [("406.9000000000000000000000003", "406.90"), ("-12.345", "-12.35"), ("0.005", "0.01"), ("62", "62.00")],
)
def test_money_is_shown_at_cents_and_summed_exactly(exact: str, shown: str) -> None:
    from bot.analytics.export import tally_json
    from bot.analytics.tally import Tally

    shown_json = tally_json(Tally(realized_pnl=Decimal(exact), fees=Decimal(exact), largest_win=Decimal(exact)))

    assert (shown_json["realized_pnl"], shown_json["fees"], shown_json["largest_win"]) == (shown, shown, shown)
