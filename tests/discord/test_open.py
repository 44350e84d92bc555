"""Traders open and add from Discord (/open, /add, the Add button): autocomplete offers only listed contracts and
nothing to a member who is not a trader; a preview sends nothing; only its Confirm buys, checked again then; every
refusal is one ephemeral sentence that leaves the ledger and the messages as they were."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from simcord import assert_error, assert_responded

from bot.discord.open_flow import adding, opening
from bot.options.chain import nearest_first
from bot.options.errors import TradeError
from bot.options.risk import TradingState
from tests.discord.conftest import QQQ, SPY, Desk, fields_of

OPEN = {"underlying": "SPY", "expiry": "2026-11-27", "strike": "450", "right": "call", "qty": 3}
LABEL = "SPY 2026-11-27 450C"


def buttons(message: Any) -> list[str]:
    return [c["label"] for row in message.components for c in row["components"]]


async def preview(desk: Desk, **changes: Any) -> Any:
    if SPY.symbol not in desk.marks:
        desk.quote(SPY, "1.00", "1.10")
    return await desk.trader.slash(desk.channel, "open", **(OPEN | changes))


def unchanged(desk: Desk) -> tuple[bytes, bytes, int, int]:
    """What a refusal must leave as it was: the ledger, the message map, the channel's messages, the orders."""
    return desk.ledger_bytes(), desk.message_map_bytes(), len(desk.messages()), len(desk.manager.orders)


# --- autocomplete ---------------------------------------------------------------------------------------------------


async def test_autocomplete_offers_only_listed_contracts_near_the_money_first(desk: Desk) -> None:
    chain = desk.bot.desk.chain
    assert chain is not None

    underlyings = await desk.trader.autocomplete(desk.channel, "open", "underlying", "")
    expiries = await desk.trader.autocomplete(desk.channel, "open", "expiry", "", underlying="SPY")
    december = await desk.trader.autocomplete(desk.channel, "open", "expiry", "2026-12", underlying="SPY")
    strikes = await desk.trader.autocomplete(
        desk.channel, "open", "strike", "", underlying="SPY", expiry="2026-11-27", right="call"
    )
    typed = await desk.trader.autocomplete(
        desk.channel, "open", "strike", "45", underlying="SPY", expiry="2026-11-27", right="call"
    )

    assert [c["value"] for c in underlyings] == ["SPY", "QQQ"]
    listed = await chain.expiries("SPY", desk.bot.desk.today())
    assert [c["value"] for c in expiries] == [d.isoformat() for d in listed[:25]]
    assert expiries[0]["value"] == "2026-11-25"  # today, before the close
    assert "2026-11-26" not in {c["value"] for c in expiries}  # Thanksgiving: no session, no expiry
    assert december and all(c["value"].startswith("2026-12") for c in december)
    listed_chain = await chain.chain("SPY", datetime(2026, 11, 27).date(), width=12)
    offered = [Decimal(c["value"]) for c in strikes]
    assert offered == nearest_first(listed_chain.strikes, listed_chain.centre)[:25]
    assert all(Decimal(c["value"]) in listed_chain.strikes for c in strikes)
    assert all(c["value"].startswith("45") for c in typed)


async def test_autocomplete_offers_nothing_to_a_member_without_the_trader_role(desk: Desk) -> None:
    position = await desk.open(qty=2)
    filled = {"underlying": "SPY", "expiry": "2026-11-27", "right": "call"}

    offered = [
        await desk.nobody.autocomplete(desk.channel, "open", "underlying", ""),
        await desk.nobody.autocomplete(desk.channel, "open", "expiry", "", underlying="SPY"),
        await desk.nobody.autocomplete(desk.channel, "open", "strike", "", **filled),
        await desk.nobody.autocomplete(desk.channel, "open", "strategy", ""),
        await desk.nobody.autocomplete(desk.channel, "add", "position", position.position_id[-6:]),
        await desk.nobody.autocomplete(desk.channel, "chain", "underlying", ""),
    ]

    assert offered == [[], [], [], [], [], []]
    assert await desk.trader.autocomplete(desk.channel, "add", "position", "")  # a trader does get them


# --- the preview and its Confirm ------------------------------------------------------------------------------------


async def test_a_preview_sends_nothing(desk: Desk) -> None:
    before = unchanged(desk)

    asked = await preview(desk)

    assert_responded(asked, content="Nothing is sent until you confirm.", ephemeral=True)
    embed = asked.response.embeds[0]
    assert embed.title == f"Open: buy 3 {LABEL}"
    fields = fields_of(embed)
    assert fields["Estimated fill"].startswith("1.10 a share")  # the ask, as the paper executor fills a buy
    assert fields["Premium at risk"].startswith("330.00")
    assert fields["Exits"].startswith("Manual: no automatic exits")
    assert "contracts per order: 3 of 50" in fields["Desk limits"]
    assert "premium across the desk: 330.00 of 30,000.00" in fields["Desk limits"]
    assert buttons(asked.response) == ["Confirm", "Cancel"]
    assert unchanged(desk) == before


