"""`/pnl [day|week|month]`: the desk's realized P&L with its equity curve, for traders."""

from __future__ import annotations

import asyncio
import io
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.analytics.periods import Period, period_days
from bot.discord.embeds import NO_MENTIONS
from bot.discord.pnl_report import load_period, pnl_embed
from bot.discord.rights import traders_only
from bot.render.charts import equity_curve_png

if TYPE_CHECKING:
    from bot.discord.desk_bot import OptionDeskBot

CURVE_FILE = "equity-curve.png"
TITLES = {"day": "P&L today", "week": "P&L this week", "month": "P&L this month"}


class Analytics(commands.Cog):
    def __init__(self, bot: OptionDeskBot) -> None:
        self.bot = bot

    @app_commands.command(name="pnl", description="The desk's realized P&L, win rate and equity curve")
    @app_commands.describe(period="today (default), this week from Monday, or this month from the 1st")
    @traders_only()
    async def pnl(self, interaction: discord.Interaction, period: Period = "day") -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)  # a long ledger takes a moment
        today = self.bot.desk.today()
        first, last = period_days(period, today)
        report, curve = await load_period(self.bot.storage, self.bot.settings.zone, first, last)
        embed = pnl_embed(report, TITLES[period])
        if not curve:
            await interaction.followup.send(embed=embed, ephemeral=True, allowed_mentions=NO_MENTIONS)
            return
        png = await asyncio.to_thread(equity_curve_png, curve, f"Realized P&L, {first} to {last}")
        embed.set_image(url=f"attachment://{CURVE_FILE}")
        await interaction.followup.send(
            embed=embed,
            file=discord.File(io.BytesIO(png), filename=CURVE_FILE),
            ephemeral=True,
            allowed_mentions=NO_MENTIONS,
        )


async def setup(bot: OptionDeskBot) -> None:
    await bot.add_cog(Analytics(bot))
