"""One Discord message per position: posted on its first fill, edited on every later one, after the ledger."""

from __future__ import annotations

from typing import Any

import discord
import pytest

from bot.discord.embeds import EMBED_LIMIT, FIELD_LIMIT
from bot.options.errors import OrderRejected
from bot.options.positions import ActionKind
from tests.discord.conftest import QQQ, SPY, Desk, button_ids, fields_of

SUPPRESS_NOTIFICATIONS = 1 << 12
NOTIFY_ALL = {kind: "notify" for kind in ActionKind}


async def test_a_strategy_open_posts_one_message_and_later_fills_edit_it(desk: Desk) -> None:
    # Arrange / Act: open, then add, trim and close, each delivered.
    position = await desk.open(qty=10)
    [message] = desk.messages()
    pid = position.position_id
    edits_seen = []
    for act in (
        lambda: desk.manager.add(pid, 2),
        lambda: desk.manager.trim(pid, qty=4),
        lambda: desk.manager.close(pid),
    ):
        await act()
        await desk.deliver()
        edits_seen.append(len(desk.edits(message)))

    # Assert
    assert len(desk.posts()) == 1
    assert edits_seen == [1, 2, 3]
    assert [m.id for m in desk.messages()] == [message.id]
    posted = desk.posted(pid)
    assert posted is not None and (posted.channel_id, posted.message_id) == (desk.channel.id, message.id)
    assert posted.event_id == desk.ledger_lines()[-1]["event_id"]
    history = fields_of(desk.message_of(pid).embeds[0])["History"].splitlines()
    assert [line.split()[1] for line in history] == ["open", "add", "trim", "close"]


async def test_two_positions_get_two_messages(desk: Desk) -> None:
    desk.quote(QQQ, "2.00", "2.10")

    spy = await desk.open(SPY, 1)
    qqq = await desk.open(QQQ, 1)

    assert len(desk.messages()) == 2
    assert desk.message_of(spy.position_id).id != desk.message_of(qqq.position_id).id


async def test_the_ledger_line_is_on_disk_before_the_discord_call(desk: Desk, monkeypatch: pytest.MonkeyPatch) -> None:
    # Arrange: note what the ledger file holds at the moment of every message request.
    calls: list[tuple[str, dict[str, Any], list[dict[str, Any]]]] = []
    request = desk.bot.http.request

    async def spy(route: discord.http.Route, **kwargs: Any) -> Any:
        if route.url.split("?")[0].split("/api/v10")[-1].startswith(f"/channels/{desk.channel.id}/messages"):
            calls.append((route.method, kwargs["json"]["embeds"][0], desk.ledger_lines()))
        return await request(route, **kwargs)

    monkeypatch.setattr(desk.bot.http, "request", spy)

    # Act
    position = await desk.open(qty=6)
    await desk.manager.trim(position.position_id, qty=2)
    await desk.deliver()
    await desk.manager.close(position.position_id)
    await desk.deliver()

    # Assert: each call shows the last line that was already on disk when it was made.
    assert [method for method, _, _ in calls] == ["POST", "PATCH", "PATCH"]
    for _, embed, ledger in calls:
        shown = {f["name"]: f["value"] for f in embed["fields"]}
        mine = [line for line in ledger if line["position_id"] == position.position_id]
        assert len(shown["History"].splitlines()) == len(mine)
        assert shown["Open"] == str(mine[-1]["position_qty"])


async def test_the_message_shows_contract_status_quantities_and_pnl(desk: Desk) -> None:
    # Arrange: buy 10 at 1.10, add 5 at 1.20, sell 5 at 1.30 (fees 0.65 a contract).
    position = await desk.open(qty=10)
    desk.quote(SPY, "1.10", "1.20")
    await desk.manager.add(position.position_id, 5)
    desk.quote(SPY, "1.30", "1.40")
    await desk.manager.trim(position.position_id, qty=5)

    # Act
    await desk.deliver()

    # Assert
    [embed] = desk.message_of(position.position_id).embeds
    assert embed.title == "SPY 2026-11-27 450C"
    assert embed.description == "**OPEN** · orb"
    assert position.position_id in (embed.footer.text or "")
    assert fields_of(embed) == {
        "Contract": "SPY 450 call, expires 2026-11-27",
        "Open": "10",
        "Avg entry": "1.1333",
        # (1.30 - 1.1333) * 5 * 100 - 3.25 on the trim, less 9.75 of fees on the buys; cost 1,700
        "Realized P&L": "+70.33 (+4.1%)",
        "Unrealized P&L": "+216.67 at 1.35",  # (mid 1.35 - 1.1333) * 10 * 100
        "Last fill": "10:00 trim 5 @ 1.30 (orb)",
        "History": "10:00 open 10 @ 1.10 (orb)\n10:00 add 5 @ 1.20 (orb)\n10:00 trim 5 @ 1.30 (orb)",
    }


async def test_a_manual_action_shows_the_member_without_pinging(desk: Desk) -> None:
    position = await desk.open(qty=2)

    await desk.trader.slash(desk.channel, "trim", position=position.position_id, qty=1)
    await desk.deliver()

    last_fill = fields_of(desk.message_of(position.position_id).embeds[0])["Last fill"]
    assert last_fill.endswith(f"(<@{desk.trader.id}>)")
    sent = [*desk.posts(), *desk.edits(desk.message_of(position.position_id))]
    assert [r.json["allowed_mentions"] for r in sent] == [{"parse": []}, {"parse": []}]
    replies = [r for r in desk.env.http_requests if r.path.startswith("/interactions/")]
    assert replies and all(r.json["data"]["allowed_mentions"] == {"parse": []} for r in replies)


