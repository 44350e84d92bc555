"""Admin commands: `/reset-messages` does what the end-of-day job does, on demand."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord.rights import admins_only
from bot.discord.ui import reply
from bot.runtime.eod import reset_messages

if TYPE_CHECKING:
    from bot.discord.desk_bot import OptionDeskBot


class Admin(commands.Cog):
    def __init__(self, bot: OptionDeskBot) -> None:
        self.bot = bot

    @app_commands.command(
        name="reset-messages",
        description="Forget every position's message now, as the end-of-day reset does (admins)",
    )
    @app_commands.default_permissions(manage_guild=True)
    @admins_only()
    async def reset_messages(self, interaction: discord.Interaction) -> None:
        count = reset_messages(self.bot.message_map, self.bot.desk.clock(), f"/reset-messages by {interaction.user.id}")
        await reply(
            interaction,
            f"Reset: {count} position message(s) forgotten. Open positions get a fresh message on their next update.",
        )


async def setup(bot: OptionDeskBot) -> None:
    await bot.add_cog(Admin(bot))