async def test_confirm_opens_one_manual_position_with_one_ledger_line_and_one_message(desk: Desk) -> None:
    asked = await preview(desk)

    done = await desk.trader.click(asked.response, label="Confirm")
    await desk.deliver()

    assert done.response.id == asked.response.id  # the preview is replaced by the result
    assert done.response.content.startswith(f"Bought 3 {LABEL} @ 1.1.")
    assert "(manual: no automatic exits)" in done.response.content
    assert (done.response.embeds, done.response.components) == ([], [])
    [line] = desk.ledger_lines()
    assert (line["kind"], line["qty"], line["price"], line["source"], line["actor"], line["strategy"]) == (
        "open",
        3,
        "1.10",
        "manual",
        f"discord:{desk.trader.id}",
        "manual",
    )
    [message] = desk.messages()
    assert message.id == desk.message_of(line["position_id"]).id
    assert [button.label for row in message.components for button in row.children] == [  # type: ignore[union-attr]
        "Trim 25%",
        "Trim 50%",
        "Close",
        "Add",
    ]
    listed = await desk.trader.slash(desk.channel, "positions")
    assert line["position_id"] in listed.response.embeds[0].description


async def test_a_named_strategy_takes_the_position(desk: Desk) -> None:
    from bot.settings import OpeningRangeBreakoutSettings

    desk.bot.settings = desk.bot.settings.replace(
        strategies=[OpeningRangeBreakoutSettings(name="spy-orb", underlying="SPY")]
    )
    asked = await preview(desk, strategy="spy-orb")
    exits = fields_of(asked.response.embeds[0])["Exits"]
    offered = await desk.trader.autocomplete(desk.channel, "open", "strategy", "")

    await desk.trader.click(asked.response, label="Confirm")

    assert [c["value"] for c in offered] == ["manual", "spy-orb"]
    assert exits == "Handed to spy-orb: its exit rules manage it."
    assert desk.ledger_lines()[-1]["strategy"] == "spy-orb"


async def test_a_quote_moved_past_a_limit_is_refused_at_confirm(desk: Desk) -> None:
    # 40 contracts at 1.10 put 4,400 at risk: within the 10,000 a position may hold; at 2.60 they would not be.
    asked = await preview(desk, qty=40)
    desk.quote(SPY, "2.50", "2.60")
    before = unchanged(desk)

    refused = await desk.trader.click(asked.response, label="Confirm")

    assert refused.response.content == (
        f"Refused by the max premium per position limit: 10,400.00 would be at risk in {LABEL}, the limit is 10,000.00."
    )
    assert refused.response.components == []
    assert unchanged(desk) == before


async def test_a_confirm_after_the_timeout_says_the_preview_expired(desk: Desk) -> None:
    asked = await preview(desk)
    await desk.advance_to(datetime(2026, 11, 25, 15, 1, 1, tzinfo=UTC))  # 61 s on the desk's clock
    before = unchanged(desk)

    late = await desk.trader.click(asked.response, label="Confirm")

    assert late.response.content == "This preview expired (60 s); nothing was sent. Ask again for a fresh one."
    assert unchanged(desk) == before


async def test_cancel_buys_nothing(desk: Desk) -> None:
    asked = await preview(desk)
    before = unchanged(desk)

    cancelled = await desk.trader.click(asked.response, label="Cancel")

    assert_responded(cancelled, content="Cancelled; nothing was bought.", ephemeral=True)
    assert unchanged(desk) == before


async def test_a_role_removed_before_confirm_is_refused_at_confirm(desk: Desk) -> None:
    from tests.discord.conftest import GUILD_ID

    asked = await preview(desk)
    desk.env.backend.remove_member_role(GUILD_ID, desk.trader.id, desk.trader_role.id)
    await desk.env.settle()
    before = unchanged(desk)

    refused = await desk.trader.click(asked.response, label="Confirm")

    assert refused.response.content == "You need a trader role to use optiondesk."
    assert unchanged(desk) == before


# --- adding ---------------------------------------------------------------------------------------------------------


async def test_add_previews_then_buys_into_the_position(desk: Desk) -> None:
    position = await desk.open(qty=4)
    before = unchanged(desk)

    asked = await desk.trader.slash(desk.channel, "add", position=position.position_id, qty=2)
    previewed, title = unchanged(desk), asked.response.embeds[0].title
    done = await desk.trader.click(asked.response, label="Confirm")
    await desk.deliver()

    assert previewed == before
    assert title == f"Add: buy 2 more {LABEL}"
    assert done.response.content.startswith(f"Bought 2 {LABEL} @ 1.1. Position `{position.position_id}` holds 6")
    last = desk.ledger_lines()[-1]
    assert (last["kind"], last["qty"], last["source"], last["strategy"]) == ("add", 2, "manual", "orb")
    assert len(desk.messages()) == 1
    assert fields_of(desk.message_of(position.position_id).embeds[0])["Open"] == "6"


