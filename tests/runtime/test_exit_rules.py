"""Exit rules: each threshold at, just under and just over its value; ladder progress read from history."""

from __future__ import annotations

import ast
import itertools
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from bot.options.contracts import OptionContract, Right
from bot.options.orders import Side
from bot.options.positions import Position, Source
from bot.paths import PROJECT_ROOT
from bot.strategies.options.exit_rules import (
    NO_EXIT,
    ExitAction,
    ExitDecision,
    ExitRules,
    ProfitLevel,
    decide_exit,
    expiry_settlement_price,
    fired_levels,
    high_water_mark,
    is_expired,
)

NY = ZoneInfo("America/New_York")
D = Decimal
EXPIRY = date(2026, 11, 27)  # the Friday after Thanksgiving: a 13:00 early close
MONDAY_CLOSE = datetime(2026, 11, 23, 16, 0, tzinfo=NY)
MONDAY_MIDDAY = datetime(2026, 11, 23, 12, 0, tzinfo=NY)
OFF = ExitRules(profit_ladder=(), stop_loss_pct=None, trailing_stop_pct=None, time_stop_minutes=None)
_ids = itertools.count(1)


def contract(right: Right = Right.CALL, strike: str = "450", expiry: date = EXPIRY) -> OptionContract:
    return OptionContract("SPY", expiry, right, D(strike))


def fill(position: Position, side: Side, qty: int, price: str, source: Source = Source.STRATEGY) -> Position:
    n = next(_ids)
    ts = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
    new, _ = position.with_fill(
        side=side, qty=qty, price=D(price), fees=D(0), ts=ts, fill_id=f"fill-{n}", order_id=f"order-{n}", source=source
    )
    return new


def opened(qty: int = 10, price: str = "1.20", on: OptionContract | None = None) -> Position:
    return fill(Position("pos-1", on or contract(), "test"), Side.BUY, qty, price)


def sold(position: Position, qty: int, price: str, source: Source = Source.STRATEGY) -> Position:
    return fill(position, Side.SELL, qty, price, source)


def replayed(position: Position) -> Position:
    """The position as a restart rebuilds it: a fresh fold over the same fills."""
    rebuilt = Position(position.position_id, position.contract, position.strategy)
    for a in position.actions:
        rebuilt, _ = rebuilt.with_fill(
            side=a.side,
            qty=a.qty,
            price=a.price,
            fees=a.fees,
            ts=a.ts,
            fill_id=a.fill_id,
            order_id=a.order_id,
            source=a.source,
            actor=a.actor,
        )
    return rebuilt


def only(**settings: object) -> ExitRules:
    """Every rule off except the ones given."""
    return OFF._replace(**settings)


def decide(
    rules: ExitRules,
    position: Position,
    mark: str,
    *,
    now: datetime = MONDAY_MIDDAY,
    session_close: datetime = MONDAY_CLOSE,
    high_water: str | None = None,
) -> ExitDecision:
    high = None if high_water is None else D(high_water)
    return decide_exit(rules, position, D(mark), now=now, session_close=session_close, high_water=high)


# --- thresholds -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mark", "expected"),
    [
        ("1.5599", NO_EXIT),
        (
            "1.56",
            ExitDecision(
                ExitAction.TRIM, 5, "profit target +30% reached (mark 1.56, entry 1.20): trim 50% (5 contracts)"
            ),
        ),
        (
            "1.5601",
            ExitDecision(
                ExitAction.TRIM, 5, "profit target +30% reached (mark 1.5601, entry 1.20): trim 50% (5 contracts)"
            ),
        ),
    ],
    ids=["under", "at", "over"],
)
def test_profit_target_fires_from_its_gain_inclusive(mark, expected):
    assert decide(only(profit_ladder=ExitRules().profit_ladder), opened(10, "1.20"), mark) == expected


@pytest.mark.parametrize(
    ("mark", "expected"),
    [
        ("0.7201", NO_EXIT),
        ("0.72", ExitDecision(ExitAction.CLOSE, 10, "stop loss -40% hit (mark 0.72, entry 1.20)")),
        ("0.7199", ExitDecision(ExitAction.CLOSE, 10, "stop loss -40% hit (mark 0.7199, entry 1.20)")),
        ("0", ExitDecision(ExitAction.CLOSE, 10, "stop loss -40% hit (mark 0.00, entry 1.20)")),
    ],
    ids=["under", "at", "over", "worthless"],
)
def test_stop_loss_closes_from_its_loss_inclusive(mark, expected):
    assert decide(only(stop_loss_pct=D(40)), opened(10, "1.20"), mark) == expected


