"""The Discord message sink: one message per position per day, posted on its first event, then edited.

It finds a position's message through the message map (so a restart edits instead of posting again),
posts anew if the message was deleted, never pings anyone, and follows the per-kind noise setting:
notify, silent (no push notification) or off (no update for that kind of event).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

import discord

from bot.options.trade_ledger import TradeEvent
from bot.runtime.message_map import MessageMap, PostedMessage
from bot.runtime.position_embed import NO_MENTIONS, position_embed
from bot.runtime.position_view import PositionView
from bot.settings import DiscordSettings

if TYPE_CHECKING:
    from bot.options.positions import Position

log = logging.getLogger(__name__)

ButtonsFor = Callable[["Position"], discord.ui.View | None]


class DiscordSink:
    """Settings are read at each delivery, so a changed trade channel or noise setting counts at once."""

    def __init__(
        self,
        client: discord.Client,
        settings: Callable[[], DiscordSettings],
        message_map: MessageMap,
        buttons_for: ButtonsFor,
    ) -> None:
        self._client = client
        self._settings = settings
        self._map = message_map
        self._buttons_for = buttons_for

    async def show(self, view: PositionView) -> None:
        settings = self._settings()
        channel_id = settings.trade_channel_id
        assert channel_id is not None, "checked at start-up"
        position = view.position
        posted = self._map.get(position.position_id)
        if posted is not None and posted.event_id == view.event_id and not view.status_note:
            return  # already shows this state (a restart found it delivered after all)
        last = view.last_action
        mode = settings.notify.get(last.kind, "notify") if last else "notify"
        now = discord.utils.utcnow().isoformat()
        if mode == "off" and not view.status_note:
            # Nothing to show for this kind of event; remember it as handled so a restart does not post it.
            handled = replace(posted, event_id=view.event_id) if posted else None
            self._map.set(position.position_id, handled or PostedMessage(channel_id, None, view.event_id, now))
            return
        # An order note comes without an event when the message already shows the position's last one.
        shown_event = view.event_id or (posted.event_id if posted else None)
        channel = self._client.get_partial_messageable(posted.channel_id if posted else channel_id)
        embed = position_embed(view)
        buttons = self._buttons_for(position)
        if posted is not None and posted.message_id is not None:
            try:
                await channel.get_partial_message(posted.message_id).edit(
                    embed=embed, view=buttons, allowed_mentions=NO_MENTIONS
                )
            except discord.NotFound:
                log.info("the message of position %s was deleted; posting a new one", position.position_id)
            else:
                self._map.set(position.position_id, replace(posted, event_id=shown_event))
                return
        message = await channel.send(
            embed=embed,
            view=buttons or discord.utils.MISSING,
            allowed_mentions=NO_MENTIONS,
            silent=mode == "silent",
        )
        self._map.set(position.position_id, PostedMessage(channel.id, message.id, shown_event, now))


def out_of_date(events: list[TradeEvent], message_map: MessageMap, since: datetime | None = None) -> dict[str, str]:
    """Positions whose message does not show their last event, with that event: a restart's backlog.

    Only events after the last reset count, and after `since` (the latest end-of-day reset time): an
    earlier day's positions get no message now, even when the map was never reset (a first start on a
    ledger with history, or a lost map).
    """
    floors = [t for t in (message_map.reset_at, since) if t is not None]
    floor = max(floors) if floors else None
    last_event: dict[str, str] = {}
    for event in events:
        if floor is None or event.ts > floor:
            last_event[event.position_id] = event.event_id
    return {
        position_id: event_id
        for position_id, event_id in last_event.items()
        if (posted := message_map.get(position_id)) is None or posted.event_id != event_id
    }
