"""/open at the wire level, the real discord.py client against our fake Discord: a preview sends nothing, and two
Confirms of one preview (a double click, or a press sent twice) open one position, with one ledger line and one
message."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.options.contracts import OptionContract, Right
from bot.options.market_hours import MARKET_TZ, next_trading_day
from tests.discord.fake_discord import EPHEMERAL, FakeInteraction, FakeMessage
from tests.discord.wire import CHANNEL_ID, GUILD_ID, ON_VIRTUAL_TIME, TRADER_ID, TRADER_ROLE_ID, desk_on_fake

pytestmark = ON_VIRTUAL_TIME


def button(preview: FakeMessage, label: str) -> str:
    return next(b["custom_id"] for row in preview.components for b in row["components"] if b["label"] == label)


async def preview_of(asked: FakeInteraction) -> FakeMessage:
    """/open answers at once (the contract is looked up in the chain, at a broker a few requests), ephemeral, and
    then shows its preview."""
    answer = await asked.response()
    assert answer["type"] == 5 and answer["data"]["flags"] & EPHEMERAL
    [preview] = await asked.wait_followups(1)
    return preview


async def test_two_confirms_of_one_preview_open_one_position(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    async with desk_on_fake(monkeypatch, tmp_path) as wire:
        fake, manager = wire.fake, wire.bot.desk.manager
        expiry = next_trading_day(datetime.now(MARKET_TZ).date() + timedelta(days=7))  # listed whenever this runs
        wire.quote(OptionContract("SPY", expiry, Right.CALL, Decimal(600)), "2.00", "2.10")
        options = {"underlying": "SPY", "expiry": expiry.isoformat(), "strike": "600", "right": "call", "qty": 2}

        asked = await fake.send_slash(GUILD_ID, CHANNEL_ID, TRADER_ID, "open", options)
        preview = await preview_of(asked)
        title = preview.embeds[0]["title"]  # the preview is replaced by the outcome below
        previewed = (wire.ledger_bytes(), len(wire.position_messages()), dict(manager.orders))
        confirm = button(preview, "Confirm")
        first = await fake.click(GUILD_ID, CHANNEL_ID, TRADER_ID, preview.id, confirm)
        second = await fake.click(GUILD_ID, CHANNEL_ID, TRADER_ID, preview.id, confirm)
        acks = [await first.response(), await second.response()]
        await fake.wait_for(lambda: len(fake.requests_of("original")) == 2, 5.0, "no answer to a Confirm")
        await wire.deliver()

        assert preview.ephemeral
        assert title == f"Open: buy 2 SPY {expiry.isoformat()} 600C"
        assert previewed == (b"", 0, {})
        # Each Confirm is acknowledged at once (an order may take longer than Discord's 3 s), then says its outcome
        # in place of the preview, leaving no Confirm to press.
        assert [ack["type"] for ack in acks] == [6, 6]
        answers = [request.json for request in fake.requests_of("original")]
        contents = sorted(answer["content"] for answer in answers)
        assert contents[0].startswith(f"Bought 2 SPY {expiry.isoformat()} 600C @ 2.1")
        assert contents[1] == (
            "This preview was already confirmed or cancelled (or the bot restarted); nothing more was sent."
        )
        [line] = wire.ledger_lines()
        assert (line["source"], line["actor"], line["strategy"]) == ("manual", f"discord:{TRADER_ID}", "manual")
        assert [p.position_id for p in manager.all_positions()] == [line["position_id"]]
        assert len(wire.messages_of(line["position_id"])) == 1
        assert all(answer["components"] == [] and answer["embeds"] == [] for answer in answers)


async def test_another_traders_press_on_a_preview_is_refused_and_leaves_it_to_its_owner(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Discord shows an ephemeral preview to its owner only; a custom id can still be sent by anyone.
    other = TRADER_ID + 100

    def second_trader(fake: Any) -> None:
        fake.add_member(GUILD_ID, other, "otto", roles=[TRADER_ROLE_ID])

    async with desk_on_fake(monkeypatch, tmp_path, world=second_trader) as wire:
        fake = wire.fake
        expiry = next_trading_day(datetime.now(MARKET_TZ).date() + timedelta(days=7))
        wire.quote(OptionContract("SPY", expiry, Right.CALL, Decimal(600)), "2.00", "2.10")
        options = {"underlying": "SPY", "expiry": expiry.isoformat(), "strike": "600", "right": "call", "qty": 2}
        asked = await fake.send_slash(GUILD_ID, CHANNEL_ID, TRADER_ID, "open", options)
        preview = await preview_of(asked)
        message = preview.id

        cancelled = await fake.click(GUILD_ID, CHANNEL_ID, other, message, button(preview, "Cancel"))
        cancel_answer = await cancelled.response()
        pressed = await fake.click(GUILD_ID, CHANNEL_ID, other, message, button(preview, "Confirm"))
        refused = ((await pressed.response())["data"]["content"], wire.ledger_bytes())
        mine = await fake.click(GUILD_ID, CHANNEL_ID, TRADER_ID, message, button(preview, "Confirm"))
        await mine.response()
        await fake.wait_for(lambda: fake.requests_of("original"), 5.0, "no answer to the owner's Confirm")

        elsewhere = "This preview is someone else's; ask for your own with /open or /add."
        assert (cancel_answer["type"], cancel_answer["data"]["content"]) == (4, elsewhere)  # a new message of its own
        assert refused == (elsewhere, b"")
        assert fake.requests_of("original")[-1].json["content"].startswith(f"Bought 2 SPY {expiry.isoformat()} 600C")
        [line] = wire.ledger_lines()
        assert line["actor"] == f"discord:{TRADER_ID}"