@pytest.mark.parametrize(
    ("mark", "expected"),
    [
        ("1.6001", NO_EXIT),
        ("1.60", ExitDecision(ExitAction.CLOSE, 4, "trailing stop: mark 1.60 is 20% below the high 2.00")),
        ("1.5999", ExitDecision(ExitAction.CLOSE, 4, "trailing stop: mark 1.5999 is 20.01% below the high 2.00")),
    ],
    ids=["under", "at", "over"],
)
def test_trailing_stop_closes_from_its_drop_off_the_high_inclusive(mark, expected):
    rules = only(trailing_stop_pct=D(20), trailing_activation_pct=D(20))
    assert decide(rules, opened(4, "1.00"), mark, high_water="2.00") == expected


@pytest.mark.parametrize(
    ("activation", "high", "mark", "action"),
    [
        ("20", "1.1999", "0.90", ExitAction.NONE),  # a 25% drop, but the high never reached +20%: not armed
        ("20", "1.20", "0.9601", ExitAction.NONE),  # armed, drop just under 20%
        ("20", "1.20", "0.96", ExitAction.CLOSE),  # armed exactly at +20%, drop exactly 20%
        ("50", "1.4999", "1.00", ExitAction.NONE),  # a higher activation leaves the same drop unarmed
        ("50", "1.50", "1.20", ExitAction.CLOSE),
        ("0", None, "0.80", ExitAction.CLOSE),  # armed from the start: the entry is the high
        ("0", None, "0.8001", ExitAction.NONE),
    ],
)
def test_trailing_stop_arms_only_once_the_high_is_far_enough_above_entry(activation, high, mark, action):
    rules = only(trailing_stop_pct=D(20), trailing_activation_pct=D(activation))
    decision = decide(rules, opened(3, "1.00"), mark, high_water=high)
    assert decision.action is action
    assert decision.qty == (3 if action is ExitAction.CLOSE else 0)


def test_trailing_stop_after_a_restart_uses_the_high_rebuilt_from_history():
    # The in-memory high is lost, but a trim filled at 2.00 shows the price was there.
    position = replayed(sold(opened(10, "1.00"), 5, "2.00", source=Source.MANUAL))
    rules = only(trailing_stop_pct=D(20))
    assert decide(rules, position, "1.60") == ExitDecision(
        ExitAction.CLOSE, 5, "trailing stop: mark 1.60 is 20% below the high 2.00"
    )
    assert decide(rules, position, "1.61") == NO_EXIT


@pytest.mark.parametrize(
    ("now", "action"),
    [
        (datetime(2026, 11, 23, 15, 49, 59, tzinfo=NY), ExitAction.NONE),
        (datetime(2026, 11, 23, 15, 50, tzinfo=NY), ExitAction.CLOSE),
        (datetime(2026, 11, 23, 15, 50, 1, tzinfo=NY), ExitAction.CLOSE),
        (datetime(2026, 11, 23, 20, 49, 59, tzinfo=UTC), ExitAction.NONE),  # 15:49:59 EST given in UTC
        (datetime(2026, 11, 23, 20, 50, tzinfo=UTC), ExitAction.CLOSE),
        (datetime(2026, 11, 23, 16, 5, tzinfo=NY), ExitAction.CLOSE),  # still open after the bell: close it
    ],
    ids=["under", "at", "over", "utc-under", "utc-at", "after-close"],
)
def test_time_stop_closes_from_n_minutes_before_the_session_close(now, action):
    decision = decide(only(time_stop_minutes=10), opened(7), "1.20", now=now)
    expected = ExitDecision(ExitAction.CLOSE, 7, "time stop: 10 minutes before the close")
    assert decision == (expected if action is ExitAction.CLOSE else NO_EXIT)


