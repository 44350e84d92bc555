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
from bot.options.trade_ledger import read_ledger
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


def test_a_file_split_between_processes_and_blocks_gives_the_same_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Many fills a day, so that the splits fall inside days and their running P&L must be joined.
    plan = [(n % 4, n % 3 != 0, 1 + n % 5, 50 + (n * 37) % 300, n % 90, (n * 7) % 50) for n in range(400)]
    path = tmp_path / "trade_events.jsonl"
    write_random_ledger(path, plan)
    expected = daily_reports(read_ledger(path).events, NEW_YORK)
    monkeypatch.setattr(ledger_scan, "PARALLEL_FROM", 0)
    monkeypatch.setattr(ledger_scan, "BLOCK", 3_000)

    split = scan_ledger(path, NEW_YORK, workers=3)

    assert len(expected) > 3
    assert split.reports == expected
    assert any(d.max_drawdown > 0 for d in expected)
