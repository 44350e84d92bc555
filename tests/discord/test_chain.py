"""/chain under simcord, and the chain's pieces: strikes around the money for the next expiries, from the simulated
market (the desk's own quote where it has one), within Discord's embed limits; refusals in one sentence."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from simcord import assert_error, assert_responded

from bot.discord.embeds import EMBED_LIMIT, FIELD_LIMIT
from bot.discord.open_cards import chain_embed
from bot.discord.rights import NotAllowed
from bot.options.chain import Chain, ChainRow, nearest_first, parity_centre, strikes_around
from bot.options.contracts import OptionContract, Right
from bot.options.errors import TradeError
from bot.render.chain import HEADER
from tests.discord.conftest import NOW, Desk


def table(value: str) -> list[str]:
    lines = value.strip("`\n").splitlines()
    assert lines[0] == HEADER
    return lines[1:]


async def test_chain_shows_the_next_expiries_around_the_money(desk: Desk) -> None:
    chain = desk.bot.desk.chain
    assert chain is not None
    friday = OptionContract("SPY", date(2026, 11, 27), Right.CALL, Decimal(450))
    desk.quote(friday, "150.10", "150.90")  # the desk's own quote is the one shown (what an order would fill at)

    shown = await desk.trader.slash(desk.channel, "chain", underlying="SPY")
    one = await desk.trader.slash(desk.channel, "chain", underlying="SPY", expiry="2026-11-27")

    assert_responded(shown, content="SPY chain.", ephemeral=True)
    embed = shown.response.embeds[0]
    assert [f.name.split(" ")[0] for f in embed.fields] == ["2026-11-25", "2026-11-27", "2026-11-30"]
    assert len(embed) <= EMBED_LIMIT and all(len(f.value or "") <= FIELD_LIMIT for f in embed.fields)
    spy = desk.bot.desk.feed.market.spot_at("SPY", NOW)  # type: ignore[union-attr]
    listed = await chain.chain("SPY", date(2026, 11, 27))
    for field in embed.fields:
        lines = table(field.value or "")
        assert len(lines) == 11  # five strikes each side of the money
        [money] = [line for line in lines if line.startswith(">")]
        assert abs(Decimal(money[1:].split()[0]) - spy) <= Decimal("0.5")
    for row in listed.rows:
        market = desk.bot.desk.feed.market.contract_quote_at(row.contract, NOW)  # type: ignore[union-attr]
        assert (row.bid, row.ask) == (market.bid, market.ask)
        assert row.delta is not None and (row.delta > 0) == (row.contract.right is Right.CALL)
        assert row.open_interest is None  # a simulation has none
    [friday_field] = one.response.embeds[0].fields
    assert friday_field.name.startswith("2026-11-27 (Fri")
    far = (await chain.chain("SPY", date(2026, 11, 27), around=Decimal(450), width=0)).row(Decimal(450), Right.CALL)
    assert far is not None and (far.contract, far.bid, far.ask) == (friday, Decimal("150.10"), Decimal("150.90"))


@pytest.mark.parametrize(
    ("asked", "sentence"),
    [
        ({"underlying": "XYZ"}, "'XYZ' is not an underlying the desk trades; it has SPY, QQQ."),
        (
            {"underlying": "SPY", "expiry": "2026-11-26"},
            "SPY has no expiry listed on 2026-11-26; /chain SPY shows them.",
        ),
        ({"underlying": "SPY", "expiry": "soon"}, "'soon' is not an expiry (a date such as 2026-11-27)."),
    ],
)
async def test_a_chain_that_is_not_listed_is_one_sentence(desk: Desk, asked: dict[str, str], sentence: str) -> None:
    refused = await desk.trader.slash(desk.channel, "chain", **asked)

    assert_responded(refused, content=sentence, ephemeral=True)
    assert_error(desk.env, TradeError)


async def test_chain_is_for_traders_only(desk: Desk) -> None:
    refused = await desk.nobody.slash(desk.channel, "chain", underlying="SPY")

    assert_responded(refused, content="You need a trader role to use optiondesk.", ephemeral=True)
    assert refused.response.embeds == []
    assert_error(desk.env, NotAllowed)


# --- the pieces -----------------------------------------------------------------------------------------------------


def strikes(*values: int) -> list[Decimal]:
    return [Decimal(v) for v in values]


def test_strikes_around_the_money_and_nearest_first() -> None:
    listed = strikes(95, 100, 105, 110, 115, 120, 125)

    assert strikes_around(listed, Decimal("111"), 2) == strikes(100, 105, 110, 115, 120)
    assert strikes_around(listed, Decimal("96"), 2) == strikes(95, 100, 105)  # the edge of what is listed
    assert strikes_around([], Decimal(100), 2) == []
    assert nearest_first(listed, Decimal("111"))[:3] == strikes(110, 115, 105)
    assert nearest_first(listed, None) == listed


def row(strike: int, right: Right, bid: str | None, ask: str | None) -> ChainRow:
    contract = OptionContract("SPY", date(2026, 11, 27), right, Decimal(strike))
    return ChainRow(contract, None if bid is None else Decimal(bid), None if ask is None else Decimal(ask), None, None)


def test_without_the_underlyings_price_the_money_is_where_calls_and_puts_are_worth_alike() -> None:
    rows = [
        row(595, Right.CALL, "8.00", "8.20"),
        row(595, Right.PUT, "3.00", "3.20"),
        row(600, Right.CALL, "5.10", "5.30"),
        row(600, Right.PUT, "4.90", "5.10"),
        row(605, Right.CALL, "2.90", "3.10"),
        row(605, Right.PUT, None, None),  # unquoted: no pair to judge
    ]

    assert parity_centre(rows) == Decimal(600)
    assert parity_centre(rows[-1:]) is None


def test_a_wide_chain_is_cut_to_fit_discords_limits() -> None:
    expiry = date(2026, 11, 27)
    rows = tuple(row(k, right, "1234.50", "1234.90") for k in range(500, 700) for right in (Right.CALL, Right.PUT))
    chains = [Chain("SPY", expiry, Decimal(600), rows) for _ in range(8)]

    embed = chain_embed(chains, NOW)

    assert len(embed) <= EMBED_LIMIT
    assert all(len(f.value or "") <= FIELD_LIMIT for f in embed.fields)
    for field in embed.fields:
        lines = table(field.value or "")
        assert [line for line in lines if line.startswith(">")] == [lines[len(lines) // 2]]  # the money kept central
