"""Broker commands: `/reconcile` compares a day's ledger with the broker's fills (admins)."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord.embeds import NO_MENTIONS
from bot.discord.rights import admins_only
from bot.discord.ui import reply
from bot.options.errors import TradeError

if TYPE_CHECKING:
    from bot.discord.desk_bot import OptionDeskBot

_MESSAGE_LIMIT = 1900  # under Discord's 2,000 characters, with room for the code fence


class Broker(commands.Cog):
    def __init__(self, bot: OptionDeskBot) -> None:
        self.bot = bot

    @app_commands.command(name="reconcile", description="Compare a day's ledger with the broker's fills (admins)")
    @app_commands.describe(day="YYYY-MM-DD in New York (default: today)")
    @app_commands.default_permissions(manage_guild=True)
    @admins_only()
    async def reconcile(self, interaction: discord.Interaction, day: str | None = None) -> None:
        from bot.broker.reconcile_fetch import reconcile_day

        broker = self.bot.desk.broker
        if broker is None:
            raise TradeError("Reconcile compares the ledger with a broker, and this desk trades on paper.")
        zone = self.bot.settings.zone
        now = self.bot.desk.clock()
        try:
            wanted = date.fromisoformat(day) if day else self.bot.desk.today()
        except ValueError:
            raise TradeError(f"{day!r} is not a date like 2026-11-25.") from None
        await interaction.response.defer(ephemeral=True, thinking=True)
        fee = self.bot.settings.broker.fee_per_contract
        report = await asyncio.to_thread(reconcile_day, broker.client, self.bot.storage, wanted, zone, now, fee)
        posted = await self._post(report.lines())
        where = " The report is in the admin channel." if posted else ""
        await reply(interaction, report.summary() + where)

    async def _post(self, lines: list[str]) -> bool:
        channel_id = self.bot.settings.discord.admin_channel_id
        if channel_id is None:
            return False
        channel = self.bot.get_partial_messageable(channel_id)
        chunk: list[str] = []
        for line in [*lines, None]:
            if line is None or sum(len(x) + 1 for x in chunk) + len(line) > _MESSAGE_LIMIT:
                await channel.send("```\n" + "\n".join(chunk) + "\n```", allowed_mentions=NO_MENTIONS)
                chunk = []
            if line is not None:
                chunk.append(line[:_MESSAGE_LIMIT])
        return True


async def setup(bot: OptionDeskBot) -> None:
    await bot.add_cog(Broker(bot))
