"""Trim 25% / Trim 50% / Close on a position's message: an ephemeral Confirm first, rights checked twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from simcord import assert_responded

from bot.options.execution_paper import PaperExecutor
from bot.options.orders import Fill, OrderRequest
from tests.discord.conftest import GUILD_ID, SPY, Desk, fields_of


async def test_trim_asks_first_and_confirm_sells(desk: Desk) -> None:
    # Arrange
    position = await desk.open(qty=10)
    pid = position.position_id
    ledger_before = desk.ledger_bytes()
    desk.quote(SPY, "1.20", "1.30")

    # Act
    ask = await desk.trader.click(desk.message_of(pid), label="Trim 25%")
    question, asked_ledger = ask.response, desk.ledger_bytes()
    assert question is not None
    question_text, question_buttons = question.content, question.components
    done = await desk.trader.click(question, label="Confirm")
    await desk.deliver()

    # Assert
    assert (question_text, question.ephemeral) == (f"Sell 25% of position `{pid}`?", True)
    assert [c["label"] for row in question_buttons for c in row["components"]] == ["Confirm", "Cancel"]
    assert asked_ledger == ledger_before
    assert done.response.id == ask.response.id  # the question is replaced by the result
    assert done.response.content.startswith("Sold 2 SPY 2026-11-27 450C @ 1.20")
    assert done.response.components == []
    assert desk.manager.get(pid).qty == 8
    last = desk.ledger_lines()[-1]
    assert (last["kind"], last["qty"], last["actor"]) == ("trim", 2, f"discord:{desk.trader.id}")
    assert fields_of(desk.message_of(pid).embeds[0])["Open"] == "8"
    assert len(desk.messages()) == 1


async def test_cancel_changes_nothing(desk: Desk) -> None:
    position = await desk.open(qty=10)
    ledger_before = desk.ledger_bytes()

    ask = await desk.trader.click(desk.message_of(position.position_id), label="Trim 50%")
    cancelled = await desk.trader.click(ask.response, label="Cancel")
    await desk.deliver()

    assert_responded(cancelled, content="Cancelled; nothing was sold.", ephemeral=True)
    assert cancelled.response.components == []
    assert desk.ledger_bytes() == ledger_before
    assert desk.manager.get(position.position_id).qty == 10
    assert desk.edits(desk.message_of(position.position_id)) == []


async def test_close_asks_first_and_confirm_closes(desk: Desk) -> None:
    position = await desk.open(qty=3)
    pid = position.position_id

    ask = await desk.trader.click(desk.message_of(pid), label="Close")
    assert_responded(ask, content=f"Close position `{pid}` (sell everything)?", ephemeral=True)
    done = await desk.trader.click(ask.response, label="Confirm")
    await desk.deliver()

    assert done.response.content.endswith("position closed.")
    assert not desk.manager.get(pid).is_open
    assert desk.ledger_lines()[-1]["kind"] == "close"
    assert desk.message_of(pid).components == []


async def test_a_member_without_the_role_cannot_press(desk: Desk) -> None:
    position = await desk.open(qty=10)
    ledger_before = desk.ledger_bytes()

    for label in ("Trim 25%", "Trim 50%", "Close"):
        refused = await desk.nobody.click(desk.message_of(position.position_id), label=label)

        assert_responded(refused, content="You need a trader role to use optiondesk.", ephemeral=True)
        assert refused.response.components == []  # no Confirm to press
    assert desk.ledger_bytes() == ledger_before


async def test_a_role_removed_before_confirm_is_refused_at_confirm(desk: Desk) -> None:
    # Arrange
    position = await desk.open(qty=10)
    ledger_before = desk.ledger_bytes()
    ask = await desk.trader.click(desk.message_of(position.position_id), label="Close")
    desk.env.backend.remove_member_role(GUILD_ID, desk.trader.id, desk.trader_role.id)
    await desk.env.settle()

    # Act
    refused = await desk.trader.click(ask.response, label="Confirm")

    # Assert
    assert refused.response.ephemeral
    assert [m.content for m in refused.followups] + [refused.response.content] == [
        "You need a trader role to use optiondesk."
    ]
    # The refusal replaced the question: no Confirm / Cancel is left behind to press again.
    assert refused.response.id == ask.response.id
    assert refused.response.components == []
    assert desk.ledger_bytes() == ledger_before
    assert desk.manager.get(position.position_id).is_open


async def test_confirming_after_the_position_was_closed_elsewhere_is_refused(desk: Desk) -> None:
    position = await desk.open(qty=10)
    ask = await desk.trader.click(desk.message_of(position.position_id), label="Trim 50%")
    await desk.admin.slash(desk.channel, "close", position=position.position_id)
    ledger_before = desk.ledger_bytes()

    refused = await desk.trader.click(ask.response, label="Confirm")

    assert refused.response.ephemeral
    assert "is already closed" in refused.response.content
    assert (refused.response.id, refused.response.components) == (ask.response.id, [])
    assert desk.ledger_bytes() == ledger_before


async def test_buttons_keep_working_after_a_restart(desk: Desk) -> None:
    # Arrange: the message was posted by the bot before the restart.
    position = await desk.open(qty=10)
    message = desk.message_of(position.position_id)
    await desk.restart()

    # Act
    ask = await desk.trader.click(message, label="Trim 50%")
    assert_responded(ask, content=f"Sell 50% of position `{position.position_id}`?", ephemeral=True)
    done = await desk.trader.click(ask.response, label="Confirm")
    await desk.deliver()

    # Assert
    assert done.response.content.endswith("5 left open.")
    assert desk.manager.get(position.position_id).qty == 5
    assert desk.ledger_lines()[-1]["actor"] == f"discord:{desk.trader.id}"
    assert [m.id for m in desk.messages()] == [message.id]
    assert fields_of(desk.message_of(position.position_id).embeds[0])["Open"] == "5"


async def test_an_order_slower_than_discords_three_seconds_is_still_answered(desk: Desk, monkeypatch) -> None:
    position = await desk.open(qty=10)
    pid = position.position_id
    desk.quote(SPY, "1.20", "1.30")
    execute, answered = PaperExecutor.execute, asyncio.Event()

    async def slow(self: PaperExecutor, order: OrderRequest) -> AsyncIterator[Fill]:
        await desk.env.external_wait(answered.wait(), reason="a broker that takes 5 s")
        async for fill in execute(self, order):
            yield fill

    monkeypatch.setattr(PaperExecutor, "execute", slow)
    ask = await desk.trader.click(desk.message_of(pid), label="Trim 50%")
    await desk.trader.click(ask.response, label="Confirm")
    await desk.env.advance_time(5)  # past the 3 s Discord gives a button's first answer
    answered.set()
    await desk.deliver()

    assert desk.manager.get(pid).qty == 5
    [answer] = [r.json for r in desk.env.http_requests if r.method == "PATCH" and r.path.endswith("/@original")]
    assert answer["content"].startswith("Sold 5 SPY 2026-11-27 450C @ 1.20")
    assert answer["components"] == []
