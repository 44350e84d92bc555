"""The Discord bot: a `commands.Bot` that runs the desk, loads the cogs and keeps one message per position.

`create_bot(settings, storage=...)` builds it without starting it, so tests (and anyone embedding it)
can run it under a simulator or against a fake Discord server.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from datetime import date, datetime
from pathlib import Path

import discord
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from discord import app_commands
from discord.ext import commands

from bot.discord_ui import reply
from bot.options.clock import utc_now
from bot.options.errors import TradeError
from bot.options.market_data import QuoteFeed
from bot.options.market_hours import is_trading_day
from bot.options.positions import Position
from bot.options.quotes import QuoteCache
from bot.options.sim_market import SimulatedFeed
from bot.options.trade_ledger import last_event
from bot.paths import ledger_path
from bot.rights import NotAllowed
from bot.runtime.admin_alerts import AdminAlerts
from bot.runtime.demo import sim_market
from bot.runtime.desk import MESSAGE_FILE, Desk, open_desk
from bot.runtime.discord_sink import DiscordBoard
from bot.runtime.eod import latest_reset_time, reset_messages, reset_was_missed, schedule_eod
from bot.runtime.message_map import MessageMap
from bot.runtime.pnl_report import post_day_summary
from bot.runtime.position_charts import PositionCharts
from bot.runtime.position_embed import NO_MENTIONS
from bot.runtime.supervisor import supervise
from bot.settings import Settings, check_discord_settings

log = logging.getLogger(__name__)

EXTENSIONS = ("cogs.positions", "cogs.trading", "cogs.admin", "cogs.risk", "cogs.broker", "cogs.analytics")
GENERIC_FAILURE = "Something went wrong on the desk; it is logged. Check /position before trying again."


class DeskTree(app_commands.CommandTree["OptionDeskBot"]):
    """One error handler for every command: refusals and trade errors become one ephemeral sentence."""

    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        cause = error.original if isinstance(error, app_commands.CommandInvokeError) else error
        await answer_error(interaction, cause)


async def answer_error(interaction: discord.Interaction, error: BaseException) -> None:
    """Tell the member why nothing happened; log what happened either way."""
    await reply(interaction, refusal(interaction, error))


def refusal(interaction: discord.Interaction, error: BaseException) -> str:
    """The sentence that tells the member why nothing happened, the refusal (or the failure) logged."""
    who = f"{interaction.user} ({interaction.user.id})"
    if isinstance(error, TradeError | NotAllowed):
        log.info("refused %s for %s: %s", _what(interaction), who, error)
        text = str(error)
    elif isinstance(error, app_commands.CheckFailure):
        log.info("refused %s for %s: a check failed", _what(interaction), who)
        text = "You may not do that here."
    elif isinstance(error, app_commands.TransformerError):
        log.info("refused %s for %s: an option value that cannot be read", _what(interaction), who)
        text = "One of the values given cannot be read; nothing was done."
    else:
        log.error("%s for %s failed", _what(interaction), who, exc_info=error)
        text = GENERIC_FAILURE
    return text


def _what(interaction: discord.Interaction) -> str:
    if interaction.command is not None:
        return f"/{interaction.command.qualified_name}"
    data: dict[str, object] = dict(interaction.data or {})
    custom_id = data.get("custom_id")
    return f"button {custom_id}" if custom_id else "interaction"


class OptionDeskBot(commands.Bot):
    def __init__(
        self,
        settings: Settings,
        storage: Path,
        *,
        background: bool = True,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        intents = discord.Intents.none()
        intents.guilds = True  # interactions carry the member and their roles: no privileged intent needed
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            tree_cls=DeskTree,
            allowed_mentions=NO_MENTIONS,
            help_command=None,
        )
        self.settings = settings
        self.storage = storage
        self.background = background
        self.message_map = MessageMap(storage / MESSAGE_FILE)
        self.buttons_for: Callable[[Position], discord.ui.View | None] = lambda position: None
        self.started_at = time.monotonic()
        self._clock = clock
        self._tasks: list[asyncio.Task[None]] = []
        self._desk: Desk | None = None
        self.charts: PositionCharts | None = None  # the charts on positions' messages, once the desk is open
        self.scheduler: AsyncIOScheduler | None = None
        self.alerts = AdminAlerts(self.tell_admins)

    @property
    def desk(self) -> Desk:
        if self._desk is None:
            raise RuntimeError("the desk opens in setup_hook")
        return self._desk

    async def setup_hook(self) -> None:
        settings = self.settings
        market = sim_market(settings, None)
        last = last_event(ledger_path(self.storage))
        market.start(max(utc_now(), last.ts) if last else utc_now())
        broker = None
        if settings.executor != "paper":
            from bot.broker.link import BrokerLink

            broker = BrokerLink(settings, self.storage, alert=lambda text: self.alerts.alert("broker start-up", text))
        feed: QuoteFeed = broker.feed if broker else SimulatedFeed(market, speed=1.0)

        def watch(quotes: QuoteCache, symbols: Iterable[str]) -> None:
            feed.subscribe(symbols)

        board = DiscordBoard(
            self, lambda: self.settings.discord.trade_channel_id or 0, lambda position: self.buttons_for(position)
        )
        self._desk = await open_desk(
            settings,
            self.storage,
            board=board,
            messages=self.message_map,
            notify=lambda: self.settings.discord.notify,
            clock=self._clock or (utc_now if broker else lambda: market.now),
            watch=watch,
            throttle_clock=time.monotonic,
            broker=broker,
        )
        self.desk.ledger.subscribe_failures(
            lambda error: self.alerts.alert(
                "ledger", f"{error}. Trades are refused until it can be written again; nothing unrecorded was done."
            )
        )
        self.charts = PositionCharts(self.desk.quotes, self.desk.manager, enabled=lambda: self.settings.discord.charts)
        board.charts = self.charts
        await self.tell_admins_about_the_start()
        for extension in EXTENSIONS:
            try:
                await self.load_extension(extension)
            except Exception:
                log.exception("extension %s failed to load; the others go on", extension)
        guild = discord.Object(settings.discord.guild_id or 0)
        self.tree.copy_global_to(guild=guild)
        await self.tree.sync(guild=guild)

        self.scheduler = AsyncIOScheduler(timezone=settings.zone)
        schedule_eod(self.scheduler, settings, self.end_of_day)
        self.scheduler.start(paused=not self.background)
        now = discord.utils.utcnow()
        if reset_was_missed(self.message_map, settings, now):
            # The messages of the day that ended while the bot was down first get their last updates.
            self.desk.resume_messages(self.message_map.reset_at, posted_only=True)
            await self.desk.notifier.flush()
            missed = latest_reset_time(settings, now)
            if missed is not None:
                await self.post_day_summary(missed.astimezone(settings.zone).date())
            reset_messages(self.message_map, now, "missed while the bot was down")
        self.desk.resume_messages(latest_reset_time(settings, now))
        if self.background:
            self._tasks = [
                asyncio.create_task(supervise(name, start), name=name)
                for name, start in self.desk.workers(feed).items()
            ]

    async def tell_admins(self, text: str) -> None:
        """A short notice in the admin channel (if one is set); raises discord.HTTPException if it failed."""
        channel_id = self.settings.discord.admin_channel_id
        if channel_id is not None:
            await self.get_partial_messageable(channel_id).send(text[:2000], allowed_mentions=NO_MENTIONS)

    async def tell_admins_about_the_start(self) -> None:
        """What start-up repaired from the ledger, in a short notice to the admin channel (if one is set)."""
        summary = self.desk.resumed.summary()
        if not summary:
            return
        try:
            await self.tell_admins(f"optiondesk restarted: {summary}.")
        except discord.HTTPException as error:
            log.warning("could not tell the admin channel about the start (%s)", error)

    async def end_of_day(self) -> int:
        """The EOD job: post the day's P&L summary, then forget the position→message map. Trading days only."""
        now = discord.utils.utcnow()
        if not is_trading_day(now.astimezone(self.settings.zone).date()):
            log.info("end of day: not a trading day, nothing reset")
            return 0
        await self.post_day_summary(now.astimezone(self.settings.zone).date())
        return reset_messages(self.message_map, now, "end of day")

    async def post_day_summary(self, day: date) -> None:
        """The day's P&L summary to the trade channel, before the reset (see `end_of_day`)."""
        zone = self.settings.zone
        await post_day_summary(self, self.settings.discord.trade_channel_id, self.storage, zone, day)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        await self.alerts.drain()
        if self._desk is not None:
            await self._desk.close()
        await super().close()


def create_bot(
    settings: Settings, *, storage: Path, background: bool = True, clock: Callable[[], datetime] | None = None
) -> OptionDeskBot:
    check_discord_settings(settings)
    return OptionDeskBot(settings, storage, background=background, clock=clock)
