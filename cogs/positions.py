"""Position status: `/positions` and `/position`, for traders."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord.board import position_card
from bot.discord.rights import traders_only
from bot.discord.ui import is_today, position_choices, positions_list_embed, reply

if TYPE_CHECKING:
    from bot.discord.desk_bot import OptionDeskBot

SHOW_CHOICES = [
    app_commands.Choice(name="open", value="open"),
    app_commands.Choice(name="closed today", value="closed"),
    app_commands.Choice(name="all of today", value="all"),
]


class Positions(commands.Cog):
    def __init__(self, bot: OptionDeskBot) -> None:
        self.bot = bot

    @app_commands.command(name="positions", description="List the desk's positions: open ones by default")
    @app_commands.describe(show="Which positions: open (default), closed today, or all of today")
    @app_commands.choices(show=SHOW_CHOICES)
    @traders_only()
    async def positions(self, interaction: discord.Interaction, show: app_commands.Choice[str] | None = None) -> None:
        which = show.value if show else "open"
        zone = self.bot.settings.zone
        today = self.bot.desk.today()
        everything = self.bot.desk.manager.all_positions()
        if which == "open":
            listed, title = [p for p in everything if p.is_open], "Open positions"
        elif which == "closed":
            listed = [p for p in everything if not p.is_open and is_today(p, today, zone)]
            title = f"Positions closed on {today}"
        else:
            listed = [p for p in everything if p.is_open or is_today(p, today, zone)]
            title = f"Positions of {today}"
        await reply(interaction, f"{len(listed)} position(s).", embed=positions_list_embed(title, listed))

    @app_commands.command(name="position", description="Show one position with its history")
    @app_commands.describe(position="The position: start typing its symbol, strategy or id")
    @traders_only()
    async def position(self, interaction: discord.Interaction, position: str) -> None:
        found = self.bot.desk.manager.get(position.strip())
        notifier = self.bot.desk.notifier
        embed, chart = await position_card(await notifier.with_greeks(notifier.view(found)), self.bot.charts)
        await reply(interaction, f"Position `{found.position_id}`", embed=embed, file=chart)

    @position.autocomplete("position")
    async def _any_position(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return position_choices(interaction, self.bot.settings, self.bot.desk.manager.all_positions(), current)


async def setup(bot: OptionDeskBot) -> None:
    await bot.add_cog(Positions(bot))
