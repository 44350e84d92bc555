"""The trade channel as a message board: positions' messages posted and edited through Discord's API.

Messages never ping anyone. After an interrupted post the message is found again in the channel's recent
history by the position id in its footer (among the messages no older than the post), so a restart never posts
it twice.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import discord

from bot.options.positions import Position
from bot.runtime.message_board import MessageGone
from bot.runtime.position_embed import NO_MENTIONS, position_embed
from bot.runtime.position_view import PositionView

ButtonsFor = Callable[[Position], discord.ui.View | None]
FIND_IN_LAST = 100  # messages searched for an interrupted post


class DiscordBoard:
    """Reads the trade channel from the settings at each call, so a changed channel counts at once."""

    def __init__(self, client: discord.Client, channel_id: Callable[[], int], buttons_for: ButtonsFor) -> None:
        self._client = client
        self._channel_id = channel_id
        self._buttons_for = buttons_for

    @property
    def channel_id(self) -> int:
        return self._channel_id()

    def _channel(self) -> discord.PartialMessageable:
        return self._client.get_partial_messageable(self.channel_id)

    async def post(self, view: PositionView, *, silent: bool) -> int:
        buttons = self._buttons_for(view.position)
        message = await self._channel().send(
            embed=position_embed(view),
            view=buttons or discord.utils.MISSING,
            allowed_mentions=NO_MENTIONS,
            silent=silent,
        )
        return message.id

    async def edit(self, message_id: int, view: PositionView) -> None:
        try:
            await (
                self._channel()
                .get_partial_message(message_id)
                .edit(embed=position_embed(view), view=self._buttons_for(view.position), allowed_mentions=NO_MENTIONS)
            )
        except discord.NotFound:
            raise MessageGone from None

    async def find(self, position_id: str, since: datetime) -> int | None:
        me = self._client.user
        async for message in self._channel().history(limit=FIND_IN_LAST):  # newest first
            if message.created_at < since:
                break  # older than the interrupted post: e.g. the position's message of an earlier day
            if me is not None and message.author.id != me.id:
                continue
            footer = message.embeds[0].footer.text if message.embeds else None
            if footer and footer.startswith(position_id):
                return message.id
        return None
