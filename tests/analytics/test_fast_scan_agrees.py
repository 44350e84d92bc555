"""The fast scan of the ledger file gives exactly the pure model's reports, on random ledgers: partial
fills, adds, trims, positions held overnight, fills at any hour, and the file split between processes."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.analytics import ledger_scan
from bot.analytics.daily import daily_reports, equity_curve
from bot.analytics.ledger_scan import scan_ledger
from bot.options.trade_ledger import LedgerError
from tests.analytics.ledgers import NEW_YORK, QQQ, SPY, LedgerWriter, ny

# One step: which position, buy or sell, how many, at what price (cents), fees (cents), minutes later.
steps = st.lists(
    st.tuples(
        st.integers(0, 3),
        st.booleans(),
        st.integers(1, 7),
        st.integers(1, 900),
        st.integers(0, 500),
        st.integers(0, 600),
    ),
    min_size=1,
    max_size=60,
)


def write_random_ledger(path: Path, plan: list[tuple[int, bool, int, int, int, int]]) -> LedgerWriter:
    writer = LedgerWriter(path)
    at = ny(24, 9)
    generation = [0, 0, 0, 0]  # a closed position's slot starts a new position
    for slot, buy, qty, cents, fee_cents, minutes in plan:
        at += timedelta(minutes=minutes)
        name = f"{slot}-{generation[slot]}"
        held = writer.positions[name].qty if name in writer.positions else 0
        contract, strategy = (SPY, "orb") if slot % 2 else (QQQ, "meanrev")
        price, fees = f"{cents / 100:.2f}", f"{fee_cents / 100:.2f}"
        if buy or not held:
            writer.buy(name, qty, price, at, fees=fees, contract=contract, strategy=strategy)
        else:
            writer.sell(name, min(qty, held), price, at, fees=fees, contract=contract, strategy=strategy)
            if not writer.positions[name].is_open:
                generation[slot] += 1
    return writer


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=steps, first_offset=st.integers(0, 12), span=st.integers(0, 12))
def test_the_fast_scan_agrees_with_the_pure_model(tmp_path_factory: pytest.TempPathFactory, plan, first_offset, span):
    path = tmp_path_factory.mktemp("ledger") / "trade_events.jsonl"
    events = write_random_ledger(path, plan).events
    first = date(2026, 11, 24) + timedelta(days=first_offset)
    last = first + timedelta(days=span)

    assert scan_ledger(path, NEW_YORK).reports == daily_reports(events, NEW_YORK)
    assert scan_ledger(path, NEW_YORK, first, last).reports == daily_reports(events, NEW_YORK, first, last)
    assert scan_ledger(path, NEW_YORK, first, last, curve=True).curve == equity_curve(events, NEW_YORK, first, last)


def test_an_amount_finer_than_the_fast_path_holds_is_reported_by_the_pure_model(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # 1 contract bought at 0.01, 0.01 and 0.02 (average 0.0133...), one sold at 0.01: a loss of 0.333...
    # with 28 significant digits, which fits; selling at 0.0133333 realizes -0.00000333... with 28
    # significant digits too, but 33 decimal places, which do not.
    plan = [(0, True, 1, 1, 0, 0), (0, True, 1, 1, 0, 0), (0, True, 1, 2, 0, 0), (0, False, 1, 1, 0, 0)]
    path = tmp_path / "trade_events.jsonl"
    writer = write_random_ledger(path, plan)
    writer.sell("0-0", 1, "0.0133333", ny(24, 15), fees="0")
    writer.buy("0-0", 1, "123.45", ny(24, 16), fees="0")

    reports = scan_ledger(path, NEW_YORK).reports

    assert "reporting from the pure model" in caplog.text
    assert reports == daily_reports(writer.events, NEW_YORK)
    assert len(str(writer.events[-2].realized_pnl).split(".")[1]) > ledger_scan.PLACES


def test_a_time_written_with_an_offset_is_still_read_right(tmp_path: Path) -> None:
    # The ledger writes `...Z`; a line written by other hands as `+00:00` must land on the same day, not be lost.
    path = tmp_path / "trade_events.jsonl"
    events = write_random_ledger(path, [(0, True, 3, 120, 65, 0), (1, True, 2, 90, 0, 400), (0, False, 3, 150, 0, 30)])
    lines = path.read_text().splitlines(keepends=True)
    lines[1] = lines[1].replace('Z"', '+00:00"', 1)
    path.write_text("".join(lines))
    assert "+00:00" in lines[1]

    assert scan_ledger(path, NEW_YORK).reports == daily_reports(events.events, NEW_YORK)


def test_a_malformed_line_far_into_a_long_ledger_is_named(tmp_path: Path) -> None:
    # Past the first few thousand rows DuckDB's error reaches us through polars, mid-stream.
    path = tmp_path / "trade_events.jsonl"
    write_random_ledger(path, [(n % 4, n % 3 != 2, 1 + n % 3, 100 + n % 50, 65, 1) for n in range(5000)])
    lines = path.read_bytes().splitlines(keepends=True)
    lines[4900] = lines[4900].replace(b'"fees":"', b'"fees":"x')
    path.write_bytes(b"".join(lines))

    with pytest.raises(LedgerError, match=r"line 4901 is not a valid trade event"):
        scan_ledger(path, NEW_YORK)