@pytest.mark.parametrize(
    ("expiry_only", "now", "session_close", "expected"),
    [
        (False, datetime(2026, 11, 25, 15, 55, tzinfo=NY), datetime(2026, 11, 25, 16, 0, tzinfo=NY), "the close"),
        (True, datetime(2026, 11, 25, 15, 55, tzinfo=NY), datetime(2026, 11, 25, 16, 0, tzinfo=NY), None),
        (True, datetime(2026, 11, 27, 12, 49, tzinfo=NY), datetime(2026, 11, 27, 13, 0, tzinfo=NY), None),
        (
            True,
            datetime(2026, 11, 27, 12, 50, tzinfo=NY),
            datetime(2026, 11, 27, 13, 0, tzinfo=NY),
            "the close on expiry day",
        ),
        (False, datetime(2026, 11, 27, 12, 50, tzinfo=NY), datetime(2026, 11, 27, 13, 0, tzinfo=NY), "the close"),
    ],
    ids=["every-day-before-expiry", "expiry-only-before-expiry", "expiry-day-early", "expiry-day", "every-day-expiry"],
)
def test_time_stop_every_day_or_on_expiry_day_only(expiry_only, now, session_close, expected):
    rules = only(time_stop_minutes=10, time_stop_expiry_only=expiry_only)
    decision = decide(rules, opened(2), "1.20", now=now, session_close=session_close)
    if expected is None:
        assert decision == NO_EXIT
    else:
        assert decision == ExitDecision(ExitAction.CLOSE, 2, f"time stop: 10 minutes before {expected}")


# --- the profit ladder --------------------------------------------------------------------------------------


def test_each_ladder_level_fires_once_even_across_a_restart():
    rules = only(profit_ladder=ExitRules().profit_ladder)
    position = opened(10, "1.20")
    first = decide(rules, position, "1.56")
    assert (first.action, first.qty) == (ExitAction.TRIM, 5)

    position = sold(position, first.qty, "1.56")
    assert fired_levels(position) == 1
    assert decide(rules, position, "1.56") == NO_EXIT
    assert decide(rules, position, "1.91") == NO_EXIT  # the next level (+60%) is not reached yet

    restarted = replayed(position)
    assert fired_levels(restarted) == 1
    assert decide(rules, restarted, "1.56") == NO_EXIT
    assert decide(rules, restarted, "1.92") == ExitDecision(
        ExitAction.CLOSE, 5, "profit target +60% reached (mark 1.92, entry 1.20): close (5 contracts)"
    )


def test_when_several_levels_are_passed_each_tick_fires_the_next_one():
    rules = only(profit_ladder=(ProfitLevel(D(30), D(25)), ProfitLevel(D(60), D(50)), ProfitLevel(D(100), D(100))))
    position = opened(12, "1.00")
    fired = []
    for _ in range(4):
        decision = decide(rules, position, "2.50")
        fired.append((decision.action, decision.qty, decision.reason.split(" reached")[0]))
        if decision.action is ExitAction.NONE:
            break
        position = sold(position, decision.qty, "2.50")
    assert fired == [
        (ExitAction.TRIM, 3, "profit target +30%"),
        (ExitAction.TRIM, 4, "profit target +60%"),
        (ExitAction.CLOSE, 5, "profit target +100%"),
        (ExitAction.NONE, 0, ""),
    ]
    assert not position.is_open


@pytest.mark.parametrize(
    ("open_qty", "sell_pct", "action", "qty"),
    [
        (3, "50", ExitAction.TRIM, 1),  # 1.5 rounds down
        (1, "50", ExitAction.CLOSE, 1),  # at least one contract, and one is all that is open
        (2, "10", ExitAction.TRIM, 1),  # 0.2 rounds down to 0, raised to the minimum of 1
        (2, "60", ExitAction.TRIM, 1),
        (4, "99", ExitAction.TRIM, 3),
        (10, "33", ExitAction.TRIM, 3),
        (10, "100", ExitAction.CLOSE, 10),
        (1, "100", ExitAction.CLOSE, 1),
    ],
)
def test_a_trim_sells_the_floor_of_its_share_and_at_least_one_contract(open_qty, sell_pct, action, qty):
    rules = only(profit_ladder=(ProfitLevel(D(30), D(sell_pct)),))
    decision = decide(rules, opened(open_qty, "1.00"), "1.30")
    assert (decision.action, decision.qty) == (action, qty)


@pytest.mark.parametrize("source", [Source.MANUAL, Source.BROKER, Source.RECONCILE])
def test_trims_not_made_by_the_strategy_do_not_count_as_fired_levels(source):
    rules = only(profit_ladder=ExitRules().profit_ladder)
    position = sold(opened(10, "1.20"), 5, "1.56", source=source)
    assert fired_levels(position) == 0
    assert decide(rules, position, "1.56") == ExitDecision(
        ExitAction.TRIM, 2, "profit target +30% reached (mark 1.56, entry 1.20): trim 50% (2 contracts)"
    )


