"""Each pre-trade limit just under, at and just over its value, through the order manager: a refused buy is
one sentence naming the limit, the value and the limit, and nothing is sent or written."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal

import pytest

from bot.options.contracts import OptionContract, Right
from bot.options.errors import TradeError
from bot.options.risk import RiskLimits
from tests.risk.conftest import ALL_OFF, QQQ, SPY, RiskDesk, new_york, only, refused

# --- size and premium --------------------------------------------------------------------------------


@pytest.mark.parametrize(("qty", "allowed"), [(49, True), (50, True), (51, False)])
async def test_max_contracts_per_order(risk_desk: RiskDesk, qty: int, allowed: bool) -> None:
    manager = risk_desk.build(only(max_contracts_per_order=50))
    risk_desk.quote(SPY, "1.00", "1.10")

    if allowed:
        assert (await manager.open_position(SPY, qty, strategy="orb")).qty == qty
    else:
        sentence = await refused(risk_desk, manager.open_position(SPY, qty, strategy="orb"))
        assert sentence == "Refused by the max contracts per order limit: 51 contracts asked, the limit is 50."


@pytest.mark.parametrize(("already_open", "allowed"), [(0, True), (1, True), (2, False)])
async def test_max_open_positions(risk_desk: RiskDesk, already_open: int, allowed: bool) -> None:
    manager = risk_desk.build(only(max_open_positions=2))
    risk_desk.quote(SPY, "1.00", "1.10")
    for _ in range(already_open):
        await manager.open_position(SPY, 1, strategy="orb")

    if allowed:
        await manager.open_position(SPY, 1, strategy="orb")
        assert len(manager.open_positions()) == already_open + 1
    else:
        sentence = await refused(risk_desk, manager.open_position(SPY, 1, strategy="orb"))
        assert sentence == "Refused by the max open positions limit: 2 positions are open, the limit is 2."


async def test_max_open_positions_lets_an_add_through(risk_desk: RiskDesk) -> None:
    manager = risk_desk.build(only(max_open_positions=1))
    risk_desk.quote(SPY, "1.00", "1.10")
    position = await manager.open_position(SPY, 1, strategy="orb")

    assert (await manager.add(position.position_id, 1)).qty == 2


# The ask is 1.00: premium = qty x 1.00 x 100 against a limit of 1,000.00.
@pytest.mark.parametrize(("qty", "allowed"), [(9, True), (10, True), (11, False)])
async def test_max_premium_per_position_on_an_open(risk_desk: RiskDesk, qty: int, allowed: bool) -> None:
    manager = risk_desk.build(only(max_premium_per_position=Decimal(1000)))
    risk_desk.quote(SPY, "0.98", "1.00")

    if allowed:
        await manager.open_position(SPY, qty, strategy="orb")
    else:
        sentence = await refused(risk_desk, manager.open_position(SPY, qty, strategy="orb"))
        assert sentence == (
            "Refused by the max premium per position limit: 1,100.00 would be at risk in SPY 2026-11-27 450C, "
            "the limit is 1,000.00."
        )


@pytest.mark.parametrize(("add", "allowed"), [(4, True), (5, True), (6, False)])
async def test_max_premium_per_position_on_an_add_counts_what_is_held(
    risk_desk: RiskDesk, add: int, allowed: bool
) -> None:
    manager = risk_desk.build(only(max_premium_per_position=Decimal(1000)))
    risk_desk.quote(SPY, "0.98", "1.00")
    position = await manager.open_position(SPY, 5, strategy="orb")
    risk_desk.quote(SPY, "0.98", "1.00")

    if allowed:
        assert (await manager.add(position.position_id, add)).qty == 5 + add
    else:
        await refused(risk_desk, manager.add(position.position_id, add))
        assert manager.get(position.position_id).qty == 5


@pytest.mark.parametrize(("qty", "allowed"), [(9, True), (10, True), (11, False)])
async def test_max_premium_total_across_the_desk(risk_desk: RiskDesk, qty: int, allowed: bool) -> None:
    manager = risk_desk.build(only(max_premium_total=Decimal(2000)))
    risk_desk.quote(SPY, "0.98", "1.00")
    risk_desk.quote(QQQ, "0.98", "1.00")
    await manager.open_position(SPY, 10, strategy="orb")  # 1,000.00 at risk already

    if allowed:
        await manager.open_position(QQQ, qty, strategy="meanrev")
    else:
        sentence = await refused(risk_desk, manager.open_position(QQQ, qty, strategy="meanrev"))
        assert sentence == (
            "Refused by the max total premium limit: 2,100.00 would be at risk across the desk, the limit is 2,000.00."
        )


async def test_a_premium_limit_refuses_a_buy_it_cannot_price(risk_desk: RiskDesk) -> None:
    manager = risk_desk.build(only(max_premium_per_position=Decimal(1000)))

    sentence = await refused(risk_desk, manager.open_position(SPY, 1, strategy="orb"))

    assert sentence == (
        "Refused by the max premium per position limit: there is no usable quote for SPY 2026-11-27 450C to price it."
    )


# --- the day's loss ----------------------------------------------------------------------------------


# One contract bought at 6.00 and sold at the bid: the loss is (6.00 - bid) x 100; the limit is 500.00.
@pytest.mark.parametrize(("bid", "allowed"), [("1.01", True), ("1.00", False), ("0.99", False)])
async def test_max_daily_loss_is_reached_at_the_limit(risk_desk: RiskDesk, bid: str, allowed: bool) -> None:
    manager = risk_desk.build(only(max_daily_loss=Decimal(500)))
    risk_desk.quote(SPY, "5.90", "6.00")
    loser = await manager.open_position(SPY, 1, strategy="orb")
    risk_desk.quote(SPY, bid, "6.00")
    await manager.close(loser.position_id)
    risk_desk.quote(QQQ, "0.98", "1.00")

    if allowed:
        await manager.open_position(QQQ, 1, strategy="meanrev")
    else:
        sentence = await refused(risk_desk, manager.open_position(QQQ, 1, strategy="meanrev"))
        assert sentence.startswith("Refused by the max daily loss limit: today's realized P&L is -50")
        assert sentence.endswith(", the limit is a loss of 500.00.")


async def test_yesterdays_loss_does_not_count_today(risk_desk: RiskDesk) -> None:
    manager = risk_desk.build(only(max_daily_loss=Decimal(500)))
    risk_desk.quote(SPY, "5.90", "6.00")
    loser = await manager.open_position(SPY, 1, strategy="orb")
    risk_desk.quote(SPY, "0.50", "6.00")
    await manager.close(loser.position_id)
    risk_desk.now = new_york(2026, 11, 27, 10, 0)  # Friday, the next trading day
    risk_desk.quote(QQQ, "0.98", "1.00")

    assert (await manager.open_position(QQQ, 1, strategy="meanrev")).qty == 1


# --- time of day ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "allowed"),
    [
        (new_york(2026, 11, 25, 9, 29, 59), False),
        (new_york(2026, 11, 25, 9, 30), True),
        (new_york(2026, 11, 25, 15, 59, 59), True),
        (new_york(2026, 11, 25, 16, 0), False),
        (new_york(2026, 11, 26, 11, 0), False),  # Thanksgiving
        (new_york(2026, 11, 21, 11, 0), False),  # Saturday
    ],
)
async def test_entries_only_while_the_market_is_open(risk_desk: RiskDesk, now: datetime, allowed: bool) -> None:
    manager = risk_desk.build(only(market_hours_only=True))
    risk_desk.now = now
    risk_desk.quote(SPY, "1.00", "1.10")

    if allowed:
        await manager.open_position(SPY, 1, strategy="orb")
    else:
        sentence = await refused(risk_desk, manager.open_position(SPY, 1, strategy="orb"))
        assert sentence.startswith(f"Refused by the market hours limit: it is {now:%H:%M} New York on {now:%Y-%m-%d}")


@pytest.mark.parametrize(
    ("now", "allowed"),
    [(time(15, 54, 59), True), (time(15, 55), False), (time(15, 55, 1), False)],
)
async def test_no_entries_in_the_last_minutes_before_the_close(risk_desk: RiskDesk, now: time, allowed: bool) -> None:
    manager = risk_desk.build(only(no_entry_minutes_before_close=5))
    risk_desk.now = new_york(2026, 11, 25, now.hour, now.minute, now.second)
    risk_desk.quote(SPY, "1.00", "1.10")

    if allowed:
        await manager.open_position(SPY, 1, strategy="orb")
    else:
        sentence = await refused(risk_desk, manager.open_position(SPY, 1, strategy="orb"))
        assert sentence.startswith("Refused by the no entries before the close limit: it is 15:55 New York, ")
        assert sentence.endswith(" minutes before the close, the limit is 5 minutes.")


EXPIRING_TODAY = OptionContract("SPY", date(2026, 11, 25), Right.CALL, Decimal(600))


@pytest.mark.parametrize(
    ("contract", "now", "allowed"),
    [
        (EXPIRING_TODAY, time(14, 59, 59), True),
        (EXPIRING_TODAY, time(15, 0), False),
        (EXPIRING_TODAY, time(15, 0, 1), False),
        (SPY, time(15, 30), True),  # expires on Friday
    ],
)
async def test_no_buying_a_contract_that_expires_today_after_the_cutoff(
    risk_desk: RiskDesk, contract: OptionContract, now: time, allowed: bool
) -> None:
    manager = risk_desk.build(only(no_buy_expiring_today_after=time(15, 0)))
    risk_desk.now = new_york(2026, 11, 25, now.hour, now.minute, now.second)
    risk_desk.quote(contract, "1.00", "1.10")

    if allowed:
        await manager.open_position(contract, 1, strategy="orb0")
    else:
        sentence = await refused(risk_desk, manager.open_position(contract, 1, strategy="orb0"))
        assert sentence == (
            "Refused by the same-day expiry limit: SPY 2026-11-25 600C expires today and it is 15:00 New York, "
            "the limit is 15:00."
        )


# --- quote quality -------------------------------------------------------------------------------------


# The mid is 1.00 each time; the spread is 9 %, 10 % and 11 % of it against a limit of 10 %.
@pytest.mark.parametrize(
    ("bid", "ask", "allowed"), [("0.955", "1.045", True), ("0.95", "1.05", True), ("0.945", "1.055", False)]
)
async def test_max_spread_as_a_share_of_mid(risk_desk: RiskDesk, bid: str, ask: str, allowed: bool) -> None:
    manager = risk_desk.build(only(max_spread_pct=Decimal(10)))
    risk_desk.quote(SPY, bid, ask)

    if allowed:
        await manager.open_position(SPY, 1, strategy="orb")
    else:
        sentence = await refused(risk_desk, manager.open_position(SPY, 1, strategy="orb"))
        assert sentence == (
            "Refused by the quote quality limit: the spread of SPY 2026-11-27 450C is 11.0% of mid (0.945-1.055), "
            "the limit is 10%."
        )


async def test_a_one_sided_quote_fails_the_quote_quality_limit(risk_desk: RiskDesk) -> None:
    manager = risk_desk.build(only(max_spread_pct=Decimal(10)))
    risk_desk.quote(SPY, "0", "1.05")

    sentence = await refused(risk_desk, manager.open_position(SPY, 1, strategy="orb"))

    assert (
        sentence
        == "Refused by the quote quality limit: SPY 2026-11-27 450C has no two-sided quote to judge its spread by."
    )


# --- selling is never limited ----------------------------------------------------------------------------


async def test_trims_and_closes_pass_every_limit_even_when_each_is_broken(risk_desk: RiskDesk) -> None:
    # Arrange: 10 contracts bought in two orders of 5, then every limit is broken at once.
    strict = RiskLimits(
        max_contracts_per_order=5,
        max_open_positions=1,
        max_premium_per_position=Decimal(1000),
        max_premium_total=Decimal(1000),
        max_daily_loss=Decimal(1),
        no_entry_minutes_before_close=5,
        no_buy_expiring_today_after=time(15, 0),
        max_spread_pct=Decimal(10),
    )
    manager = risk_desk.build(strict)
    risk_desk.quote(SPY, "0.95", "1.00")
    position = await manager.open_position(SPY, 5, strategy="orb")
    risk_desk.quote(SPY, "0.95", "1.00")
    position = await manager.add(position.position_id, 5)
    risk_desk.now = new_york(2026, 11, 25, 16, 30)  # after the close
    risk_desk.quote(SPY, "0.10", "0.90")  # a wide spread

    # Act: sell more in one order than a buy may hold, at a loss, after hours, on a bad quote.
    trimmed = await manager.trim(position.position_id, qty=2)
    closed = await manager.close(position.position_id)

    # Assert
    assert trimmed.qty == 8
    assert not closed.is_open and closed.actions[-1].qty == 8
    with pytest.raises(TradeError):
        await manager.open_position(SPY, 1, strategy="orb")


# --- expiry --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "allowed"),
    [
        (new_york(2026, 11, 27, 12, 59), True),  # the day after Thanksgiving closes at 13:00
        (new_york(2026, 11, 27, 13, 0), False),
        (new_york(2026, 11, 30, 9, 30), False),
    ],
)
async def test_no_order_for_a_contract_past_its_expiry_whatever_the_limits(
    risk_desk: RiskDesk, now: datetime, allowed: bool
) -> None:
    manager = risk_desk.build(ALL_OFF)
    risk_desk.quote(SPY, "1.00", "1.10")
    risk_desk.now = new_york(2026, 11, 27, 10, 0)
    held = await manager.open_position(SPY, 2, strategy="orb")
    risk_desk.now = now

    if allowed:
        assert (await manager.open_position(SPY, 1, strategy="orb")).qty == 1
        assert (await manager.trim(held.position_id, qty=1)).qty == 1
    else:
        expected = "Refused: SPY 2026-11-27 450C expired at the close of 2026-11-27 (13:00 New York); it is not traded."
        assert await refused(risk_desk, manager.open_position(SPY, 1, strategy="orb")) == expected
        assert await refused(risk_desk, manager.add(held.position_id, 1)) == expected
        assert await refused(risk_desk, manager.trim(held.position_id, qty=1)) == expected
