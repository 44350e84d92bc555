"""The Discord bot: a `commands.Bot` that runs the desk, loads the cogs and keeps one message per position.

`create_bot(settings, storage=...)` builds it without starting it, so tests (and anyone embedding it)
can run it under a simulator or against a fake Discord server.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from pathlib import Path

import discord
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from discord import app_commands
from discord.ext import commands

from bot.discord.board import DiscordBoard
from bot.discord.buttons import AddButton, CloseButton, TrimButton, position_buttons
from bot.discord.charts import PositionCharts
from bot.discord.embeds import NO_MENTIONS
from bot.discord.errors import answer_error
from bot.discord.link import LinkState, Note
from bot.discord.open_flow import CancelTicket, ConfirmTicket, Tickets
from bot.discord.pnl_report import post_day_summary
from bot.options.clock import WallClock
from bot.options.market_data import QuoteFeed
from bot.options.market_hours import is_trading_day
from bot.options.sim_market import WallClockFeed
from bot.runtime.admin_alerts import AdminAlerts
from bot.runtime.desk import NOTIFIER, Desk, open_desk, sim_market
from bot.runtime.eod import latest_reset_time, reset_messages, reset_was_missed, schedule_eod
from bot.runtime.message_map import MessageMap
from bot.runtime.supervisor import supervise
from bot.settings import Settings, check_discord_settings

log = logging.getLogger(__name__)

EXTENSIONS = (
    "cogs.positions",
    "cogs.trading",
    "cogs.opening",
    "cogs.admin",
    "cogs.risk",
    "cogs.broker",
    "cogs.analytics",
)
CLOSE_WITHIN = 10.0  # seconds the stop waits for background tasks and alerts


class DeskTree(app_commands.CommandTree["OptionDeskBot"]):
    """One error handler for every command: refusals and trade errors become one ephemeral sentence."""

    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        cause = error.original if isinstance(error, app_commands.CommandInvokeError) else error
        await answer_error(interaction, cause)


class OptionDeskBot(commands.Bot):
    def __init__(
        self,
        settings: Settings,
        storage: Path,
        *,
        background: bool = True,
        clock: Callable[[], datetime] | None = None,
        link_note: Note | None = None,
    ) -> None:
        """`link_note(text)` hears how the link to Discord is, at each change (see `LinkState`)."""
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
        self.started_at = time.monotonic()
        self._clock = clock
        self._tasks: list[asyncio.Task[None]] = []
        self._desk: Desk | None = None
        self._workers: dict[str, Callable[[], Awaitable[None]]] = {}  # the desk's background work, by name
        self._told_start = False
        self._closing = False
        self.link = LinkState(link_note)
        self.linked = asyncio.Event()  # logged in and the commands synced: Discord's API answers
        self.charts: PositionCharts | None = None  # the charts on positions' messages, once the desk is open
        self.scheduler: AsyncIOScheduler | None = None
        self.alerts = AdminAlerts(self.tell_admins)
        self.broker_note: Note | None = None  # hears the broker account once the desk is open (the lock's note)
        self.tickets = Tickets()  # /open and /add previews waiting for their Confirm

    @property
    def message_map(self) -> MessageMap:
        return self.desk.messages

    @property
    def desk(self) -> Desk:
        if self._desk is None:
            raise RuntimeError("the desk opens in open() (setup_hook opens it too)")
        return self._desk

    async def open(self) -> None:
        """Open the desk (ledger, state store, positions, strategies), once. It needs no Discord: it can trade
        before the bot is logged in, its position messages waiting in the notifier's queue."""
        if self._desk is not None:
            return
        settings = self.settings
        # On Discord the desk lives on wall time, always (a test hands in its own `now`).
        clock = WallClock(self._clock or discord.utils.utcnow)  # virtual under a Discord simulator
        broker = None
        if settings.executor != "paper":
            from bot.broker.link import BrokerLink

            broker = BrokerLink(
                settings,
                self.storage,
                alert=lambda text: self.alerts.alert("broker start-up", text),
                admins=self.alerts.alert,
            )
        feed: QuoteFeed = broker.feed if broker else WallClockFeed(sim_market(settings, None), clock)
        board = DiscordBoard(self, lambda: self.settings.discord.trade_channel_id or 0, position_buttons)
        self._desk = await open_desk(
            settings,
            self.storage,
            clock=clock,
            feed=feed,
            board=board,
            broker=broker,
            notify=lambda: self.settings.discord.notify,
            alert=self.alerts.alert,
        )
        self._workers = self.desk.workers()
        if broker is not None and self.broker_note is not None:
            self.broker_note(broker.describe())
        self.desk.ledger.subscribe_failures(
            lambda error: self.alerts.alert(
                "ledger", f"{error}. Trades are refused until it can be written again; nothing unrecorded was done."
            )
        )
        self.charts = PositionCharts(self.desk.quotes, self.desk.manager, enabled=lambda: self.settings.discord.charts)
        board.charts = self.charts
        now = self.desk.clock()
        if not reset_was_missed(self.message_map, settings, now):
            # Queued before anything trades, so that a later fill's update replaces the one found out of date.
            self.desk.resume_messages(latest_reset_time(settings, now))

    def start_workers(self, *, messages: bool = False) -> None:
        """Start the desk's background work, each task once: trading (feed, strategies, watchers, expiry, trading
        state, broker) at once; with `messages`, the delivery of position messages, which needs Discord."""
        if not self.background:
            return
        started = {task.get_name() for task in self._tasks}
        for name, start in self._workers.items():
            if (name == NOTIFIER) == messages and name not in started:
                self._tasks.append(asyncio.create_task(supervise(name, start), name=name))

    async def setup_hook(self) -> None:
        """Discord's side of the start, run by `login` once Discord answered (again if a log-in is retried, so each
        step is done once): the desk open and trading, the cogs, the command sync, then (linked) the admins told,
        the end-of-day job, a reset missed while the bot was down, and the position messages' delivery."""
        settings = self.settings
        await self.open()
        self.start_workers()
        # The buttons of messages posted before a restart work too (a preview's Confirm says it is no longer valid).
        self.add_dynamic_items(TrimButton, CloseButton, AddButton, ConfirmTicket, CancelTicket)
        for extension in EXTENSIONS:
            if extension in self.extensions:
                continue
            try:
                await self.load_extension(extension)
            except Exception:
                log.exception("extension %s failed to load; the others go on", extension)
        guild = discord.Object(settings.discord.guild_id or 0)
        self.tree.copy_global_to(guild=guild)
        await self.tree.sync(guild=guild)
        self.linked.set()
        if not self._told_start:
            self._told_start = True
            await self.tell_admins_about_the_start()
        if self.scheduler is None:
            self.scheduler = AsyncIOScheduler(timezone=settings.zone)
            schedule_eod(self.scheduler, settings, self.end_of_day)
            self.scheduler.start(paused=not self.background)
        now = self.desk.clock()
        missed = latest_reset_time(settings, now)
        if missed is not None and reset_was_missed(self.message_map, settings, now):
            # The messages of the day that ended while the bot was down first get their last updates.
            self.desk.resume_messages(self.message_map.reset_at, posted_only=True)
            await self.desk.notifier.flush()
            await self.post_day_summary(missed.astimezone(settings.zone).date())
            # Messages posted since (positions traded while Discord was out of reach) belong to the new day.
            reset_messages(self.message_map, now, "missed while the bot was down", posted_before=missed)
            self.desk.resume_messages(missed)
        self.start_workers(messages=True)

    async def tell_admins(self, text: str) -> None:
        """A short notice in the admin channel (if one is set); raises discord.HTTPException if it failed."""
        channel_id = self.settings.discord.admin_channel_id
        if channel_id is not None:
            await self.linked.wait()  # raised while Discord was out of reach: it goes out once Discord answers
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
        now = self.desk.clock()
        if not is_trading_day(self.desk.today()):
            log.info("end of day: not a trading day, nothing reset")
            return 0
        await self.post_day_summary(self.desk.today())
        return reset_messages(self.message_map, now, "end of day")

    async def post_day_summary(self, day: date) -> None:
        """The day's P&L summary to the trade channel, before the reset (see `end_of_day`)."""
        zone = self.settings.zone
        await post_day_summary(self, self.settings.discord.trade_channel_id, self.storage, zone, day)

    async def on_ready(self) -> None:
        self.link.connected()

    async def on_resumed(self) -> None:
        self.link.connected()

    async def on_disconnect(self) -> None:
        if not self.is_closed() and not self._closing:
            self.link.disconnected()

    async def close(self) -> None:
        """Stop the background work, close the desk and the connection; each wait bounded, so a stop never hangs."""
        if not self._closing:
            self._closing = True
            for task in self._tasks:
                task.cancel()
            stopped = asyncio.gather(*self._tasks, return_exceptions=True)
            await _within(CLOSE_WITHIN, stopped, f"background tasks still running {CLOSE_WITHIN:g} s after the stop")
            if self.scheduler is not None and self.scheduler.running:
                self.scheduler.shutdown(wait=False)
            if self.linked.is_set():
                # Position messages still queued get their last state: none is left OPEN with its buttons after
                # the position closed. (They stay due in the message map either way: the next start sends them.)
                if self._desk is not None:
                    flushed = self._desk.notifier.flush()
                    await _within(CLOSE_WITHIN, flushed, f"position messages not delivered within {CLOSE_WITHIN:g} s")
                await _within(CLOSE_WITHIN, self.alerts.drain(), f"admin alerts not sent within {CLOSE_WITHIN:g} s")
            else:  # they wait for Discord, which never answered
                await _within(0, self.alerts.drain(), "admin alerts not sent: Discord never answered (each is logged)")
            if self._desk is not None:
                await self._desk.close()
        await super().close()


async def _within(seconds: float, work: Awaitable[object], late: str) -> None:
    """Wait for `work` at most `seconds`; past that it is cancelled and `late` is logged."""
    try:
        async with asyncio.timeout(seconds):
            await work
    except TimeoutError:
        log.warning("%s; stopping without them", late)


def create_bot(
    settings: Settings,
    *,
    storage: Path,
    background: bool = True,
    clock: Callable[[], datetime] | None = None,
    link_note: Note | None = None,
    broker_note: Note | None = None,
) -> OptionDeskBot:
    check_discord_settings(settings)
    bot = OptionDeskBot(settings, storage, background=background, clock=clock, link_note=link_note)
    bot.broker_note = broker_note
    return bot