async def test_the_add_button_asks_how_many_then_previews(desk: Desk) -> None:
    position = await desk.open(qty=4)

    asked = await desk.trader.click(desk.message_of(position.position_id), label="Add")
    shown = await desk.trader.submit_modal(asked, {"qty": "3"})
    title = shown.response.embeds[0].title
    bad = await desk.trader.submit_modal(
        await desk.trader.click(desk.message_of(position.position_id), label="Add"), {"qty": "1.5"}
    )
    done = await desk.trader.click(shown.response, label="Confirm")

    assert title == f"Add: buy 3 more {LABEL}"
    assert_responded(bad, content="'1.5' is not a positive whole number of contracts.", ephemeral=True)
    assert done.response.content.startswith(f"Bought 3 {LABEL}")
    assert desk.manager.get(position.position_id).qty == 7


async def test_the_add_button_is_refused_to_a_member_without_the_role(desk: Desk) -> None:
    position = await desk.open(qty=4)
    before = unchanged(desk)

    refused = await desk.nobody.click(desk.message_of(position.position_id), label="Add")

    assert_responded(refused, content="You need a trader role to use optiondesk.", ephemeral=True)
    assert unchanged(desk) == before


# --- refusals: one ephemeral sentence, nothing changed --------------------------------------------------------------

REFUSALS = [
    ({"underlying": "XYZ"}, "'XYZ' is not an underlying the desk trades; it has SPY, QQQ."),
    ({"expiry": "2026-11-20"}, "SPY has no expiry listed on 2026-11-20; /chain SPY shows them."),
    ({"expiry": "2026-11-26"}, "SPY has no expiry listed on 2026-11-26; /chain SPY shows them."),
    ({"expiry": "next friday"}, "'next friday' is not an expiry (a date such as 2026-11-27)."),
    ({"strike": "450.5"}, "SPY 2026-11-27 450.5C is not listed; /chain SPY 2026-11-27 shows the strikes."),
    ({"strike": "lots"}, "'lots' is not a strike (a price such as 600 or 602.5)."),
    ({"qty": 60}, "Refused by the max contracts per order limit: 60 contracts asked, the limit is 50."),
    ({"limit": "abc"}, "'abc' is not a price (a positive amount in dollars and cents, such as 1.25)."),
    ({"limit": "-1"}, "'-1' is not a price (a positive amount in dollars and cents, such as 1.25)."),
    ({"strategy": "yolo"}, "There is no strategy 'yolo' (none is configured); leave it empty for a manual position."),
    ({"strike": "460"}, "There is no quote for SPY 2026-11-27 460C yet; try again in a moment."),
]


@pytest.mark.parametrize(("changes", "sentence"), REFUSALS, ids=[str(c) for c, _ in REFUSALS])
async def test_each_refusal_is_one_sentence_and_changes_nothing(
    desk: Desk, changes: dict[str, Any], sentence: str
) -> None:
    await desk.open(QQQ, qty=1)
    desk.quote(SPY, "1.00", "1.10")
    before = unchanged(desk)

    refused = await preview(desk, **changes)

    assert_responded(refused, content=sentence, ephemeral=True)
    assert refused.response.components == []
    assert_error(desk.env, TradeError)
    assert unchanged(desk) == before


async def test_a_crossed_or_stale_quote_is_refused(desk: Desk) -> None:
    desk.quote(SPY, "1.20", "1.10")
    crossed = await preview(desk)
    desk.quote(SPY, "1.00", "1.10")
    await desk.env.advance_time(150)  # the quote is not given again: 150 s old, the limit is 120
    stale = await preview(desk)

    assert crossed.response.content == f"Not buying {LABEL}: the quote is crossed (bid 1.20 above ask 1.10)."
    assert stale.response.content == f"Not buying {LABEL}: the quote is stale (no update for 150 s)."
    assert_error(desk.env, TradeError)
    assert desk.ledger_bytes() == b"" and desk.manager.orders == {}


async def test_a_closed_market_and_a_halted_desk_are_refused(desk: Desk) -> None:
    await desk.bot.desk.switch.set(TradingState.HALTED, "checking", "operator")
    halted = await preview(desk)
    await desk.bot.desk.switch.set(TradingState.ACTIVE, "checking", "operator")
    await desk.advance_to(datetime(2026, 11, 25, 22, 0, tzinfo=UTC))  # 17:00 New York
    closed = await preview(desk)

    assert halted.response.content.startswith("Refused: the desk is halted")
    assert closed.response.content.startswith("Refused by the market hours limit: it is 17:00 New York on 2026-11-25")
    assert_error(desk.env, TradeError)
    assert desk.ledger_bytes() == b"" and desk.manager.orders == {}


@pytest.mark.parametrize("qty", [0, -2, "1.5", "three", 10_001])
async def test_a_quantity_that_is_not_a_whole_positive_number_is_refused(desk: Desk, qty: object) -> None:
    # Discord's client refuses these in its form (the options' ranges); the bot refuses them too.
    position = await desk.open(qty=2)
    desk_ = desk.bot.desk

    with pytest.raises(TradeError, match="contracts"):
        await opening(desk_, desk.bot.settings, desk.trader.id, **(OPEN | {"qty": qty}))
    with pytest.raises(TradeError, match="contracts"):
        adding(desk_, desk.trader.id, position.position_id, qty)
