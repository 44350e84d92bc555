"""The desk's brakes: `/halt`, `/reduce-only` and `/resume` for admins (with a reason), `/status` for traders.

Every change of the trading state, from here, the shell or the daily-loss limit, is posted to the admin
channel. Reasons are free text: their markdown and mentions are escaped wherever Discord shows them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord.embeds import NO_MENTIONS
from bot.discord.rights import admins_only, traders_only
from bot.discord.ui import actor_of, reply
from bot.options.errors import TradeError
from bot.options.greeks import current_greeks
from bot.options.risk import DeskState, TradingState
from bot.render.status import desk_status, quote_ages, render_status

if TYPE_CHECKING:
    from bot.discord.desk_bot import OptionDeskBot

log = logging.getLogger(__name__)

MAX_REASON = 300
REASON = "Why (shown to admins and in /status)"
WHAT_IT_MEANS = {
    TradingState.ACTIVE: "orders go through as usual",
    TradingState.REDUCE_ONLY: "only trims and closes go through; opens and adds are refused",
    TradingState.HALTED: "no orders at all; open positions stay and are still shown",
}
_STATE_COLOUR = {
    TradingState.ACTIVE: discord.Colour.green(),
    TradingState.REDUCE_ONLY: discord.Colour.orange(),
    TradingState.HALTED: discord.Colour.red(),
}


def plain(text: str) -> str:
    """Free text as Discord shows it literally: no formatting, no mention."""
    return discord.utils.escape_markdown(discord.utils.escape_mentions(text))


def who(set_by: str) -> str:
    if set_by.startswith("discord:"):
        return f"<@{set_by.removeprefix('discord:')}>"  # shown as a name; allowed_mentions never pings
    return {"operator": "the operator (shell)", "risk": "the desk's risk checks"}.get(set_by, plain(set_by))


def change_notice(before: DeskState, after: DeskState) -> str:
    return (
        f"Trading state: **{after.state}** (was {before.state}), set by {who(after.set_by)}: {plain(after.reason)}. "
        f"Now {WHAT_IT_MEANS[after.state]}."
    )[:2000]


class Risk(commands.Cog):
    def __init__(self, bot: OptionDeskBot) -> None:
        self.bot = bot
        self._posting: set[asyncio.Task[None]] = set()

    async def announce(self, before: DeskState, after: DeskState) -> None:
        """A trading-state listener: tell the admin channel (if one is set), in the background.

        The daily-loss limit changes the state from inside a fill; a slow or failing Discord must not hold it.
        """
        task = asyncio.create_task(self._post(before, after))
        self._posting.add(task)
        task.add_done_callback(self._posting.discard)

    async def _post(self, before: DeskState, after: DeskState) -> None:
        channel_id = self.bot.settings.discord.admin_channel_id
        if channel_id is None:
            return
        try:
            await self.bot.get_partial_messageable(channel_id).send(
                change_notice(before, after), allowed_mentions=NO_MENTIONS
            )
        except discord.HTTPException as error:
            log.warning("could not tell the admin channel that the desk is now %s (%s)", after.state, error)

    async def _set(self, interaction: discord.Interaction, state: TradingState, reason: str) -> None:
        why = reason.strip()
        if not why:
            raise TradeError("Give a reason: it is shown to the admins and in /status.")
        switch = self.bot.desk.switch
        after = await switch.set(state, why, actor_of(interaction))
        unsaved = " It could not be saved, so a restart would forget it: see the log." if switch.unsaved else ""
        await reply(interaction, f"The desk is now {after.state}: {WHAT_IT_MEANS[after.state]}.{unsaved}")

    @app_commands.command(name="halt", description="Stop all trading: no orders at all until /resume (admins)")
    @app_commands.describe(reason=REASON)
    @app_commands.default_permissions(manage_guild=True)
    @admins_only()
    async def halt(self, interaction: discord.Interaction, reason: app_commands.Range[str, 1, MAX_REASON]) -> None:
        await self._set(interaction, TradingState.HALTED, reason)

    @app_commands.command(name="reduce-only", description="Allow only trims and closes until /resume (admins)")
    @app_commands.describe(reason=REASON)
    @app_commands.default_permissions(manage_guild=True)
    @admins_only()
    async def reduce_only(
        self, interaction: discord.Interaction, reason: app_commands.Range[str, 1, MAX_REASON]
    ) -> None:
        await self._set(interaction, TradingState.REDUCE_ONLY, reason)

    @app_commands.command(name="resume", description="Let the desk trade again after /halt or /reduce-only (admins)")
    @app_commands.describe(reason=REASON)
    @app_commands.default_permissions(manage_guild=True)
    @admins_only()
    async def resume(self, interaction: discord.Interaction, reason: app_commands.Range[str, 1, MAX_REASON]) -> None:
        await self._set(interaction, TradingState.ACTIVE, reason)

    @app_commands.command(name="status", description="The desk at a glance: trading state, feed, risk, P&L, backlog")
    @traders_only()
    async def status(self, interaction: discord.Interaction) -> None:
        desk, settings = self.bot.desk, self.bot.settings
        now = desk.clock()
        positions = desk.manager.all_positions()
        underlyings = [u.symbol for u in settings.market.underlyings]
        underlyings += [p.contract.underlying for p in positions if p.is_open]
        opened = [p.contract for p in positions if p.is_open]
        greeks = await current_greeks(desk.greeks, opened, now) if desk.greeks is not None else None
        status = desk_status(
            now=now,
            trading=await desk.switch.load(),
            limits=settings.risk.limits(),
            positions=positions,
            quote_ages=quote_ages(desk.quotes, underlyings, now),
            backlog=desk.notifier.backlog,
            uptime=timedelta(seconds=time.monotonic() - self.bot.started_at),
            zone=settings.zone,
            broker=desk.broker.describe() if desk.broker is not None else None,
            greeks=greeks,
        )
        embed = discord.Embed(
            title="Desk status",
            description=render_status(status, plain, who),
            colour=_STATE_COLOUR[status.trading.state],
        )
        await reply(interaction, f"The desk is {status.trading.state}.", embed=embed)


async def setup(bot: OptionDeskBot) -> None:
    cog = Risk(bot)
    bot.desk.switch.subscribe(cog.announce)
    await bot.add_cog(cog)