def test_fired_levels_counts_only_strategy_trims():
    position = opened(10, "1.00")
    position = sold(position, 1, "1.40", source=Source.MANUAL)
    position = sold(position, 2, "1.40")
    position = fill(position, Side.BUY, 3, "1.10")
    position = sold(position, 1, "1.70")
    assert fired_levels(position) == 2


# --- precedence and switches --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mark", "now", "high", "action", "reason"),
    [
        # The mark would hit the stop loss too; the time stop speaks first.
        ("0.50", datetime(2026, 11, 23, 15, 55, tzinfo=NY), None, ExitAction.CLOSE, "time stop:"),
        ("1.56", datetime(2026, 11, 23, 15, 55, tzinfo=NY), None, ExitAction.CLOSE, "time stop:"),
        # -40% from entry is also a 60% drop off an armed high of 1.50.
        ("0.60", MONDAY_MIDDAY, "1.50", ExitAction.CLOSE, "stop loss -40%"),
        # +60% would trim on the ladder's first level; 20% off the high of 2.00 closes first.
        ("1.60", MONDAY_MIDDAY, "2.00", ExitAction.CLOSE, "trailing stop:"),
        ("1.60", MONDAY_MIDDAY, "1.90", ExitAction.TRIM, "profit target +30%"),
    ],
    ids=["time-over-stop", "time-over-ladder", "stop-over-trailing", "trailing-over-ladder", "ladder-alone"],
)
def test_precedence_is_time_stop_then_stop_loss_then_trailing_then_ladder(mark, now, high, action, reason):
    decision = decide(ExitRules(), opened(10, "1.00"), mark, now=now, high_water=high)
    assert decision.action is action
    assert decision.qty == (10 if action is ExitAction.CLOSE else 5)
    assert decision.reason.startswith(reason)


AT_THE_BELL = datetime(2026, 11, 23, 15, 55, tzinfo=NY)


@pytest.mark.parametrize(
    ("switch_off", "mark", "now", "high"),
    [
        ({"stop_loss_pct": None}, "0.60", MONDAY_MIDDAY, None),
        ({"trailing_stop_pct": None}, "1.20", MONDAY_MIDDAY, "1.50"),
        ({"profit_ladder": ()}, "1.30", MONDAY_MIDDAY, None),
        ({"time_stop_minutes": None}, "1.00", AT_THE_BELL, None),
    ],
    ids=["stop-loss", "trailing-stop", "profit-ladder", "time-stop"],
)
def test_each_rule_can_be_switched_off(switch_off, mark, now, high):
    position = opened(10, "1.00")
    assert decide(ExitRules(), position, mark, now=now, high_water=high) != NO_EXIT  # the rule would fire
    assert decide(ExitRules()._replace(**switch_off), position, mark, now=now, high_water=high) == NO_EXIT


@pytest.mark.parametrize(
    ("mark", "high"),
    [("0", None), ("0.01", "50"), ("100", None), ("1.00", None)],
    ids=["zero", "crash", "moon", "flat"],
)
def test_with_every_rule_off_nothing_ever_exits(mark, high):
    position = opened(10, "1.00")
    assert decide(OFF, position, mark, now=AT_THE_BELL, high_water=high) == NO_EXIT


def test_a_closed_or_empty_position_never_exits():
    closed = sold(opened(10, "1.00"), 10, "0.50")
    empty = Position("pos-empty", contract(), "test")
    for position in (closed, empty):
        assert decide(ExitRules(), position, "0.10", now=AT_THE_BELL, high_water="5") == NO_EXIT


# --- high-water mark ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("previous", "mark", "expected"),
    [
        (None, "1.00", "1.20"),  # nothing above the entry yet
        (None, "1.30", "1.30"),
        ("1.50", "1.00", "1.50"),
        ("1.50", "1.70", "1.70"),
    ],
)
def test_high_water_mark_is_the_highest_of_previous_mark_and_entry(previous, mark, expected):
    previous_high = None if previous is None else D(previous)
    assert high_water_mark(opened(10, "1.20"), previous_high, D(mark)) == D(expected)


def test_high_water_mark_is_rebuilt_from_sell_prices_in_the_history():
    position = sold(sold(opened(10, "1.20"), 2, "1.80", source=Source.MANUAL), 3, "1.50")
    assert high_water_mark(position, None, D("1.00")) == D("1.80")
    assert high_water_mark(position, D("1.90"), D("1.00")) == D("1.90")


