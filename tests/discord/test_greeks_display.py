"""Greeks where a trader sees them, under simcord: the position message and /position show the contract's delta,
gamma, theta, vega and IV and the position's, with their source; /status the desk's net dollar delta, daily theta
and vega. On the paper desk they are the model's: Black-Scholes at the simulated market's vol (SPY 0.18)."""

from __future__ import annotations

from decimal import Decimal

from bot.options.greeks import contract_greeks
from bot.options.pricing import RATE
from bot.options.risk import cents
from tests.discord.conftest import SPY, Desk, fields_of, market_quote

SPOT = Decimal("450.00")
SPY_VOL = 0.18  # the default simulated market's


def quote_the_underlying(desk: Desk) -> None:
    desk.bot.desk.quotes.update("SPY", market_quote("449.99", "450.01", desk.env.now()))


def expected_lines(desk: Desk, qty: int) -> list[str]:
    g = contract_greeks(SPY, SPOT, desk.clock(), vol=SPY_VOL, rate=RATE)
    size = qty * SPY.multiplier
    return [
        f"greeks (model) per contract: delta {g.delta:.3f} · gamma {g.gamma:.4f} · theta {g.theta:.3f}/day · "
        f"vega {g.vega:.3f}/vol pt · IV 18.0%",
        f"position ({qty} contracts): delta {g.delta * size:,.1f} shares (${cents(g.delta * size * 450):,}) · "
        f"gamma {g.gamma * size:,.2f} · theta -${-cents(g.theta * size):,}/day · vega ${cents(g.vega * size):,}/vol pt",
    ]


async def test_the_position_message_shows_the_greeks_of_the_contract_and_the_position(desk: Desk) -> None:
    quote_the_underlying(desk)

    position = await desk.open(qty=10)

    fields = fields_of(desk.message_of(position.position_id).embeds[0])
    assert fields["Greeks"].splitlines() == expected_lines(desk, 10)


async def test_a_closed_position_shows_no_greeks(desk: Desk) -> None:
    quote_the_underlying(desk)
    position = await desk.open(qty=10)

    await desk.manager.close(position.position_id)
    await desk.deliver()

    assert "Greeks" not in fields_of(desk.message_of(position.position_id).embeds[0])


async def test_position_shows_the_greeks_as_they_are_now(desk: Desk) -> None:
    quote_the_underlying(desk)
    position = await desk.open(qty=10)
    await desk.trader.slash(desk.channel, "trim", position=position.position_id, qty=4)

    result = await desk.trader.slash(desk.channel, "position", position=position.position_id)

    [embed] = result.response.embeds
    assert fields_of(embed)["Greeks"].splitlines() == expected_lines(desk, 6)


async def test_status_shows_the_desks_net_dollar_delta_and_daily_theta(desk: Desk) -> None:
    quote_the_underlying(desk)
    await desk.open(qty=10)
    await desk.open(qty=5)
    settings = desk.bot.settings
    risk = settings.risk.replace(max_net_delta=Decimal(100_000))
    desk.bot.settings = settings.replace(risk=risk)

    result = await desk.trader.slash(desk.channel, "status")

    [embed] = result.response.embeds
    lines = (embed.description or "").splitlines()
    g = contract_greeks(SPY, SPOT, desk.clock(), vol=SPY_VOL, rate=RATE)
    assert "Greeks (model):" in lines
    assert f"  Net dollar delta: {cents(g.delta * 1500 * 450):,.2f} (limit 100,000.00 either way)" in lines
    assert f"  Theta: {cents(g.theta * 1500):,.2f} a day" in lines
    assert f"  Vega: {cents(g.vega * 1500):,.2f} per vol point (no limit)" in lines
