import io
from datetime import date, datetime, time
from decimal import Decimal

import pytest

from bot.options.contracts import Right
from bot.options.market_hours import MARKET_TZ, session_close, session_open
from bot.options.positions import ActionKind
from bot.options.trade_ledger import read_ledger
from bot.paths import ledger_path
from bot.render.text import demo_day, money
from bot.runtime.demo import run_demo_day
from bot.runtime.desk import sim_market
from bot.settings import ExitRuleSettings, OpeningRangeBreakoutSettings, RiskSettings, Settings, SettingsError

DAY = date(2026, 11, 25)
SEED = 5  # a day on the simulated market that opens, adds, trims and closes


def fills(storage):
    return [(e.kind, e.symbol, e.side, e.qty, e.price) for e in read_ledger(ledger_path(storage)).events]


async def test_the_same_seed_gives_the_same_day(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"

    await run_demo_day(Settings(), first, seed=SEED, day=DAY, out=io.StringIO())
    await run_demo_day(Settings(), second, seed=SEED, day=DAY, out=io.StringIO())

    assert fills(first) == fills(second)
    assert {kind for kind, *_ in fills(first)} == set(ActionKind)


async def test_another_seed_gives_another_day(tmp_path):
    await run_demo_day(Settings(), tmp_path / "a", seed=SEED, day=DAY, out=io.StringIO())
    await run_demo_day(Settings(), tmp_path / "b", seed=SEED + 1, day=DAY, out=io.StringIO())

    assert fills(tmp_path / "a") != fills(tmp_path / "b")


async def test_consecutive_days_trade_differently(tmp_path):
    monday = await run_demo_day(Settings(), tmp_path / "a", seed=SEED, day=date(2026, 11, 24), out=io.StringIO())
    tuesday = await run_demo_day(Settings(), tmp_path / "b", seed=SEED, day=DAY, out=io.StringIO())

    def trades(summary):
        return [(e.kind, e.strike, e.right, e.ts.time(), e.price) for e in summary.fills]

    assert trades(monday) != trades(tuesday)


async def test_the_summary_matches_the_ledger_and_messages_were_shown(tmp_path):
    out = io.StringIO()

    summary = await run_demo_day(Settings(), tmp_path, seed=SEED, day=DAY, out=out)

    events = read_ledger(ledger_path(tmp_path)).events
    assert summary.fills == events
    [day] = summary.report.days
    assert day.totals.realized_pnl == sum((e.realized_pnl for e in events), Decimal(0))
    assert day.totals.trades == len(events)
    assert day.totals.positions_closed == sum(1 for e in events if e.kind is ActionKind.CLOSE)
    shown = demo_day(summary.day, summary.fills, summary.still_open, summary.report)
    assert f"{len(events)} trades" in shown
    assert money(day.totals.realized_pnl) in shown
    for position_id in {e.position_id for e in events}:
        assert f"| {position_id}" in out.getvalue()


async def test_a_second_demo_continues_on_the_next_trading_day(tmp_path):
    await run_demo_day(Settings(), tmp_path, seed=SEED, day=DAY, out=io.StringIO())

    summary = await run_demo_day(Settings(), tmp_path, seed=SEED, out=io.StringIO())

    assert summary.day == date(2026, 11, 27)  # Thanksgiving is skipped
    with pytest.raises(SettingsError, match="already has trades after 2026-11-25"):
        await run_demo_day(Settings(), tmp_path, seed=SEED, day=DAY, out=io.StringIO())


@pytest.mark.parametrize(
    ("day", "close"),
    [(DAY, time(16, 0)), (date(2026, 11, 27), time(13, 0))],
    ids=["16:00", "an early close at 13:00"],
)
async def test_a_position_open_at_expiry_settles_at_the_close_at_its_intrinsic_value(tmp_path, day, close):
    zero_dte = OpeningRangeBreakoutSettings(
        name="orb0",
        underlying="SPY",
        days_to_expiry=0,
        exits=ExitRuleSettings(profit_ladder=[], stop_loss_pct=None, trailing_stop_pct=None, time_stop_minutes=None),
    )
    # Held to the close: the expiry-day guard would close it in the money before (tests/broker/test_expiry_guard.py).
    settings = Settings(strategies=[zero_dte], risk=RiskSettings(expiry_guard="off"))

    summary = await run_demo_day(settings, tmp_path, seed=SEED, day=day, out=io.StringIO())

    settlement = summary.fills[-1]
    assert (settlement.kind, settlement.position_qty, settlement.fees) == (ActionKind.CLOSE, 0, Decimal(0))
    assert settlement.expiry == day
    assert settlement.actor == "expiry"
    assert settlement.ts == datetime.combine(day, close, tzinfo=MARKET_TZ)  # on its day, at the close
    assert settlement.price == intrinsic(settlement.contract, last_spot_of_the_day(settings, "SPY", day))
    assert summary.still_open == 0
    [report] = summary.report.days
    assert report.totals.positions_closed == 1  # the summary's table shows the close it counts


def last_spot_of_the_day(settings, underlying, day):
    market = sim_market(settings, SEED)
    market.start(session_open(day))
    while True:
        spot = market.quote(underlying).mark
        market.step()
        if market.now >= session_close(day):
            return spot


def intrinsic(contract, spot):
    return max(Decimal(0), spot - contract.strike if contract.right is Right.CALL else contract.strike - spot)