# --- expiry -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("right", "underlying", "expected"),
    [
        (Right.CALL, "460", "10"),
        (Right.CALL, "450.01", "0.01"),
        (Right.CALL, "450", "0"),
        (Right.CALL, "440", "0"),
        (Right.PUT, "440", "10"),
        (Right.PUT, "449.99", "0.01"),
        (Right.PUT, "450", "0"),
        (Right.PUT, "460", "0"),
    ],
)
def test_expiry_settlement_is_the_intrinsic_value(right, underlying, expected):
    assert expiry_settlement_price(contract(right, "450"), D(underlying)) == D(expected)


def test_expiry_settlement_refuses_a_negative_underlying_price():
    with pytest.raises(ValueError, match="underlying price"):
        expiry_settlement_price(contract(), D("-1"))


@pytest.mark.parametrize(
    ("now", "expired"),
    [
        (datetime(2026, 11, 26, 17, 0, tzinfo=NY), False),
        # 2026-11-27, the day after Thanksgiving, closes at 13:00 New York.
        (datetime(2026, 11, 27, 12, 59, 59, tzinfo=NY), False),
        (datetime(2026, 11, 27, 13, 0, tzinfo=NY), True),
        (datetime(2026, 11, 27, 17, 59, 59, tzinfo=UTC), False),  # 12:59:59 EST
        (datetime(2026, 11, 27, 18, 0, tzinfo=UTC), True),
        (datetime(2026, 11, 28, 9, 30, tzinfo=NY), True),
    ],
)
def test_a_contract_is_expired_from_the_session_close_on_its_expiry_date(now, expired):
    assert is_expired(contract(), now) is expired


# --- validation ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: ExitRules(stop_loss_pct=D(0)), "stop loss must be above 0%"),
        (lambda: ExitRules(stop_loss_pct=D(-5)), "stop loss must be above 0%"),
        (lambda: ExitRules(stop_loss_pct=D(101)), "at most 100%"),
        (lambda: ExitRules(trailing_stop_pct=D(0)), "trailing stop must be above 0%"),
        (lambda: ExitRules(trailing_activation_pct=D(-1)), "activation must be 0% or more"),
        (lambda: ExitRules(time_stop_minutes=0), "positive whole number of minutes"),
        (lambda: ExitRules(time_stop_minutes=-5), "positive whole number of minutes"),
        (lambda: ExitRules(profit_ladder=(ProfitLevel(D(60), D(50)), ProfitLevel(D(30), D(100)))), "sorted by gain"),
        (lambda: ExitRules(profit_ladder=(ProfitLevel(D(30), D(50)), ProfitLevel(D(30), D(100)))), "sorted by gain"),
        (lambda: ProfitLevel(D(0), D(50)), "gain must be above 0%"),
        (lambda: ProfitLevel(D(30), D(0)), "more than 0% and at most 100%"),
        (lambda: ProfitLevel(D(30), D(101)), "more than 0% and at most 100%"),
        (lambda: ProfitLevel(D(30), "half"), "must be a number"),
    ],
)
def test_invalid_settings_are_refused_with_a_clear_sentence(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_settings_given_as_whole_numbers_become_exact_decimals():
    level = ProfitLevel(30, 50)  # type: ignore[arg-type]
    assert (level.gain_pct, level.sell_pct) == (D(30), D(50))
    assert isinstance(level.gain_pct, Decimal)
    assert ExitRules(stop_loss_pct=25).stop_loss_pct == D(25)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "call",
    [
        lambda: decide(ExitRules(), opened(), "1.00", now=datetime(2026, 11, 23, 12, 0)),
        lambda: decide(ExitRules(), opened(), "1.00", session_close=datetime(2026, 11, 23, 16, 0)),
        lambda: decide(ExitRules(), opened(), "-0.01"),
        lambda: is_expired(contract(), datetime(2026, 11, 27, 16, 0)),
    ],
    ids=["naive-now", "naive-close", "negative-mark", "naive-expiry-check"],
)
def test_naive_times_and_negative_marks_are_refused(call):
    with pytest.raises(ValueError):
        call()


def test_exit_rules_stay_pure():
    tree = ast.parse((PROJECT_ROOT / "bot" / "strategies" / "options" / "exit_rules.py").read_text())
    roots = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    roots |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert not roots & {"discord", "asyncio", "os", "pathlib", "io", "aiosqlite", "sqlite3", "socket", "apscheduler"}
