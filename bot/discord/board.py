"""The trade channel as a message board: positions' messages posted and edited through Discord's API.

Messages never ping anyone. Each carries the position's chart as an attached PNG that the embed shows as its
image; an edit replaces it with a fresh one. After an interrupted post the message is found again in the
channel's recent history by the position id in its footer (among the messages no older than the post), so a
restart never posts it twice.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import datetime

import discord

from bot.discord.charts import PositionCharts
from bot.discord.embeds import NO_MENTIONS, position_embed
from bot.options.positions import Position
from bot.render.position_view import PositionView
from bot.runtime.message_board import MessageGone

ButtonsFor = Callable[[Position], discord.ui.View | None]
FIND_IN_LAST = 100  # messages searched for an interrupted post
CHART_FILE = "chart.png"


def charted(embed: discord.Embed) -> discord.Embed:
    """The embed showing the chart attached to its message as its image."""
    return embed.set_image(url=f"attachment://{CHART_FILE}")


async def position_card(view: PositionView, charts: PositionCharts | None) -> tuple[discord.Embed, discord.File | None]:
    """A position's embed, and its chart (drawn now, off the event loop) unless charts are off or failed."""
    embed = position_embed(view)
    png = await charts.png(view) if charts is not None else None
    if png is None:
        return embed, None
    return charted(embed), discord.File(io.BytesIO(png), filename=CHART_FILE)


class DiscordBoard:
    """Reads the trade channel from the settings at each call, so a changed channel counts at once."""

    def __init__(self, client: discord.Client, channel_id: Callable[[], int], buttons_for: ButtonsFor) -> None:
        self._client = client
        self._channel_id = channel_id
        self._buttons_for = buttons_for
        self.charts: PositionCharts | None = None  # set once the desk is open; None: messages without charts

    @property
    def channel_id(self) -> int:
        return self._channel_id()

    def _channel(self) -> discord.PartialMessageable:
        return self._client.get_partial_messageable(self.channel_id)

    async def post(self, view: PositionView, *, silent: bool) -> int:
        buttons = self._buttons_for(view.position)
        embed, chart = await position_card(view, self.charts)
        message = await self._channel().send(
            embed=embed,
            file=chart or discord.utils.MISSING,
            view=buttons or discord.utils.MISSING,
            allowed_mentions=NO_MENTIONS,
            silent=silent,
        )
        return message.id

    async def edit(self, message_id: int, view: PositionView) -> None:
        embed, chart = await position_card(view, self.charts)
        # The new chart replaces the old one; with none, an old one goes too rather than show a stale state.
        attachments = discord.utils.MISSING if self.charts is None else [chart] if chart else []
        try:
            await (
                self._channel()
                .get_partial_message(message_id)
                .edit(
                    embed=embed,
                    attachments=attachments,
                    view=self._buttons_for(view.position),
                    allowed_mentions=NO_MENTIONS,
                )
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
