"""A restart mid-day: the bot finds each position's message from storage and edits it, never a duplicate."""

from __future__ import annotations

from datetime import timedelta

import discord
import pytest

from bot.options.errors import OrderRejected
from tests.discord.conftest import NOW, QQQ, SPY, Desk, fields_of


async def test_after_a_restart_the_next_trade_edits_the_existing_message(desk: Desk) -> None:
    # Arrange: two positions with delivered messages.
    desk.quote(QQQ, "2.00", "2.10")
    spy = await desk.open(qty=10)
    qqq = await desk.open(QQQ, 2)
    await desk.manager.trim(spy.position_id, qty=3)
    await desk.deliver()
    spy_message, qqq_message = desk.message_of(spy.position_id), desk.message_of(qqq.position_id)
    edits_before = len(desk.edits(spy_message))

    # Act
    await desk.restart()
    await desk.deliver()
    edits_at_start = len(desk.edits(spy_message)) + len(desk.edits(qqq_message))
    await desk.manager.trim(spy.position_id, qty=2)
    await desk.deliver()

    # Assert
    assert edits_at_start == edits_before  # nothing was out of date: nothing re-sent at start
    assert len(desk.posts()) == 2
    assert len(desk.edits(spy_message)) == edits_before + 1
    assert sorted(m.id for m in desk.messages()) == sorted([spy_message.id, qqq_message.id])
    embed = desk.message_of(spy.position_id).embeds[0]
    assert fields_of(embed)["Open"] == "5"
    assert [line.split()[1:3] for line in fields_of(embed)["History"].splitlines()] == [
        ["open", "10"],
        ["trim", "3"],
        ["trim", "2"],
    ]


async def test_an_update_that_failed_before_the_restart_is_delivered_at_start(desk: Desk) -> None:
    # Arrange: the trim's edit fails (Discord answers 503), then the bot stops.
    position = await desk.open(qty=10)
    message = desk.message_of(position.position_id)
    desk.env.inject_error("PATCH", f"/channels/{desk.channel.id}/messages/*", status=503, times=1)
    await desk.manager.trim(position.position_id, qty=4)
    await desk.deliver()
    shown_before_restart = fields_of(desk.message_of(position.position_id).embeds[0])["Open"]
    failed_edits = len(desk.edits(message))

    # Act
    await desk.restart()
    await desk.deliver()

    # Assert
    assert (shown_before_restart, failed_edits) == ("10", 1)
    assert len(desk.edits(message)) == 2
    assert fields_of(desk.message_of(position.position_id).embeds[0])["Open"] == "6"
    assert desk.posted(position.position_id).event_id == desk.ledger_lines()[-1]["event_id"]
    assert len(desk.posts()) == 1


async def test_an_update_never_flushed_before_the_restart_is_delivered_at_start(desk: Desk) -> None:
    # Arrange: the close is in the ledger, its message update still queued when the bot stops.
    position = await desk.open(qty=3)
    message = desk.message_of(position.position_id)
    await desk.manager.close(position.position_id)

    # Act
    await desk.restart()
    await desk.deliver()

    # Assert
    closed = desk.message_of(position.position_id)
    assert closed.id == message.id
    assert closed.embeds[0].description == "**CLOSED** · orb"
    assert closed.components == []
    assert len(desk.posts()) == 1


async def test_a_clean_stop_delivers_the_queued_updates_first(desk: Desk) -> None:
    # Arrange: the close is in the ledger, its message update still queued when the bot is told to stop.
    position = await desk.open(qty=3)
    message = desk.message_of(position.position_id)
    await desk.manager.close(position.position_id)

    # Act: SIGTERM closes the bot
    await desk.bot.close()

    # Assert: the message shows the close, with no buttons left to press
    closed = desk.message_of(position.position_id)
    assert closed.id == message.id
    assert closed.embeds[0].description == "**CLOSED** · orb"
    assert closed.components == []


