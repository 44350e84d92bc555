"""Manual trading for traders: `/trim` and `/close`. Given explicit arguments they act at once; the buttons
under a position's message (bot/discord/buttons.py) ask for a Confirm first."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord.buttons import close_position, trim_position
from bot.discord.rights import traders_only
from bot.discord.ui import position_choices, reply
from bot.options.amounts import MAX_CONTRACTS
from bot.options.errors import TradeError

if TYPE_CHECKING:
    from bot.discord.desk_bot import OptionDeskBot


class Trading(commands.Cog):
    def __init__(self, bot: OptionDeskBot) -> None:
        self.bot = bot

    @app_commands.command(name="trim", description="Sell part of a position, by percent or by number of contracts")
    @app_commands.describe(
        position="The position: start typing its symbol, strategy or id",
        percent="Percent of the open contracts to sell, 1-100 (rounded down, at least 1)",
        qty="Number of contracts to sell",
    )
    @traders_only()
    async def trim(
        self,
        interaction: discord.Interaction,
        position: str,
        percent: app_commands.Range[int, 1, 100] | None = None,
        qty: app_commands.Range[int, 1, MAX_CONTRACTS] | None = None,
    ) -> None:
        if (percent is None) == (qty is None):
            raise TradeError("Give either percent or qty (not both, not neither).")
        await reply(interaction, await trim_position(interaction, position.strip(), qty=qty, percent=percent))

    @app_commands.command(name="close", description="Sell all of a position")
    @app_commands.describe(position="The position: start typing its symbol, strategy or id")
    @traders_only()
    async def close(self, interaction: discord.Interaction, position: str) -> None:
        await reply(interaction, await close_position(interaction, position.strip()))

    @trim.autocomplete("position")
    @close.autocomplete("position")
    async def _open_position(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return position_choices(interaction, self.bot.settings, self.bot.desk.manager.open_positions(), current)


async def setup(bot: OptionDeskBot) -> None:
    await bot.add_cog(Trading(bot))
