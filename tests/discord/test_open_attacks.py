"""/open, /add and /chain as a clumsy trader would use them: a limit the market is beyond, the desk's brakes put on
between the preview and its Confirm, odd text in every option. Each refusal is one sentence and changes nothing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from simcord import assert_error, assert_responded

from bot.options.errors import TradeError
from bot.options.risk import TradingState
from tests.discord.conftest import SPY, Desk
from tests.discord.test_open import LABEL, OPEN, preview, unchanged


async def test_a_limit_the_market_is_beyond_is_refused_at_the_preview(desk: Desk) -> None:
    # The ask is 1.10: a buy limited to 1.00 would not fill, so the preview must not offer it.
    before = unchanged(desk)

    refused = await preview(desk, limit="1.00")
    fits = await preview(desk, limit="1.10")

    assert_responded(
        refused,
        content=f"Not buying {LABEL}: it would fill at 1.10 now, above your limit 1.00; nothing was sent.",
        ephemeral=True,
    )
    assert refused.response.components == []
    assert fits.response.embeds[0].title == f"Open: buy 3 {LABEL}"
    assert_error(desk.env, TradeError)
    assert unchanged(desk) == before


async def test_a_market_moved_beyond_the_limit_is_refused_at_confirm_with_no_order(desk: Desk) -> None:
    asked = await preview(desk, limit="1.10")
    desk.quote(SPY, "1.10", "1.20")
    before = unchanged(desk)

    refused = await desk.trader.click(asked.response, label="Confirm")

    assert refused.response.content == (
        f"Not buying {LABEL}: it would fill at 1.20 now, above your limit 1.10; nothing was sent."
    )
    assert unchanged(desk) == before  # no rejected order either: nothing was sent


@pytest.mark.parametrize(
    ("state", "sentence"),
    [
        (TradingState.HALTED, "Refused: the desk is halted, so nothing is traded until an admin resumes it"),
        (TradingState.REDUCE_ONLY, "Refused: the desk is reduce-only, so only trims and closes go through"),
    ],
)
async def test_brakes_put_on_after_the_preview_hold_at_confirm(desk: Desk, state: TradingState, sentence: str) -> None:
    opened = await preview(desk)
    position = await desk.open(qty=2)
    added = await desk.trader.slash(desk.channel, "add", position=position.position_id, qty=1)
    await desk.bot.desk.switch.set(state, "checking", "operator")
    before = unchanged(desk)

    refusals = [await desk.trader.click(asked.response, label="Confirm") for asked in (opened, added)]

    assert [r.response.content.split(" (/status")[0] for r in refusals] == [sentence, sentence]
    assert unchanged(desk) == before


async def test_an_add_confirmed_after_its_position_closed_is_refused(desk: Desk) -> None:
    position = await desk.open(qty=4, strategy="manual")
    asked = await desk.trader.slash(desk.channel, "add", position=position.position_id, qty=1)
    await desk.manager.close(position.position_id)
    await desk.deliver()
    before = unchanged(desk)

    refused = await desk.trader.click(asked.response, label="Confirm")

    assert refused.response.content == (f"Position {LABEL} ({position.position_id}) is closed; nothing to add to.")
    assert unchanged(desk) == before


ODD = [
    ({"limit": "1.234"}, "'1.234' is not a price (a positive amount in dollars and cents, such as 1.25)."),
    ({"limit": "$2"}, "'$2' is not a price (a positive amount in dollars and cents, such as 1.25)."),
    ({"limit": "0"}, "'0' is not a price (a positive amount in dollars and cents, such as 1.25)."),
    ({"limit": "NaN"}, "'NaN' is not a price (a positive amount in dollars and cents, such as 1.25)."),
    ({"limit": "1,5"}, "'1,5' is not a price (a positive amount in dollars and cents, such as 1.25)."),
    ({"strike": "600.5"}, "SPY 2026-11-27 600.5C is not listed; /chain SPY 2026-11-27 shows the strikes."),
    ({"strike": "sNaN"}, "'sNaN' is not a strike (a price such as 600 or 602.5)."),
    ({"strike": "-450"}, "'-450' is not a strike (a price such as 600 or 602.5)."),
    ({"strike": "1e999999999"}, "'1e999999999' is not a strike (a price such as 600 or 602.5)."),
    ({"expiry": "2026-11-28"}, "SPY has no expiry listed on 2026-11-28; /chain SPY shows them."),  # a Saturday
    ({"expiry": "2020-01-03"}, "SPY has no expiry listed on 2020-01-03; /chain SPY shows them."),
    ({"expiry": "9999-12-31"}, "SPY has no expiry listed on 9999-12-31; /chain SPY shows them."),
    ({"underlying": "@everyone"}, "'\\@everyone' is not an underlying the desk trades; it has SPY, QQQ."),
]


@pytest.mark.parametrize(("changes", "sentence"), ODD, ids=[str(c) for c, _ in ODD])
async def test_odd_input_is_one_sentence_and_changes_nothing(
    desk: Desk, changes: dict[str, Any], sentence: str
) -> None:
    before = unchanged(desk)

    refused = await preview(desk, **changes)

    assert_responded(refused, content=sentence, ephemeral=True)
    assert_error(desk.env, TradeError)
    assert unchanged(desk) == before


@pytest.mark.parametrize("changes", [{"underlying": " spy "}, {"strike": "450.00"}, {"strategy": "MANUAL"}])
async def test_what_a_trader_means_is_read_as_meant(desk: Desk, changes: dict[str, Any]) -> None:
    asked = await preview(desk, **changes)

    assert asked.response.embeds[0].title == f"Open: buy 3 {LABEL}"


async def test_todays_expiry_after_the_close_is_not_listed(desk: Desk) -> None:
    await desk.advance_to(datetime(2026, 11, 25, 21, 30, tzinfo=UTC))  # 16:30 New York

    opened = await preview(desk, expiry="2026-11-25")
    chain = await desk.trader.slash(desk.channel, "chain", underlying="SPY", expiry="2026-11-25")
    offered = await desk.trader.autocomplete(desk.channel, "open", "expiry", "", underlying="SPY")

    sentence = "SPY has no expiry listed on 2026-11-25; /chain SPY shows them."
    assert (opened.response.content, chain.response.content) == (sentence, sentence)
    assert_error(desk.env, TradeError)
    assert offered[0]["value"] == "2026-11-27"


async def test_autocomplete_with_junk_offers_nothing_and_never_fails(desk: Desk) -> None:
    asked = [
        ("expiry", "zz", {"underlying": "junk"}),
        ("strike", "", {"underlying": "SPY", "expiry": "junk"}),
        ("strike", "", {"underlying": "junk", "expiry": "2026-11-27"}),
        ("strike", "", {"underlying": "SPY", "expiry": "2026-11-28"}),
        ("strike", "abc", {"underlying": "SPY", "expiry": "2026-11-27"}),
        ("strategy", "zz", {}),
        ("underlying", "zz", {}),
    ]

    offered = [await desk.trader.autocomplete(desk.channel, "open", name, typed, **ns) for name, typed, ns in asked]
    lower = await desk.trader.autocomplete(desk.channel, "open", "expiry", "", underlying="spy")

    assert offered == [[]] * len(asked)
    assert lower and lower[0]["value"] == "2026-11-25"


class SlowChain:
    """A chain source as slow as Alpaca's can be (the listed contracts, then their snapshots, for each expiry): it
    answers only when the test lets it."""

    def __init__(self, inner: Any, desk: Desk) -> None:
        self.inner, self.desk, self.answer = inner, desk, asyncio.Event()

    def underlyings(self) -> list[str]:
        return self.inner.underlyings()  # type: ignore[no-any-return]

    async def expiries(self, underlying: str, today: Any) -> Any:
        await self.desk.env.external_wait(self.answer.wait(), reason="a chain that takes 5 s")
        return await self.inner.expiries(underlying, today)

    async def chain(self, underlying: str, expiry: Any, **kwargs: Any) -> Any:
        await self.desk.env.external_wait(self.answer.wait(), reason="a chain that takes 5 s")
        return await self.inner.chain(underlying, expiry, **kwargs)


@pytest.mark.parametrize("command", ["chain", "open"])
async def test_a_chain_slower_than_discords_three_seconds_is_still_answered(desk: Desk, command: str) -> None:
    slow = SlowChain(desk.bot.desk.chain, desk)
    desk.bot.desk.chain = slow
    desk.quote(SPY, "1.00", "1.10")
    asked = {"underlying": "SPY"} if command == "chain" else OPEN

    result = await desk.trader.slash(desk.channel, command, **asked)
    acknowledged = result.deferred  # answered at once: Discord waits 3 s for a first answer
    await desk.env.advance_time(5)
    slow.answer.set()
    await desk.env.settle()

    assert acknowledged
    assert result.response is not None and result.response.ephemeral
    title = result.response.embeds[0].title
    assert title == ("SPY option chain" if command == "chain" else f"Open: buy 3 {LABEL}")


async def test_a_listed_strike_far_from_the_money_is_offered_as_it_is_typed(desk: Desk) -> None:
    # SPY is near 716; 450 is listed (within half the price) and /open takes it: typing it must offer it.
    where = {"underlying": "SPY", "expiry": "2026-11-27", "right": "call"}
    desk.quote(SPY, "1.00", "1.10")

    offered = {
        typed: [c["value"] for c in await desk.trader.autocomplete(desk.channel, "open", "strike", typed, **where)]
        for typed in ("450", "450.0", "71", "1e999", "abc")
    }
    named = await desk.trader.autocomplete(desk.channel, "open", "strike", "450", **where)

    assert offered["450"] == offered["450.0"] == ["450"]
    assert named[0]["name"] == "450 (call 1.00/1.10)"
    assert offered["71"] and all(v.startswith("71") for v in offered["71"])
    assert offered["1e999"] == offered["abc"] == []