async def test_a_message_deleted_by_a_moderator_is_posted_anew(desk: Desk) -> None:
    # Arrange
    position = await desk.open(qty=10)
    deleted = desk.message_of(position.position_id)
    await desk.moderator.delete(deleted)

    # Act
    await desk.manager.trim(position.position_id, qty=1)
    await desk.deliver()

    # Assert
    fresh = desk.message_of(position.position_id)
    assert fresh.id != deleted.id
    assert [m.id for m in desk.messages()] == [fresh.id]
    assert desk.posted(position.position_id).event_id == desk.ledger_lines()[-1]["event_id"]
    assert fields_of(fresh.embeds[0])["Open"] == "9"


async def test_a_message_deleted_while_the_bot_was_down_is_posted_anew_after_the_restart(desk: Desk) -> None:
    # Arrange
    position = await desk.open(qty=10)
    deleted = desk.message_of(position.position_id)
    await desk.restart()
    await desk.moderator.delete(deleted)

    # Act
    await desk.manager.trim(position.position_id, qty=2)
    await desk.deliver()

    # Assert
    fresh = desk.message_of(position.position_id)
    assert fresh.id != deleted.id
    assert [m.id for m in desk.messages()] == [fresh.id]
    assert fields_of(fresh.embeds[0])["Open"] == "8"
    ask = await desk.trader.click(fresh, label="Close")
    assert ask.ephemeral and ask.response is not None and ask.response.content.startswith("Close position")


async def test_the_bot_never_posts_to_another_channel(desk: Desk) -> None:
    position = await desk.open(qty=2)
    await desk.restart()
    await desk.manager.close(position.position_id)
    await desk.deliver()

    assert desk.other_channel.history() == []
    assert all(isinstance(m.channel, discord.TextChannel) for m in desk.messages())


async def test_a_start_without_a_message_map_posts_nothing_for_earlier_days(desk: Desk) -> None:
    # Arrange: yesterday one position was closed and one left open; the map is gone (a first start with
    # Discord on a ledger written offline, or a lost file).
    closed = await desk.open(qty=2)
    await desk.manager.close(closed.position_id)
    still_open = await desk.open(qty=3)
    await desk.deliver()
    (desk.storage / "message_ids.json").unlink()
    await desk.advance_to(NOW + timedelta(days=1))

    # Act
    await desk.restart()
    await desk.deliver()
    posts_at_start = len(desk.posts())
    await desk.manager.trim(still_open.position_id, qty=1)
    await desk.deliver()

    # Assert: yesterday's messages stay as they were; the open position gets today's message on its update.
    assert posts_at_start == 2
    assert len(desk.posts()) == 3
    assert desk.posted(closed.position_id) is None
    assert fields_of(desk.message_of(still_open.position_id).embeds[0])["Open"] == "2"


async def test_an_order_note_does_not_make_the_message_look_out_of_date(desk: Desk) -> None:
    # Arrange: a refused trim shows why on the message.
    position = await desk.open(qty=2)
    desk.quote(SPY, "0", "0")
    with pytest.raises(OrderRejected):
        await desk.manager.trim(position.position_id, qty=1)
    await desk.deliver()
    message = desk.message_of(position.position_id)

    # Act
    await desk.restart()
    await desk.deliver()

    # Assert: the map still knows the message shows the last fill, so a restart leaves it (and its note) alone.
    assert desk.posted(position.position_id).event_id == desk.ledger_lines()[-1]["event_id"]
    assert len(desk.edits(message)) == 1
    assert "No usable quote" in fields_of(desk.message_of(position.position_id).embeds[0])["Order"]


async def test_what_start_up_repaired_is_told_to_the_admin_channel(desk: Desk) -> None:
    admins = desk.guild.create_text_channel("desk-admins")
    position = await desk.open()
    desk.use_settings(admin_channel_id=admins.id)
    for suffix in ("", "-wal", "-shm"):  # the state store is lost while the bot is down
        (desk.storage / f"state.sqlite3{suffix}").unlink(missing_ok=True)

    await desk.restart()
    await desk.env.settle()

    [notice] = [m for m in admins.history() if m.author.id == desk.bot.user.id]
    store = desk.storage / "state.sqlite3"
    assert notice.content.startswith(f"optiondesk restarted: the state store {store} was missing or empty")
    assert "the trailing highs of 1 open position(s) start again from the next quote" in notice.content
    assert desk.manager.get(position.position_id).qty == position.qty