async def test_an_open_position_has_buttons_and_a_closed_one_has_none(desk: Desk) -> None:
    # Arrange
    position = await desk.open(qty=2)
    pid = position.position_id
    buttons_while_open = button_ids(desk.message_of(pid))

    # Act
    await desk.manager.close(pid)
    await desk.deliver()

    # Assert
    assert buttons_while_open == [f"pos:trim:25:{pid}", f"pos:trim:50:{pid}", f"pos:close:{pid}", f"pos:add:{pid}"]
    closed = desk.message_of(pid)
    assert closed.components == []
    assert desk.edits(closed)[-1].json["components"] == []
    assert closed.embeds[0].description == "**CLOSED** · orb"
    assert "Unrealized P&L" not in fields_of(closed.embeds[0])


async def test_colours_differ_by_state(desk: Desk) -> None:
    # Arrange: one winner, one loser, one open position with a rejected order.
    desk.quote(QQQ, "2.00", "2.10")
    winner, loser, refused = await desk.open(SPY, 1), await desk.open(QQQ, 1), await desk.open(SPY, 1)
    open_colour = desk.message_of(refused.position_id).embeds[0].colour
    desk.quote(SPY, "2.00", "2.10")
    desk.quote(QQQ, "1.00", "1.10")
    await desk.manager.close(winner.position_id)
    await desk.manager.close(loser.position_id)
    desk.quote(SPY, "0", "0")
    with pytest.raises(OrderRejected):
        await desk.manager.trim(refused.position_id, qty=1)

    # Act
    await desk.deliver()

    # Assert
    def colour(position_id: str) -> discord.Colour | None:
        return desk.message_of(position_id).embeds[0].colour

    assert open_colour == discord.Colour.blue()
    assert colour(winner.position_id) == discord.Colour.green()
    assert colour(loser.position_id) == discord.Colour.red()
    assert colour(refused.position_id) == discord.Colour.gold()
    assert fields_of(desk.message_of(refused.position_id).embeds[0])["Order"] == (
        "sell 1 rejected: No usable quote for SPY 2026-11-27 450C; the order was not sent."
    )


async def test_the_next_fill_clears_an_order_note(desk: Desk) -> None:
    position = await desk.open(qty=2)
    desk.quote(SPY, "0", "0")
    with pytest.raises(OrderRejected):
        await desk.manager.trim(position.position_id, qty=1)
    await desk.deliver()
    desk.quote(SPY, "1.00", "1.10")

    await desk.manager.trim(position.position_id, qty=1)
    await desk.deliver()

    embed = desk.message_of(position.position_id).embeds[0]
    assert "Order" not in fields_of(embed)
    assert embed.colour == discord.Colour.blue()
    assert len(desk.messages()) == 1


async def test_a_long_history_stays_within_discord_limits(desk: Desk) -> None:
    position = await desk.open(qty=50)  # 90 contracts in two orders: one order holds at most 50 (risk limit)
    await desk.manager.add(position.position_id, 40)
    for _ in range(80):
        await desk.manager.trim(position.position_id, qty=1)

    await desk.deliver()

    embed = desk.message_of(position.position_id).embeds[0]
    history = fields_of(embed)["History"]
    assert len(embed) <= EMBED_LIMIT
    assert len(history) <= FIELD_LIMIT
    assert history.startswith("… ")
    assert "earlier actions (1 open, " in history.splitlines()[0]
    assert history.splitlines()[-1].endswith("trim 1 @ 1.00 (orb)")


async def test_notify_posts_with_a_push_and_silent_posts_without(desk: Desk) -> None:
    # Arrange
    loud = await desk.open(SPY, 1)
    desk.use_settings(notify={**NOTIFY_ALL, ActionKind.OPEN: "silent"})

    # Act
    quiet = await desk.open(SPY, 1)

    # Assert
    assert not desk.message_of(loud.position_id).flags.suppress_notifications
    assert desk.message_of(quiet.position_id).flags.suppress_notifications
    assert [(r.json.get("flags") or 0) & SUPPRESS_NOTIFICATIONS for r in desk.posts()] == [0, SUPPRESS_NOTIFICATIONS]


async def test_off_for_adds_leaves_the_message_as_it_was(desk: Desk) -> None:
    # Arrange
    desk.use_settings(notify={**NOTIFY_ALL, ActionKind.ADD: "off"})
    position = await desk.open(qty=2)
    message = desk.message_of(position.position_id)

    # Act
    await desk.manager.add(position.position_id, 3)
    await desk.deliver()
    edits_after_add = len(desk.edits(message))
    await desk.manager.trim(position.position_id, qty=1)
    await desk.deliver()

    # Assert: nothing for the add; the trim's edit shows everything.
    assert edits_after_add == 0
    assert len(desk.edits(message)) == 1
    assert fields_of(desk.message_of(position.position_id).embeds[0])["Open"] == "4"


async def test_off_for_opens_posts_nothing_until_a_kind_that_notifies(desk: Desk) -> None:
    # Arrange
    desk.use_settings(notify={**NOTIFY_ALL, ActionKind.OPEN: "off"})

    # Act
    position = await desk.open(qty=2)
    after_open = desk.messages()
    await desk.manager.trim(position.position_id, qty=1)
    await desk.deliver()

    # Assert
    assert after_open == []
    assert len(desk.posts()) == 1
    history = fields_of(desk.message_of(position.position_id).embeds[0])["History"].splitlines()
    assert [line.split()[1] for line in history] == ["open", "trim"]
